"""What the server's metrics need from the store (GET /metrics, polos/server/metrics.py).

- `Observations`: what a unit of work did that the metrics count (executions that reached a
  final status, dispatch latencies, step durations). A unit collects them with
  `tx.observe()`; they reach this replica's metrics once the unit committed, so a unit rolled
  back or run again counts once, and each replica counts only what it did itself.
- `MetricsOps.metrics_snapshot`: the live executions (queued, running, waiting) by project,
  workflow and queue, the queues and their limits, and the live workers. Each count is one
  index range (executions_ready, executions_status), so its cost is the number of live
  executions, never the size of the table; the server reads it at most every few seconds.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from polos.store.rows import Row

LIVE_STATUSES = ("queued", "running", "waiting")


@dataclass(slots=True)
class Observations:
    # (project_id, workflow_id, final status) -> executions.
    finished: Counter[tuple[str, str, str]] = field(default_factory=Counter)
    # Seconds from due (queued, or a retry's delay over) to claimed, per claimed execution.
    dispatch_latencies: list[float] = field(default_factory=list)
    # (workflow_id, step kind, step status, seconds) per step whose duration was reported.
    step_durations: list[tuple[str, str, str, float]] = field(default_factory=list)


@dataclass(slots=True)
class MetricsSnapshot:
    # (project_id, workflow_id, queue_name, status) -> live executions (LIVE_STATUSES).
    live: dict[tuple[str, str, str, str], int] = field(default_factory=dict)
    # (project_id, queue_name) -> concurrency limit (None: no limit), for every queue.
    queues: dict[tuple[str, str], int | None] = field(default_factory=dict)
    # project_id -> workers heard from recently.
    workers: dict[str, int] = field(default_factory=dict)


class MetricsOps:
    async def _rows(self, sql: str, *params: Any) -> list[Row]:
        raise NotImplementedError

    async def metrics_snapshot(self, heard_after: float) -> MetricsSnapshot:
        """Live executions, queues and workers (heard from after `heard_after`)."""
        out = MetricsSnapshot()
        for r in await self._rows("SELECT project_id, name, concurrency_limit FROM queues"):
            out.queues[(str(r[0]), str(r[1]))] = None if r[2] is None else int(r[2])
        projects = [str(r[0]) for r in await self._rows("SELECT id FROM projects")]
        for project in projects:
            # One index range per status: executions_status (project_id, status, ...), whose
            # partial condition the query repeats for SQLite's planner. The grouping is on
            # expressions so that no index on (project_id, workflow_id, ...) looks cheaper to
            # the planner for its order (that one would walk the project's history).
            for status in LIVE_STATUSES:
                for r in await self._rows(
                    "SELECT workflow_id || '', queue_name || '', COUNT(*) FROM executions "
                    "WHERE project_id = ? AND status = ? AND status <> 'completed' "
                    "GROUP BY 1, 2",
                    project,
                    status,
                ):
                    out.live[(project, str(r[0]), str(r[1]), status)] = int(r[2])
        for r in await self._rows(
            "SELECT project_id, COUNT(*) FROM workers WHERE last_heartbeat_at > ? "
            "GROUP BY project_id",
            heard_after,
        ):
            out.workers[str(r[0])] = int(r[1])
        return out
