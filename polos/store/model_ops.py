"""Store operations of the workflow model (timers, fair claims, cancellation trees,
schedules), written once for both databases.

They use four primitives each dialect provides (`_rows`, `_one`, `_exec`, `_many`, with `?`
placeholders) and two lock clauses (`LOCK`: `FOR UPDATE`, `LOCK_SKIP`: `FOR UPDATE SKIP LOCKED`,
both empty on SQLite, whose write transaction is alone).

Events, event waits and event triggers are in store/event_ops.py (EventOps), a sibling mixin of
`StoreTx` written the same way.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from polos.model import (
    FINAL_STATUSES,
    ErrorInfo,
    FenceRow,
    Schedule,
    Timer,
    TimerKind,
)
from polos.store.rows import FENCE_COLUMNS, Row, fence_row
from polos.store.status_counts import StatusCountOps

_SCHEDULE_COLUMNS = (
    "id, project_id, workflow_id, schedule_key, cron, timezone, catch_up_seconds, "
    "next_fire_at, last_fire_at, created_at, updated_at"
)
_FINAL = tuple(s.value for s in FINAL_STATUSES)


def _timer(r: Row) -> Timer:
    return Timer(r[0], r[1], TimerKind(r[2]), r[3], r[4], r[5], r[6])


def _schedule(r: Row) -> Schedule:
    return Schedule(r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8], r[9], r[10])


class ModelOps(StatusCountOps):
    LOCK: str
    LOCK_SKIP: str
    # The column that orders executions by insertion (rowid on SQLite, seq on PostgreSQL).
    INSERTION_ORDER: str

    async def _rows(self, sql: str, *params: Any) -> list[Row]:
        raise NotImplementedError

    async def _one(self, sql: str, *params: Any) -> Row | None:
        raise NotImplementedError

    async def _exec(self, sql: str, *params: Any) -> int:
        raise NotImplementedError

    async def _many(self, sql: str, rows: list[tuple[Any, ...]]) -> None:
        raise NotImplementedError

    # -- fair claims -------------------------------------------------------------------

    async def ready_candidates_by_key(
        self,
        project_id: str,
        queue_name: str,
        workflow_ids: Sequence[str],
        now: float,
        per_key: int,
        limit: int,
    ) -> list[tuple[str, str, float]]:
        """Due queued executions of a limited queue, taken round-robin across concurrency
        keys (each key's oldest first, then each key's second...), at most `per_key` a key:
        one key's flood cannot starve another. No row locks: claims of a limited queue are
        serialized by `lock_queue_for_claim` already."""
        marks = ",".join("?" * len(workflow_ids))
        rows = await self._rows(
            "SELECT id, concurrency_key, ready_at FROM (SELECT id, concurrency_key, ready_at, "
            "ROW_NUMBER() OVER (PARTITION BY concurrency_key ORDER BY ready_at, "
            f"{self.INSERTION_ORDER}) AS rn "
            "FROM executions WHERE project_id = ? AND queue_name = ? AND status = 'queued' "
            f"AND ready_at <= ? AND workflow_id IN ({marks})) AS ranked "
            "WHERE rn <= ? ORDER BY rn, ready_at LIMIT ?",
            project_id,
            queue_name,
            now,
            *workflow_ids,
            per_key,
            limit,
        )
        return [(r[0], r[1], float(r[2])) for r in rows]

    # -- timers --------------------------------------------------------------------------

    async def insert_timer(
        self,
        project_id: str,
        kind: TimerKind,
        fire_at: float,
        execution_id: str | None = None,
        step_key: str | None = None,
        target: str | None = None,
    ) -> None:
        await self._exec(
            "INSERT INTO timers (project_id, kind, execution_id, step_key, target, fire_at) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            project_id,
            kind.value,
            execution_id,
            step_key,
            target,
            fire_at,
        )

    async def has_timer(self, kind: TimerKind, target: str, step_key: str, after: float) -> bool:
        """Whether such a timer is set to fire after `after` (one firing now does not count)."""
        row = await self._one(
            "SELECT 1 FROM timers WHERE kind = ? AND target = ? AND step_key = ? AND fire_at > ?",
            kind.value,
            target,
            step_key,
            after,
        )
        return row is not None

    async def due_timers(self, now: float, limit: int) -> list[Timer]:
        rows = await self._rows(
            "SELECT id, project_id, kind, execution_id, step_key, target, fire_at FROM timers "
            f"WHERE fire_at <= ? ORDER BY fire_at, id LIMIT ?{self.LOCK_SKIP}",
            now,
            limit,
        )
        return [_timer(r) for r in rows]

    async def delete_timers(self, timer_ids: Sequence[int]) -> None:
        await self._many("DELETE FROM timers WHERE id = ?", [(i,) for i in timer_ids])

    async def delete_step_timers(self, execution_id: str, step_key: str) -> None:
        await self._exec(
            "DELETE FROM timers WHERE execution_id = ? AND step_key = ?", execution_id, step_key
        )

    async def next_timer_at(self) -> float | None:
        row = await self._one("SELECT MIN(fire_at) FROM timers")
        return None if row is None or row[0] is None else float(row[0])

    async def shift_leases(self, seconds: float) -> None:
        """The test clock jumped: leases move along (a jump alone expires nothing)."""
        await self._exec(
            "UPDATE executions SET lease_expires_at = lease_expires_at + ? "
            "WHERE status = 'running'",
            seconds,
        )

    # -- cancellation --------------------------------------------------------------------

    async def unfinished_tree(self, execution_id: str) -> list[FenceRow]:
        """The execution and its descendants that are not final, locked."""
        rows = await self._rows(
            "WITH RECURSIVE tree(id) AS (SELECT id FROM executions WHERE id = ? "
            "UNION ALL SELECT e.id FROM executions e JOIN tree t "
            "ON e.parent_execution_id = t.id) "
            f"SELECT {FENCE_COLUMNS} FROM executions WHERE id IN (SELECT id FROM tree) "
            f"AND status NOT IN (?, ?, ?) ORDER BY id{self.LOCK}",
            execution_id,
            *_FINAL,
        )
        return [fence_row(r) for r in rows]

    async def unfinished_subtrees(self, parent_id: str, step_key: str) -> list[FenceRow]:
        """The unfinished children of a parent's step and their unfinished descendants,
        locked."""
        rows = await self._rows(
            "WITH RECURSIVE tree(id) AS (SELECT id FROM executions "
            "WHERE parent_execution_id = ? AND parent_step_key = ? "
            "UNION ALL SELECT e.id FROM executions e JOIN tree t "
            "ON e.parent_execution_id = t.id) "
            f"SELECT {FENCE_COLUMNS} FROM executions WHERE id IN (SELECT id FROM tree) "
            f"AND status NOT IN (?, ?, ?) ORDER BY id{self.LOCK}",
            parent_id,
            step_key,
            *_FINAL,
        )
        return [fence_row(r) for r in rows]

    async def cancel_executions(
        self, execution_ids: Sequence[str], error: ErrorInfo, now: float
    ) -> None:
        await self.count_changed(execution_ids, "cancelled")
        await self._many(
            "UPDATE executions SET status = 'cancelled', error_type = ?, error_message = ?, "
            "worker_id = NULL, lease_expires_at = NULL, cancelled_at = ?, completed_at = ?, "
            "updated_at = ? WHERE id = ?",
            [(error.type, error.message, now, now, now, i) for i in sorted(execution_ids)],
        )
        await self._many("DELETE FROM timers WHERE execution_id = ?", [(i,) for i in execution_ids])

    # -- schedules -----------------------------------------------------------------------

    async def upsert_schedule(self, schedule: Schedule) -> Schedule:
        """Create, or change the cron/timezone/window of (project, workflow, key); keeps its
        ID. A changed cron starts counting slots from `schedule.next_fire_at`."""
        existing = await self.get_schedule(schedule.project_id, schedule.workflow_id, schedule.key)
        if existing is None:
            await self._exec(
                f"INSERT INTO schedules ({_SCHEDULE_COLUMNS}) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                schedule.id,
                schedule.project_id,
                schedule.workflow_id,
                schedule.key,
                schedule.cron,
                schedule.timezone,
                schedule.catch_up_seconds,
                schedule.next_fire_at,
                schedule.last_fire_at,
                schedule.created_at,
                schedule.updated_at,
            )
            return schedule
        if (existing.cron, existing.timezone) != (schedule.cron, schedule.timezone):
            existing.next_fire_at = schedule.next_fire_at
        existing.cron, existing.timezone = schedule.cron, schedule.timezone
        existing.catch_up_seconds = schedule.catch_up_seconds
        existing.updated_at = schedule.updated_at
        await self._exec(
            "UPDATE schedules SET cron = ?, timezone = ?, catch_up_seconds = ?, "
            "next_fire_at = ?, updated_at = ? WHERE id = ?",
            existing.cron,
            existing.timezone,
            existing.catch_up_seconds,
            existing.next_fire_at,
            existing.updated_at,
            existing.id,
        )
        return existing

    async def get_schedule(self, project_id: str, workflow_id: str, key: str) -> Schedule | None:
        row = await self._one(
            f"SELECT {_SCHEDULE_COLUMNS} FROM schedules WHERE project_id = ? "
            "AND workflow_id = ? AND schedule_key = ?",
            project_id,
            workflow_id,
            key,
        )
        return None if row is None else _schedule(row)

    async def list_schedules(self, project_id: str, workflow_id: str | None) -> list[Schedule]:
        if workflow_id is None:
            rows = await self._rows(
                f"SELECT {_SCHEDULE_COLUMNS} FROM schedules WHERE project_id = ? "
                "ORDER BY workflow_id, schedule_key",
                project_id,
            )
        else:
            rows = await self._rows(
                f"SELECT {_SCHEDULE_COLUMNS} FROM schedules WHERE project_id = ? "
                "AND workflow_id = ? ORDER BY schedule_key",
                project_id,
                workflow_id,
            )
        return [_schedule(r) for r in rows]

    async def delete_schedule(self, project_id: str, schedule_id: str) -> bool:
        return (
            await self._exec(
                "DELETE FROM schedules WHERE project_id = ? AND id = ?", project_id, schedule_id
            )
            > 0
        )

    async def due_schedules(self, now: float, limit: int) -> list[Schedule]:
        rows = await self._rows(
            f"SELECT {_SCHEDULE_COLUMNS} FROM schedules WHERE next_fire_at <= ? "
            f"ORDER BY next_fire_at LIMIT ?{self.LOCK_SKIP}",
            now,
            limit,
        )
        return [_schedule(r) for r in rows]

    async def set_schedule_times(
        self, schedule_id: str, next_fire_at: float, last_fire_at: float | None
    ) -> None:
        await self._exec(
            "UPDATE schedules SET next_fire_at = ?, last_fire_at = COALESCE(?, last_fire_at) "
            "WHERE id = ?",
            next_fire_at,
            last_fire_at,
            schedule_id,
        )

    async def record_slots(
        self, slots: Sequence[tuple[str, float, str, str | None]], now: float
    ) -> None:
        """(schedule_id, slot_at, status, execution_id) — a slot is recorded once."""
        for schedule_id, slot_at, status, execution_id in slots:
            await self._exec(
                "INSERT INTO schedule_slots (schedule_id, slot_at, status, execution_id, "
                "recorded_at) VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                schedule_id,
                slot_at,
                status,
                execution_id,
                now,
            )

    async def schedule_slots(
        self, schedule_id: str, limit: int
    ) -> list[tuple[float, str, str | None]]:
        rows = await self._rows(
            "SELECT slot_at, status, execution_id FROM schedule_slots WHERE schedule_id = ? "
            "ORDER BY slot_at DESC LIMIT ?",
            schedule_id,
            limit,
        )
        return [(float(r[0]), str(r[1]), r[2]) for r in rows]

    async def execution_state(self, execution_id: str) -> str | None:
        row = await self._one("SELECT state FROM executions WHERE id = ?", execution_id)
        return None if row is None else row[0]
