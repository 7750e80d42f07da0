"""Reading what the engine does, for the CLI and the dashboard: an execution's journal with
timings, the progress of a fan-out, the fan-out tree, queues, the latest events.

Each answer is bounded (pages, caps) and built from index ranges (polos/store/observe_ops.py),
so polling them during a large fan-out costs what they return, not the size of the tree — with
one exception said where it applies: the descendants of an execution that is not a root, and
a tree's per-level counts, are a walk of the subtree.
"""

from __future__ import annotations

import base64
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from polos import codec, protocol
from polos.server.http import ApiError, check_identifier, json_response, project_of
from polos.server.state import state_of
from polos.server.views import iso
from polos.store.base import StoreTx
from polos.store.observe_ops import (
    MAX_TREE_DEPTH,
    STATUSES,
    Counts,
    ExecutionSummary,
    StepTiming,
)

router = APIRouter(prefix=protocol.API_PREFIX, tags=["observe"])

_ERRORS: dict[int | str, dict[str, object]] = {
    400: {"model": protocol.ErrorBody},
    404: {"model": protocol.ErrorBody},
    422: {"model": protocol.ErrorBody},
}
# A tree answer lists at most this many executions, and at most this many groups per node.
MAX_TREE_NODES = 2000
MAX_TREE_GROUPS = 50


def _not_found(execution_id: str, project: str) -> ApiError:
    return ApiError(
        404, "execution_not_found", f"execution {execution_id!r} not found in project {project!r}"
    )


def counts_view(counts: Counts) -> protocol.StatusCounts:
    known = {s: max(counts.get(s, 0), 0) for s in STATUSES}
    return protocol.StatusCounts(**known, total=sum(known.values()))


def _error(type_: str | None, message: str | None) -> protocol.StoredError | None:
    if type_ is None and message is None:
        return None
    return protocol.StoredError(type=type_ or "Error", message=message or "")


def _summary_view(s: ExecutionSummary) -> protocol.ExecutionSummaryView:
    return protocol.ExecutionSummaryView(
        id=s.id,
        workflow_id=s.workflow_id,
        status=s.status,
        parent_execution_id=s.parent_execution_id,
        step_key=s.step_key,
        batch_index=s.batch_index,
        error=_error(s.error_type, s.error_message),
        created_at=iso(s.created_at) or "",
        started_at=iso(s.started_at),
        completed_at=iso(s.completed_at),
    )


async def _summary(tx: StoreTx, execution_id: str, project: str) -> tuple[ExecutionSummary, str]:
    """The execution (404 when it is not the project's) and its root's ID."""
    found = await tx.execution_summary(execution_id)
    if found is None or found[1] != project:
        raise _not_found(execution_id, project)
    return found[0], found[2]


# --------------------------------------------------------------------------- steps


def _step_cursor(step: StepTiming) -> str:
    raw = f"{step.position}|{step.key}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _parse_step_cursor(cursor: str) -> tuple[int, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        position, sep, key = raw.partition("|")
        parsed = int(position), protocol.check_text(key)
    except (ValueError, UnicodeDecodeError):
        parsed = None
    if parsed is None or not sep or not -(2**31) <= parsed[0] <= protocol.MAX_INT32:
        raise ApiError(400, "invalid_cursor", "cursor is not one this API returned")
    return parsed


def _step_view(step: StepTiming) -> protocol.StepView:
    duration = step.duration_seconds
    if duration is None and step.completed_at is not None:
        duration = max(step.completed_at - step.created_at, 0.0)
    return protocol.StepView(
        key=step.key,
        kind=step.kind,
        status=step.status,
        position=step.position,
        created_at=iso(step.created_at) or "",
        completed_at=iso(step.completed_at),
        duration_seconds=duration,
        error=_error(step.error_type, step.error_message),
        output_schema=step.output_schema,
        result=codec.loads(step.result_json),
    )


@router.get(
    "/executions/{execution_id}/steps",
    response_model=protocol.StepList,
    responses=_ERRORS,
    summary="An execution's journal in call order, with times and durations (paginated)",
)
async def list_steps(
    execution_id: str,
    request: Request,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
    cursor: Annotated[str | None, Query(max_length=2000)] = None,
    include_results: bool = False,
) -> Response:
    """Steps in call order (position, then key; `patched` markers take no position of their
    own). `include_results` adds each step's recorded result (they can be large)."""
    state = state_of(request)
    project = project_of(request)
    check_identifier(execution_id, "execution id")
    after = None if cursor is None else _parse_step_cursor(cursor)

    async def work(tx: StoreTx) -> list[StepTiming]:
        await _summary(tx, execution_id, project)
        return await tx.execution_steps(execution_id, after, limit + 1, include_results)

    steps = await state.store.read(work)
    page, more = steps[:limit], len(steps) > limit
    return json_response(
        protocol.StepList(
            execution_id=execution_id,
            steps=[_step_view(s) for s in page],
            next_cursor=_step_cursor(page[-1]) if more and page else None,
        )
    )


# --------------------------------------------------------------------------- progress


async def descendant_counts(
    tx: StoreTx, summary: ExecutionSummary, root_id: str, children: Counts
) -> Counts:
    """All descendants of an execution by status. For a root: one index-only count of its
    tree, minus itself. For an inner execution with children: a walk of its subtree."""
    if root_id == summary.id:
        counts = await tx.tree_counts(summary.id)
        counts[summary.status] = counts.get(summary.status, 0) - 1
        return counts
    if not any(children.values()):
        return {}
    total: Counts = {}
    for level in await tx.subtree_counts(summary.id, MAX_TREE_DEPTH):
        for status, n in level.items():
            total[status] = total.get(status, 0) + n
    return total


async def level_counts(
    tx: StoreTx, summary: ExecutionSummary, root_id: str, children: Counts, depth: int
) -> list[Counts]:
    """Descendants per level down to `depth`. The walk of the subtree is skipped when the
    counts already tell: no children, or (for a root) no descendant below its children —
    the common flat fan-out."""
    if depth == 0 or not any(children.values()):
        levels: list[Counts] = []
    elif depth == 1:
        levels = [children]
    else:
        flat = False
        if root_id == summary.id:
            below = await descendant_counts(tx, summary, root_id, children)
            flat = sum(below.values()) == sum(children.values())
        levels = [children] if flat else await tx.subtree_counts(summary.id, depth)
    return levels + [{} for _ in range(depth - len(levels))]


@router.get(
    "/executions/{execution_id}/progress",
    response_model=protocol.ExecutionProgress,
    responses=_ERRORS,
    summary="Status counts of an execution's children and of all its descendants",
)
async def progress(execution_id: str, request: Request) -> Response:
    """Cheap enough to poll every second during a large fan-out: for a root execution both
    counts are index-only counts (no per-child work in the server, a few milliseconds per
    10,000 descendants in the database)."""
    state = state_of(request)
    project = project_of(request)
    check_identifier(execution_id, "execution id")

    async def work(tx: StoreTx) -> protocol.ExecutionProgress:
        summary, root_id = await _summary(tx, execution_id, project)
        children = (await tx.children_counts([summary.id])).get(summary.id, {})
        descendants = await descendant_counts(tx, summary, root_id, children)
        return protocol.ExecutionProgress(
            execution_id=summary.id,
            workflow_id=summary.workflow_id,
            status=summary.status,
            children=counts_view(children),
            descendants=counts_view(descendants),
        )

    return json_response(await state.store.read(work))


# --------------------------------------------------------------------------- tree


async def _expand(
    tx: StoreTx, node: protocol.TreeNode, limit_per_group: int, budget: int
) -> tuple[list[protocol.TreeNode], int, bool]:
    """List a node's children by group; returns the listed children, the budget left and
    whether the budget cut a group short."""
    listed: list[protocol.TreeNode] = []
    node.expanded = True
    if node.children.total == 0:
        return listed, budget, False
    cut = False
    groups = await tx.child_groups(node.execution.id)
    for step_key, counts in groups[:MAX_TREE_GROUPS]:
        view = counts_view(counts)
        wanted = min(limit_per_group, view.total)
        take = min(wanted, budget)
        cut = cut or take < wanted
        kids = await tx.children_of_step(node.execution.id, step_key, take) if take else []
        budget -= len(kids)
        members = [
            protocol.TreeNode(execution=_summary_view(k), children=protocol.StatusCounts())
            for k in kids
        ]
        listed += members
        node.groups.append(
            protocol.TreeGroup(
                step_key=step_key,
                counts=view,
                executions=members,
                more=view.total - len(members),
            )
        )
    node.more_groups = max(len(groups) - MAX_TREE_GROUPS, 0)
    return listed, budget, cut


@router.get(
    "/executions/{execution_id}/tree",
    response_model=protocol.ExecutionTree,
    responses=_ERRORS,
    summary="The fan-out below an execution: children grouped by step, with counts",
)
async def tree(
    execution_id: str,
    request: Request,
    depth: Annotated[int, Query(ge=0, le=10)] = 2,
    limit_per_group: Annotated[int, Query(ge=0, le=200)] = 10,
) -> Response:
    """Each node lists its children grouped by the parent's step that started them, with
    per-status counts of every group; at most `limit_per_group` children of a group are
    listed (in input order) and `more` counts the rest, so a 10,000-child batch is one group
    of 10 entries and a count. Nodes are expanded down to `depth` levels; the nodes of the
    last level carry the counts of their own children. At most MAX_TREE_NODES executions are
    listed (`truncated` says the budget ran out). `levels` counts the descendants per level
    down to `depth` (a walk of that part of the subtree)."""
    state = state_of(request)
    project = project_of(request)
    check_identifier(execution_id, "execution id")

    async def work(tx: StoreTx) -> protocol.ExecutionTree:
        summary, root_id = await _summary(tx, execution_id, project)
        children = (await tx.children_counts([summary.id])).get(summary.id, {})
        root = protocol.TreeNode(execution=_summary_view(summary), children=counts_view(children))
        frontier = [root]
        budget = MAX_TREE_NODES - 1
        truncated = False
        for _ in range(depth):
            following: list[protocol.TreeNode] = []
            for node in frontier:
                if budget <= 0 and node.children.total:
                    truncated = True
                    continue
                listed, budget, cut = await _expand(tx, node, limit_per_group, budget)
                truncated = truncated or cut
                following += listed
            counts = await tx.children_counts([n.execution.id for n in following])
            for n in following:
                n.children = counts_view(counts.get(n.execution.id, {}))
            frontier = following
            if not frontier:
                break
        levels = await level_counts(tx, summary, root_id, children, depth)
        return protocol.ExecutionTree(
            root=root,
            levels=[counts_view(level) for level in levels],
            depth=depth,
            limit_per_group=limit_per_group,
            truncated=truncated,
        )

    return json_response(await state.store.read(work))


# --------------------------------------------------------------------------- queues


@router.get(
    "/queues",
    response_model=protocol.QueueList,
    summary="The project's queues: limit, running, queued and waiting executions",
)
async def list_queues(request: Request) -> Response:
    """`running` is what the queue's limit is checked against; `queued` includes retries not
    yet due; `waiting` executions hold no slot (they are counted row by row, so this costs
    one row visit per waiting execution)."""
    state = state_of(request)
    project = project_of(request)

    async def work(tx: StoreTx) -> protocol.QueueList:
        return protocol.QueueList(
            queues=[
                protocol.QueueView(
                    name=q.name,
                    concurrency_limit=q.concurrency_limit,
                    running=q.running,
                    queued=q.queued,
                    waiting=q.waiting,
                )
                for q in await tx.queue_stats(project)
            ]
        )

    return json_response(await state.store.read(work))


# --------------------------------------------------------------------------- events


@router.get(
    "/events/recent",
    response_model=protocol.RecentEventList,
    responses=_ERRORS,
    summary="The project's latest events (across topics, or of one), newest first",
)
async def recent_events(
    request: Request,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    before_sequence_id: Annotated[int | None, Query(ge=1, le=2**62)] = None,
    topic: Annotated[str | None, Query(max_length=protocol.MAX_ID_LENGTH)] = None,
) -> Response:
    state = state_of(request)
    project = project_of(request)
    only = None if topic is None else check_identifier(topic, "topic")

    async def work(tx: StoreTx) -> list[protocol.EventView]:
        records = await tx.recent_events(project, only, before_sequence_id, limit + 1)
        return [
            protocol.EventView(
                id=e.id,
                sequence_id=e.seq,
                topic=e.topic,
                event_type=e.event_type,
                data=codec.loads(e.data_json),
                created_at=iso(e.created_at) or "",
            )
            for e in records
        ]

    events = await state.store.read(work)
    page, more = events[:limit], len(events) > limit
    return json_response(
        protocol.RecentEventList(
            events=page, next_before_sequence_id=page[-1].sequence_id if more and page else None
        )
    )
