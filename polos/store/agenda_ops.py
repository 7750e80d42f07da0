"""What the test clock needs to know (`GET /api/v1/testing/agenda`, `polos.testing`): what is
running, what is due now, and when the next thing falls due. Read-only; written once for both
databases with the primitives of `ModelOps`."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from polos.store.rows import Row

# Executions named in an agenda, at most (it is a debugging aid, not a listing).
SAMPLE = 20


@dataclass(slots=True)
class AgendaRows:
    now: float
    running: int = 0
    # (workflow_id, execution_id) of some running executions.
    running_sample: list[tuple[str, str]] = field(default_factory=list)
    # (project_id, workflow_id) -> (queued executions due by `now`, one of their IDs).
    due_queued: dict[tuple[str, str], tuple[int, str]] = field(default_factory=dict)
    # The earliest `ready_at` of a queued execution not due yet (a delayed retry).
    next_ready_at: float | None = None
    # project_id -> workflow IDs served by a worker heard from recently.
    served: dict[str, set[str]] = field(default_factory=dict)
    due_timers: int = 0
    # (fire_at, kind) of the earliest timer.
    next_timer: tuple[float, str] | None = None
    due_schedules: int = 0
    next_schedule_at: float | None = None


class AgendaOps:
    async def _rows(self, sql: str, *params: Any) -> list[Row]:
        raise NotImplementedError

    async def _one(self, sql: str, *params: Any) -> Row | None:
        raise NotImplementedError

    async def clock_agenda(self, now: float, heard_after: float) -> AgendaRows:
        """The state of work at `now`; workers count as live when heard from after
        `heard_after`."""
        out = AgendaRows(now=now)
        row = await self._one("SELECT COUNT(*) FROM executions WHERE status = 'running'")
        out.running = int(row[0]) if row is not None else 0
        if out.running:
            rows = await self._rows(
                "SELECT workflow_id, id FROM executions WHERE status = 'running' "
                "ORDER BY started_at, id LIMIT ?",
                SAMPLE,
            )
            out.running_sample = [(str(r[0]), str(r[1])) for r in rows]
        for r in await self._rows(
            "SELECT project_id, workflow_id, COUNT(*), MIN(id) FROM executions "
            "WHERE status = 'queued' AND ready_at <= ? GROUP BY project_id, workflow_id",
            now,
        ):
            out.due_queued[(str(r[0]), str(r[1]))] = (int(r[2]), str(r[3]))
        row = await self._one(
            "SELECT MIN(ready_at) FROM executions WHERE status = 'queued' AND ready_at > ?", now
        )
        out.next_ready_at = None if row is None or row[0] is None else float(row[0])
        for r in await self._rows(
            "SELECT project_id, workflow_ids FROM workers WHERE last_heartbeat_at > ?",
            heard_after,
        ):
            out.served.setdefault(str(r[0]), set()).update(json.loads(r[1]))
        row = await self._one("SELECT COUNT(*) FROM timers WHERE fire_at <= ?", now)
        out.due_timers = int(row[0]) if row is not None else 0
        row = await self._one("SELECT fire_at, kind FROM timers ORDER BY fire_at, id LIMIT 1")
        out.next_timer = None if row is None else (float(row[0]), str(row[1]))
        row = await self._one("SELECT COUNT(*) FROM schedules WHERE next_fire_at <= ?", now)
        out.due_schedules = int(row[0]) if row is not None else 0
        row = await self._one("SELECT MIN(next_fire_at) FROM schedules")
        out.next_schedule_at = None if row is None or row[0] is None else float(row[0])
        return out
