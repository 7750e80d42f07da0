"""Children and their parents: inserting the children of a step (idempotently: their IDs
derive from parent, step key and index, design.md rule 5), and waking a parent exactly once
when the last child it waits for is final (rule 6), with the results in input order."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence

from polos import protocol
from polos.model import (
    ChildOutcome,
    ErrorInfo,
    ExecutionStatus,
    FenceRow,
    NewExecution,
    StepKind,
    StepStatus,
)
from polos.server.faults import fail_point
from polos.server.lifecycle import requeue
from polos.store.base import StoreTx


async def submit_children(
    tx: StoreTx,
    parent: FenceRow,
    children: Sequence[protocol.ChildSubmission],
    known: dict[str, str],
    now: float,
) -> None:
    """Insert the children (idempotently: their IDs derive from parent, step key and index).
    `known` maps their workflow IDs to their default queues."""
    rows: list[NewExecution] = []
    queues: dict[str, int | None] = {}
    for c in children:
        queue = c.queue_name or known[c.workflow_id]
        queues.setdefault(queue, c.queue_concurrency_limit)
        rows.append(
            NewExecution(
                id=protocol.idempotent_execution_id(parent.project_id, c.idempotency_key)
                if c.idempotency_key
                else protocol.child_execution_id(parent.id, c.step_key, c.index),
                project_id=parent.project_id,
                workflow_id=c.workflow_id,
                queue_name=queue,
                payload_json=c.payload,
                concurrency_key=c.concurrency_key or "",
                deployment_id=parent.deployment_id,
                parent_execution_id=parent.id,
                root_execution_id=parent.root_execution_id,
                root_workflow_id=parent.root_workflow_id,
                parent_step_key=c.step_key,
                batch_index=c.index,
                notify_parent=c.wait,
                session_id=parent.session_id,
                user_id=parent.user_id,
                initial_state_json=c.initial_state,
                run_timeout_seconds=c.run_timeout_seconds,
                idempotency_key=c.idempotency_key,
            )
        )
    if rows:
        await tx.ensure_queues(parent.project_id, queues, now, overwrite_limits=False)
        await tx.insert_executions(rows, now)
        fail_point("children_inserted")
        project_id = parent.project_id
        tx.notify_work(project_id)


async def notify_parents(tx: StoreTx, finished: Counter[tuple[str, str]], now: float) -> None:
    if not finished:
        return
    done, with_policy = await tx.decrement_pending(finished)
    if with_policy:
        # Imported here: cancellation notifies parents in turn (this module).
        from polos.server import batch_policies

        for parent_id, step_key, fail_fast, min_success in with_policy:
            await batch_policies.apply(tx, parent_id, step_key, fail_fast, min_success, now)
    if not done:
        return
    parents = await tx.fence_rows({parent for parent, _ in done})
    woken: list[FenceRow] = []
    for parent_id, step_key in done:
        await resolve_waiting_step(tx, parent_id, step_key, now)
        parent = parents.get(parent_id)
        if parent is not None and parent.status is ExecutionStatus.WAITING:
            parent.status = ExecutionStatus.QUEUED
            woken.append(parent)
    if woken:
        fail_point("parent_woken")
    await requeue(tx, woken, now, ready_at=now, count_retry=False)


async def resolve_waiting_step(tx: StoreTx, parent_id: str, step_key: str, now: float) -> None:
    step = await tx.get_step(parent_id, step_key)
    if step is None or step.status is not StepStatus.PENDING:
        return
    children = await tx.child_outcomes(parent_id, step_key)
    if step.kind is StepKind.BATCH_WAIT:
        await tx.resolve_step(
            parent_id, step_key, StepStatus.COMPLETED, batch_result_json(children), None, None, now
        )
        return
    child = children[0] if children else None
    if child is not None and child.status is ExecutionStatus.COMPLETED:
        await tx.resolve_step(
            parent_id,
            step_key,
            StepStatus.COMPLETED,
            child.result_json,
            None,
            child.output_schema,
            now,
        )
    else:
        await tx.resolve_step(
            parent_id, step_key, StepStatus.FAILED, None, _child_error(child), None, now
        )


def _child_error(child: ChildOutcome | None) -> ErrorInfo:
    if child is None:
        return ErrorInfo("ChildNotFoundError", "the child execution does not exist")
    if child.error is not None:
        return child.error
    if child.status is ExecutionStatus.CANCELLED:
        return ErrorInfo("ExecutionCancelledError", f"child execution {child.id} was cancelled")
    return ErrorInfo("Error", f"child execution {child.id} ended as {child.status.value}")


def batch_result_json(children: Sequence[ChildOutcome]) -> str:
    """The ordered results of a batch as JSON text, built without decoding child results."""
    parts: list[str] = []
    dumps = json.dumps
    for c in children:
        ok = c.status is ExecutionStatus.COMPLETED
        error = None if ok else _child_error(c)
        parts.append(
            '{"workflow_id":%s,"execution_id":%s,"success":%s,"result":%s,"error":%s,'
            '"output_schema":%s}'
            % (
                dumps(c.workflow_id),
                dumps(c.id),
                "true" if ok else "false",
                (c.result_json or "null") if ok else "null",
                dumps(error.to_json()) if error else "null",
                dumps(c.output_schema) if ok and c.output_schema else "null",
            )
        )
    return "[" + ",".join(parts) + "]"
