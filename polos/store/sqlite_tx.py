"""The SQL of the embedded store: `SqliteTx`, the operations units of work call (store/base.py).

Separate from the connection and the committer (sqlite.py) to keep modules small.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from polos.model import (
    ChildOutcome,
    ClaimedExecution,
    ErrorInfo,
    ExecutionRow,
    ExecutionStatus,
    FenceRow,
    FinalUpdate,
    NewExecution,
    StepKind,
    StepRecord,
    StepStatus,
)
from polos.store.base import StoreTx, Wakeups
from polos.store.rows import (
    CLAIM_RETURNING,
    EXECUTION_COLUMNS,
    FENCE_COLUMNS,
    FENCE_COLUMNS_WITH_LIMIT,
    FINAL,
    Row,
    chunks,
    error_info,
    execution_row,
    fence_row,
    marks,
)
from polos.store.sqlite_registry import RegistryOps

T = TypeVar("T")

# Keep IN (...) lists well under SQLite's variable limit.
_CHUNK = 500


@dataclass
class SyncLedger:
    """What decides whether a transaction's commit must fsync (sqlite.py): a unit that did
    not defer its sync, or a claim of an execution this transaction did not insert (its
    answer reveals a lease that must survive a power loss, or two workers could hold the same
    attempt of it; a claim of an execution inserted here vanishes with it)."""

    needs_sync: bool
    inserted: set[str] = field(default_factory=set)


class SqliteTx(RegistryOps, StoreTx):
    def __init__(
        self, conn: sqlite3.Connection, wakeups: Wakeups, ledger: SyncLedger | None = None
    ) -> None:
        self._c = conn
        self._wakeups = wakeups
        self._ledger = ledger
        self.callbacks: list[Callable[[], None]] = []
        # Projects this unit made work ready in (the store runs parked claims after it).
        self.work_projects: set[str] = set()

    def on_commit(self, callback: Callable[[], None]) -> None:
        self.callbacks.append(callback)

    def notify_work(self, project_id: str) -> None:
        self.work_projects.add(project_id)
        self.callbacks.append(lambda: self._wakeups.work_available(project_id))

    def notify_work_at(self, project_id: str, when: float) -> None:
        self.callbacks.append(lambda: self._wakeups.work_available_at(project_id, when))

    def notify_final(self, execution_id: str) -> None:
        self.callbacks.append(lambda: self._wakeups.execution_final(execution_id))

    def notify_timer(self, fire_at: float) -> None:
        self.callbacks.append(lambda: self._wakeups.timer_added(fire_at))

    def notify_topic(self, project_id: str, topic: str) -> None:
        self.callbacks.append(lambda: self._wakeups.topic_published(project_id, topic))

    async def lock_queue_for_claim(self, project_id: str, queue_name: str) -> None:
        pass  # a SQLite transaction is alone: BEGIN IMMEDIATE holds the write lock

    # -- primitives of the shared operations (store/model_ops.py) ---------------------------

    # A SQLite write transaction is alone: no row locks to take.
    LOCK = ""
    LOCK_SKIP = ""
    INSERTION_ORDER = "rowid"

    async def _rows(self, sql: str, *params: Any) -> list[Row]:
        return list(self._c.execute(sql, params).fetchall())

    async def _one(self, sql: str, *params: Any) -> Row | None:
        row: Row | None = self._c.execute(sql, params).fetchone()
        return row

    async def _exec(self, sql: str, *params: Any) -> int:
        return self._c.execute(sql, params).rowcount

    async def _many(self, sql: str, rows: list[tuple[Any, ...]]) -> None:
        self._c.executemany(sql, rows)

    # -- executions ------------------------------------------------------------------------

    async def insert_executions(self, rows: Sequence[NewExecution], now: float) -> set[str]:
        existing: set[str] = set()
        for part in chunks([r.id for r in rows]):
            existing.update(
                x[0]
                for x in self._c.execute(
                    f"SELECT id FROM executions WHERE id IN ({marks(len(part))})", tuple(part)
                )
            )
        fresh = [r for r in rows if r.id not in existing]
        if self._ledger is not None and not self._ledger.needs_sync:
            # Read only while the commit may still skip its sync (never in a report's).
            self._ledger.inserted.update(r.id for r in fresh)
        self._c.executemany(
            "INSERT INTO executions (id, project_id, workflow_id, status, queue_name, "
            "concurrency_key, payload, parent_execution_id, root_execution_id, root_workflow_id, "
            "parent_step_key, batch_index, notify_parent, deployment_id, session_id, user_id, "
            "initial_state, run_timeout_seconds, idempotency_key, ready_at, created_at, "
            "updated_at, event_cursor) VALUES (?, ?, ?, 'queued', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, "
            "?, ?, ?, ?, ?, ?, ?, COALESCE(?, (SELECT COALESCE(MAX(seq), 0) FROM events)))",
            [
                (
                    r.id,
                    r.project_id,
                    r.workflow_id,
                    r.queue_name,
                    r.concurrency_key,
                    r.payload_json,
                    r.parent_execution_id,
                    r.root_execution_id or r.id,
                    r.root_workflow_id or r.workflow_id,
                    r.parent_step_key,
                    r.batch_index,
                    int(r.notify_parent),
                    r.deployment_id,
                    r.session_id,
                    r.user_id,
                    r.initial_state_json,
                    r.run_timeout_seconds,
                    r.idempotency_key,
                    now,
                    now,
                    now,
                    r.event_cursor,
                )
                for r in fresh
            ],
        )
        self.count_inserted(fresh)
        return {r.id for r in fresh}

    async def execution_by_idempotency_key(self, project_id: str, key: str) -> ExecutionRow | None:
        r = self._c.execute(
            f"SELECT {EXECUTION_COLUMNS} FROM executions "
            "WHERE project_id = ? AND idempotency_key = ?",
            (project_id, key),
        ).fetchone()
        return None if r is None else execution_row(r)

    async def get_execution(self, execution_id: str) -> ExecutionRow | None:
        r = self._c.execute(
            f"SELECT {EXECUTION_COLUMNS} FROM executions WHERE id = ?", (execution_id,)
        ).fetchone()
        return None if r is None else execution_row(r)

    async def fence_rows(self, execution_ids: Collection[str]) -> dict[str, FenceRow]:
        ids = list(dict.fromkeys(execution_ids))
        out: dict[str, FenceRow] = {}
        for part in chunks(ids):
            for r in self._c.execute(
                f"SELECT {FENCE_COLUMNS_WITH_LIMIT} FROM executions "
                f"WHERE id IN ({marks(len(part))})",
                tuple(part),
            ):
                out[r[0]] = fence_row(r, with_limit=True)
        return out

    async def ready_candidates(
        self,
        project_id: str,
        queue_names: Sequence[str],
        workflow_ids: Collection[str],
        now: float,
        limit: int,
    ) -> list[tuple[str, str, float, str]]:
        # One statement per queue: in process, each walks its queue's range of the ready index.
        wf = list(workflow_ids)
        sql = (
            "SELECT id, concurrency_key, ready_at FROM executions WHERE project_id = ? "
            "AND queue_name = ? AND status = 'queued' AND ready_at <= ? "
            f"AND workflow_id IN ({marks(len(wf))}) ORDER BY ready_at, rowid LIMIT ?"
        )
        return [
            (r[0], r[1], r[2], queue)
            for queue in queue_names
            for r in self._c.execute(sql, (project_id, queue, now, *wf, limit))
        ]

    async def mark_running(
        self, execution_ids: Sequence[str], worker_id: str, lease_until: float, now: float
    ) -> list[ClaimedExecution]:
        by_id: dict[str, ClaimedExecution] = {}
        for part in chunks(execution_ids):
            for r in self._c.execute(
                "UPDATE executions SET status = 'running', attempt = attempt + 1, "
                "worker_id = ?, lease_expires_at = ?, started_at = COALESCE(started_at, ?), "
                f"updated_at = ? WHERE id IN ({marks(len(part))}) AND status = 'queued' "
                f"RETURNING {CLAIM_RETURNING}",
                (worker_id, lease_until, now, now, *part),
            ).fetchall():
                by_id[r[0]] = ClaimedExecution(*r)
        ledger = self._ledger
        if ledger is not None and not ledger.needs_sync:
            ledger.needs_sync = any(i not in ledger.inserted for i in by_id)
        self.count_claimed(by_id.values())
        return [by_id[i] for i in execution_ids if i in by_id]

    async def load_journals(self, execution_ids: Sequence[str]) -> dict[str, list[StepRecord]]:
        out: dict[str, list[StepRecord]] = {}
        for part in chunks(execution_ids):
            for r in self._c.execute(
                "SELECT execution_id, step_key, kind, status, position, result, error_type, "
                "error_message, output_schema FROM steps "
                f"WHERE execution_id IN ({marks(len(part))}) ORDER BY execution_id, position",
                tuple(part),
            ):
                out.setdefault(r[0], []).append(
                    StepRecord(
                        step_key=r[1],
                        kind=StepKind(r[2]),
                        status=StepStatus(r[3]),
                        position=r[4],
                        result_json=r[5],
                        error=error_info(r[6], r[7]),
                        output_schema=r[8],
                    )
                )
        return out

    async def finish_executions(self, updates: Sequence[FinalUpdate], now: float) -> None:
        by_status: dict[str, list[str]] = {}
        for u in updates:
            if u.running_at is not None:
                self.count_moves([(u.running_at, "running", u.status.value)])
            else:
                by_status.setdefault(u.status.value, []).append(u.id)
        for status, ids in by_status.items():
            await self.count_changed(ids, status)
        self._c.executemany(
            "UPDATE executions SET status = ?, result = ?, error_type = ?, error_message = ?, "
            "output_schema = ?, state = COALESCE(?, state), worker_id = NULL, "
            "lease_expires_at = NULL, completed_at = ?, updated_at = ? WHERE id = ?",
            [
                (
                    u.status.value,
                    u.result_json,
                    u.error.type if u.error else None,
                    u.error.message if u.error else None,
                    u.output_schema,
                    u.state_json,
                    now,
                    now,
                    u.id,
                )
                for u in updates
            ],
        )

    async def requeue_executions(
        self, execution_ids: Sequence[str], ready_at: float, now: float, count_retry: bool
    ) -> None:
        await self.count_changed(execution_ids, "queued")
        self._c.executemany(
            "UPDATE executions SET status = 'queued', worker_id = NULL, lease_expires_at = NULL, "
            "ready_at = ?, retry_count = retry_count + ?, updated_at = ? WHERE id = ?",
            [(ready_at, int(count_retry), now, i) for i in execution_ids],
        )

    async def set_waiting(self, execution_id: str, state_json: str | None, now: float) -> None:
        await self.count_changed([execution_id], "waiting")
        self._c.execute(
            "UPDATE executions SET status = 'waiting', worker_id = NULL, lease_expires_at = NULL, "
            "state = COALESCE(?, state), updated_at = ? WHERE id = ?",
            (state_json, now, execution_id),
        )

    async def expired_leases(self, now: float, limit: int) -> list[FenceRow]:
        return [
            fence_row(r)
            for r in self._c.execute(
                f"SELECT {FENCE_COLUMNS} FROM executions "
                "WHERE status = 'running' AND lease_expires_at < ? LIMIT ?",
                (now, limit),
            )
        ]

    async def running_of_worker(self, worker_id: str) -> list[FenceRow]:
        return [
            fence_row(r)
            for r in self._c.execute(
                f"SELECT {FENCE_COLUMNS} FROM executions "
                "WHERE worker_id = ? AND status = 'running'",
                (worker_id,),
            )
        ]

    # -- journals and waiting steps ---------------------------------------------------------

    async def insert_step_rows(self, rows: Sequence[tuple[str, StepRecord]], now: float) -> None:
        self._c.executemany(
            "INSERT INTO steps (execution_id, step_key, position, kind, status, result, "
            "error_type, error_message, output_schema, created_at, completed_at, "
            "duration_seconds) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
            [
                (
                    execution_id,
                    s.step_key,
                    s.position,
                    s.kind.value,
                    s.status.value,
                    s.result_json,
                    s.error.type if s.error else None,
                    s.error.message if s.error else None,
                    s.output_schema,
                    now,
                    None if s.status is StepStatus.PENDING else now,
                    s.duration_seconds,
                )
                for execution_id, s in rows
            ],
        )

    async def set_step_pending(
        self,
        execution_id: str,
        step_key: str,
        pending: int,
        fail_fast: bool = False,
        min_success: int | None = None,
    ) -> None:
        self._c.execute(
            "UPDATE steps SET pending = ?, fail_fast = ?, min_success = ? WHERE execution_id = ? "
            "AND step_key = ? AND status = 'pending'",
            (pending, int(fail_fast), min_success, execution_id, step_key),
        )

    async def resolve_step(
        self,
        execution_id: str,
        step_key: str,
        status: StepStatus,
        result_json: str | None,
        error: ErrorInfo | None,
        output_schema: str | None,
        now: float,
    ) -> None:
        self._c.execute(
            "UPDATE steps SET status = ?, result = ?, error_type = ?, error_message = ?, "
            "output_schema = ?, pending = 0, completed_at = ? "
            "WHERE execution_id = ? AND step_key = ?",
            (
                status.value,
                result_json,
                error.type if error else None,
                error.message if error else None,
                output_schema,
                now,
                execution_id,
                step_key,
            ),
        )

    async def get_step(self, execution_id: str, step_key: str) -> StepRecord | None:
        r = self._c.execute(
            "SELECT step_key, kind, status, position, result, error_type, error_message, "
            "output_schema FROM steps WHERE execution_id = ? AND step_key = ?",
            (execution_id, step_key),
        ).fetchone()
        if r is None:
            return None
        return StepRecord(
            step_key=r[0],
            kind=StepKind(r[1]),
            status=StepStatus(r[2]),
            position=r[3],
            result_json=r[4],
            error=error_info(r[5], r[6]),
            output_schema=r[7],
        )

    async def count_unfinished_children(self, parent_id: str, step_key: str) -> int:
        row = self._c.execute(
            "SELECT COUNT(*) FROM executions WHERE parent_execution_id = ? "
            "AND parent_step_key = ? AND status NOT IN (?, ?, ?)",
            (parent_id, step_key, *FINAL),
        ).fetchone()
        return int(row[0])

    async def decrement_pending(
        self, decrements: Mapping[tuple[str, str], int]
    ) -> tuple[list[tuple[str, str]], list[tuple[str, str, bool, int | None]]]:
        done: list[tuple[str, str]] = []
        with_policy: list[tuple[str, str, bool, int | None]] = []
        for (parent, key), n in decrements.items():
            row = self._c.execute(
                # A child that finished before its parent suspended is not in `pending`
                # (the suspension counts unfinished children only): leave it at 0.
                "UPDATE steps SET pending = pending - ? WHERE execution_id = ? "
                "AND step_key = ? AND status = 'pending' AND pending > 0 "
                "RETURNING pending, fail_fast, min_success",
                (n, parent, key),
            ).fetchone()
            if row is None:
                continue
            if row[0] <= 0:
                done.append((parent, key))
            elif row[1] or row[2] is not None:
                with_policy.append((parent, key, bool(row[1]), row[2]))
        return done, with_policy

    async def child_outcomes(self, parent_id: str, step_key: str) -> list[ChildOutcome]:
        return [
            ChildOutcome(
                id=r[0],
                workflow_id=r[1],
                status=ExecutionStatus(r[2]),
                result_json=r[3],
                error=error_info(r[4], r[5]),
                output_schema=r[6],
            )
            for r in self._c.execute(
                "SELECT id, workflow_id, status, result, error_type, error_message, "
                "output_schema FROM executions WHERE parent_execution_id = ? "
                "AND parent_step_key = ? ORDER BY batch_index",
                (parent_id, step_key),
            )
        ]
