"""Read-only queries of the observability API (the CLI and the dashboard): executions with
filters and keyset pagination, journals with timings, queues, workers' executions in flight,
the latest events. Written once for both databases with the primitives of `ModelOps` (`?`
placeholders; `INSERTION_ORDER` is rowid on SQLite, seq on PostgreSQL). The status counts of
trees and children are counters (store/status_counts.py).

Every query here is one index range (migrations 0006 and 0007 declare the indexes), so its
cost is the size of what it returns or counts, never the size of the table, with two
exceptions a listing can meet:

- listings walk `(filter..., created_at, insertion order)` newest first from the cursor;
  with a status filter, executions_status holds only executions not completed, so listing
  the *completed* ones walks the project's (or the tree's) executions newest first and skips
  the others, and a status filter on a tree walks the tree's executions likewise;
- the one walk that visits each node is `subtree_counts` (descendants of an execution that is
  not a root, and per-level counts of a tree), bounded by the depth asked for.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from polos.model import EventRecord, ExecutionFilter, ExecutionRow, ExecutionStatus
from polos.store.rows import EXECUTION_COLUMNS, Row, execution_row, rows_in

STATUSES: tuple[str, ...] = tuple(s.value for s in ExecutionStatus)
# Deeper than any real tree; a walk of the whole subtree stops here.
MAX_TREE_DEPTH = 1000

_STEP_COLUMNS = (
    "step_key, kind, status, position, created_at, completed_at, duration_seconds, "
    "error_type, error_message, output_schema"
)
_SUMMARY_COLUMNS = (
    "id, workflow_id, status, parent_execution_id, parent_step_key, batch_index, error_type, "
    "error_message, created_at, started_at, completed_at"
)
_EVENT_COLUMNS = (
    "seq, id, project_id, topic, event_type, data, execution_id, root_execution_id, created_at"
)


@dataclass(slots=True)
class StepTiming:
    """One journal entry with its times (unix seconds)."""

    key: str
    kind: str
    status: str
    position: int
    created_at: float
    completed_at: float | None
    duration_seconds: float | None
    error_type: str | None
    error_message: str | None
    output_schema: str | None
    result_json: str | None = None


@dataclass(slots=True)
class ExecutionSummary:
    """What a tree shows of one execution."""

    id: str
    workflow_id: str
    status: str
    parent_execution_id: str | None
    step_key: str | None
    batch_index: int | None
    error_type: str | None
    error_message: str | None
    created_at: float
    started_at: float | None
    completed_at: float | None


@dataclass(slots=True)
class QueueStats:
    name: str
    concurrency_limit: int | None
    running: int = 0
    queued: int = 0
    waiting: int = 0


Counts = dict[str, int]


def _summary(r: Row) -> ExecutionSummary:
    return ExecutionSummary(r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8], r[9], r[10])


class ObserveOps:
    INSERTION_ORDER: str

    async def _rows(self, sql: str, *params: Any) -> list[Row]:
        raise NotImplementedError

    async def _one(self, sql: str, *params: Any) -> Row | None:
        raise NotImplementedError

    # -- executions --------------------------------------------------------------------------

    async def list_executions(
        self, project_id: str, query: ExecutionFilter
    ) -> list[tuple[ExecutionRow, int]]:
        """Executions newest first, with their insertion order (the cursor's tie-break).

        Each page is read as a few index ranges merged (each with the page's limit): after a
        cursor (created_at, order), the rest of its created_at (`order < ?`) and the older
        ones (`created_at < ?`) — SQLite cannot range over a row value that ends with the
        rowid, and the children of a batch share one created_at. A status filter other than
        `completed` repeats executions_status's own condition, so that the planners (SQLite's
        in particular) see that its partial index applies."""
        order = self.INSERTION_ORDER
        where: list[str] = []
        params: list[Any] = []
        by_tree = query.parent_execution_id is not None or query.root_execution_id is not None
        if by_tree:
            # A tree lies in one project: check the project once, on the parent or root, so
            # that the planners see no project condition and take the tree's index.
            for named in (query.parent_execution_id, query.root_execution_id):
                if named is not None:
                    found = await self._one("SELECT project_id FROM executions WHERE id = ?", named)
                    if found is None or found[0] != project_id:
                        return []
        else:
            where.append("project_id = ?")
            params.append(project_id)
        for column, value in (
            ("parent_execution_id", query.parent_execution_id),
            ("root_execution_id", query.root_execution_id),
            ("workflow_id", query.workflow_id),
            ("error_type", query.error_type),
        ):
            if value is not None:
                where.append(f"{column} = ?")
                params.append(value)
        if query.created_after is not None:
            where.append("created_at >= ?")
            params.append(query.created_after)
        if query.created_before is not None:
            where.append("created_at < ?")
            params.append(query.created_before)
        if query.status is not None:
            where.append("status = ?")
            params.append(query.status.value)
            if query.status.value != "completed" and not by_tree:
                where.append("status <> 'completed'")
        ranges: list[tuple[str, list[Any]]] = (
            [("", [])]
            if query.before is None
            else [
                (f" AND created_at = ? AND {order} < ?", [query.before[0], query.before[1]]),
                (" AND created_at < ?", [query.before[0]]),
            ]
        )
        select = f"SELECT {EXECUTION_COLUMNS}, {order} FROM executions WHERE {' AND '.join(where)}"
        tail = f" ORDER BY created_at DESC, {order} DESC LIMIT ?"
        branches: list[str] = []
        all_params: list[Any] = []
        for condition, range_params in ranges:
            branches.append(select + condition + tail)
            all_params += [*params, *range_params, query.limit]
        if len(branches) == 1:
            rows = await self._rows(branches[0], *all_params)
        else:
            union = " UNION ALL ".join(f"SELECT * FROM ({b}) b{i}" for i, b in enumerate(branches))
            # By position: created_at is the 23rd column, the insertion order the 28th.
            rows = await self._rows(
                f"SELECT * FROM ({union}) merged ORDER BY 23 DESC, 28 DESC LIMIT ?",
                *all_params,
                query.limit,
            )
        return [(execution_row(r), int(r[27])) for r in rows]

    async def execution_steps(
        self,
        execution_id: str,
        after: tuple[int, str] | None,
        limit: int,
        with_results: bool,
    ) -> list[StepTiming]:
        """The journal in call order (position, then key), after `after` (a cursor)."""
        columns = _STEP_COLUMNS + (", result" if with_results else "")
        if after is None:
            rows = await self._rows(
                f"SELECT {columns} FROM steps WHERE execution_id = ? "
                "ORDER BY position, step_key LIMIT ?",
                execution_id,
                limit,
            )
        else:
            rows = await self._rows(
                f"SELECT {columns} FROM steps WHERE execution_id = ? "
                "AND (position > ? OR (position = ? AND step_key > ?)) "
                "ORDER BY position, step_key LIMIT ?",
                execution_id,
                after[0],
                after[0],
                after[1],
                limit,
            )
        return [
            StepTiming(
                key=r[0],
                kind=r[1],
                status=r[2],
                position=int(r[3]),
                created_at=float(r[4]),
                completed_at=None if r[5] is None else float(r[5]),
                duration_seconds=None if r[6] is None else float(r[6]),
                error_type=r[7],
                error_message=r[8],
                output_schema=r[9],
                result_json=r[10] if with_results else None,
            )
            for r in rows
        ]

    # -- status counts -----------------------------------------------------------------------

    async def subtree_counts(self, execution_id: str, depth: int) -> list[Counts]:
        """Descendants of an execution by level (index 0: its children) and status, down to
        `depth` levels: a walk that visits each descendant once."""
        rows = await self._rows(
            "WITH RECURSIVE sub(id, status, lvl) AS ("
            "SELECT id, status, 1 FROM executions WHERE parent_execution_id = ? "
            "UNION ALL "
            "SELECT e.id, e.status, sub.lvl + 1 FROM sub JOIN executions e "
            "ON e.parent_execution_id = sub.id WHERE sub.lvl < ?) "
            "SELECT lvl, status, COUNT(*) FROM sub GROUP BY lvl, status",
            execution_id,
            depth,
        )
        levels: list[Counts] = []
        for r in rows:
            level = int(r[0])
            while len(levels) < level:
                levels.append({})
            levels[level - 1][str(r[1])] = int(r[2])
        return levels

    async def child_groups(self, parent_id: str) -> list[tuple[str | None, Counts]]:
        """The children of an execution grouped by the step that started them (in the order
        of their first batch index), with counts by status."""
        rows = await self._rows(
            "SELECT parent_step_key, status, COUNT(*), MIN(created_at), MIN(batch_index) "
            "FROM executions WHERE parent_execution_id = ? GROUP BY parent_step_key, status",
            parent_id,
        )
        groups: dict[str | None, Counts] = {}
        first: dict[str | None, tuple[float, int]] = {}
        for r in rows:
            key = None if r[0] is None else str(r[0])
            groups.setdefault(key, {})[str(r[1])] = int(r[2])
            seen = (float(r[3]), int(r[4] or 0))
            first[key] = min(first.get(key, seen), seen)
        return [(k, groups[k]) for k in sorted(groups, key=lambda k: (first[k], k or ""))]

    async def children_of_step(
        self, parent_id: str, step_key: str | None, limit: int
    ) -> list[ExecutionSummary]:
        """The first `limit` children a step started, in input order (executions_children)."""
        if step_key is None:
            rows = await self._rows(
                f"SELECT {_SUMMARY_COLUMNS} FROM executions WHERE parent_execution_id = ? "
                "AND parent_step_key IS NULL ORDER BY batch_index, created_at LIMIT ?",
                parent_id,
                limit,
            )
        else:
            rows = await self._rows(
                f"SELECT {_SUMMARY_COLUMNS} FROM executions WHERE parent_execution_id = ? "
                "AND parent_step_key = ? ORDER BY batch_index, created_at LIMIT ?",
                parent_id,
                step_key,
                limit,
            )
        return [_summary(r) for r in rows]

    async def execution_summary(
        self, execution_id: str
    ) -> tuple[ExecutionSummary, str, str] | None:
        """An execution as a tree shows it, with its project and its root's ID."""
        row = await self._one(
            f"SELECT {_SUMMARY_COLUMNS}, project_id, root_execution_id FROM executions "
            "WHERE id = ?",
            execution_id,
        )
        return None if row is None else (_summary(row), str(row[11]), str(row[12]))

    # -- queues, workers ---------------------------------------------------------------------

    async def queue_stats(self, project_id: str) -> list[QueueStats]:
        """Each queue of the project: its limit, its running executions (the usage its limit
        is checked against), its queued ones (executions_ready, index only) and its waiting
        ones (executions_status: one row visit per waiting execution)."""
        stats = {
            str(r[0]): QueueStats(str(r[0]), None if r[1] is None else int(r[1]))
            for r in await self._rows(
                "SELECT name, concurrency_limit FROM queues WHERE project_id = ? ORDER BY name",
                project_id,
            )
        }

        def of(name: str) -> QueueStats:
            return stats.setdefault(name, QueueStats(name, None))

        for r in await self._rows(
            "SELECT queue_name, SUM(running) FROM queue_usage WHERE project_id = ? "
            "GROUP BY queue_name",
            project_id,
        ):
            of(str(r[0])).running = max(int(r[1] or 0), 0)
        for r in await self._rows(
            "SELECT queue_name, COUNT(*) FROM executions WHERE project_id = ? "
            "AND status = 'queued' GROUP BY queue_name",
            project_id,
        ):
            of(str(r[0])).queued = int(r[1])
        for r in await self._rows(
            "SELECT queue_name, COUNT(*) FROM executions WHERE project_id = ? "
            "AND status = 'waiting' AND status <> 'completed' GROUP BY queue_name",
            project_id,
        ):
            of(str(r[0])).waiting = int(r[1])
        return [stats[name] for name in sorted(stats)]

    async def running_by_worker(self, worker_ids: Sequence[str]) -> dict[str, int]:
        """How many executions each worker holds now (executions_worker, index only)."""
        rows = await rows_in(
            self._rows,
            "SELECT worker_id, COUNT(*) FROM executions WHERE status = 'running' "
            "AND worker_id IN ({marks}) GROUP BY worker_id",
            list(dict.fromkeys(worker_ids)),
        )
        return {str(r[0]): int(r[1]) for r in rows}

    # -- events ------------------------------------------------------------------------------

    async def recent_events(
        self, project_id: str, topic: str | None, before_seq: int | None, limit: int
    ) -> list[EventRecord]:
        """The project's latest events (of one topic, or across topics), newest first
        (events_topic / events_recent)."""
        where = ["project_id = ?"]
        params: list[Any] = [project_id]
        if topic is not None:
            where.append("topic = ?")
            params.append(topic)
        if before_seq is not None:
            where.append("seq < ?")
            params.append(before_seq)
        rows = await self._rows(
            f"SELECT {_EVENT_COLUMNS} FROM events WHERE {' AND '.join(where)} "
            "ORDER BY seq DESC LIMIT ?",
            *params,
            limit,
        )
        return [EventRecord(r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8]) for r in rows]
