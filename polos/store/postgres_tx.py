"""The SQL of the PostgreSQL store: `PgTx`, the operations units of work call (store/base.py).

Concurrency between replicas is PostgreSQL's row locks (docs/decisions.md): claims take
candidates with `FOR UPDATE SKIP LOCKED` after locking a limited queue's row; reports lock their
executions in ID order; a finishing child locks its parent before touching its counter; lease
expiry skips rows another replica holds. Locks are taken in a fixed order (executions by ID,
usage rows by key) to keep deadlocks rare; the store retries a unit that hits one.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Collection, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeAlias

import asyncpg

from polos.model import (
    ApiKey,
    ChildOutcome,
    ClaimedExecution,
    ErrorInfo,
    ExecutionRow,
    ExecutionStatus,
    FenceRow,
    FinalUpdate,
    NewExecution,
    RegisteredWorkflow,
    StepKind,
    StepRecord,
    StepStatus,
    WorkerInfo,
    WorkflowRegistration,
)
from polos.store.base import StoreTx, UsageKey, Wakeups
from polos.store.rows import (
    CLAIM_RETURNING,
    EXECUTION_COLUMNS,
    FENCE_COLUMNS,
    FINAL,
    Row,
    error_info,
    execution_row,
    fence_row,
)

if TYPE_CHECKING:
    # A connection of the pool (a proxy) or a plain one (generic in the stubs only).
    PgConnection: TypeAlias = asyncpg.Connection[Any] | asyncpg.pool.PoolConnectionProxy[Any]

NOTIFY_CHANNEL = "polos"
_KEY_COLUMNS = "id, project_id, name, key_hash, prefix, created_at, revoked_at"
# A NOTIFY payload must stay under 8000 bytes.
_PAYLOAD_BUDGET = 7000
# Rows per INSERT ... SELECT FROM unnest(...) statement.
_INSERT_CHUNK = 5000


def _step(r: Row) -> StepRecord:
    return StepRecord(
        step_key=r[0],
        kind=StepKind(r[1]),
        status=StepStatus(r[2]),
        position=r[3],
        result_json=r[4],
        error=error_info(r[5], r[6]),
        output_schema=r[7],
    )


def _numbered(sql: str) -> str:
    """`?` placeholders (the shared operations' style) to PostgreSQL's `$n`."""
    cached = _NUMBERED.get(sql)
    if cached is None:
        parts = sql.split("?")
        cached = parts[0] + "".join(f"${i}{part}" for i, part in enumerate(parts[1:], 1))
        _NUMBERED[sql] = cached
    return cached


_NUMBERED: dict[str, str] = {}


class PgTx(StoreTx):
    def __init__(self, conn: PgConnection, wakeups: Wakeups, sender: str) -> None:
        self._c = conn
        self._wakeups = wakeups
        self._sender = sender
        self.callbacks: list[Callable[[], None]] = []
        self._work: set[str] = set()
        self._work_at: list[tuple[str, float]] = []
        self._final: set[str] = set()
        self._topics: set[tuple[str, str]] = set()

    # -- wake-ups ----------------------------------------------------------------------

    def on_commit(self, callback: Callable[[], None]) -> None:
        self.callbacks.append(callback)

    def notify_work(self, project_id: str) -> None:
        self._work.add(project_id)

    def notify_work_at(self, project_id: str, when: float) -> None:
        self._work_at.append((project_id, when))

    def notify_final(self, execution_id: str) -> None:
        self._final.add(execution_id)

    def notify_timer(self, fire_at: float) -> None:
        self.callbacks.append(lambda: self._wakeups.timer_added(fire_at))

    def notify_topic(self, project_id: str, topic: str) -> None:
        self._topics.add((project_id, topic))

    async def lock_topic(self, project_id: str, topic: str) -> None:
        await self._c.execute(
            "SELECT pg_advisory_xact_lock(hashtextextended($1, 7))",
            # Two topics that hash alike only share a lock.
            f"{project_id}/{topic}",
        )

    async def send_notifications(self) -> None:
        """NOTIFY the other replicas (delivered at commit); called last in the transaction."""
        for payload in notification_payloads(
            self._sender, self._work, self._work_at, self._final, self._topics
        ):
            await self._c.execute("SELECT pg_notify($1, $2)", NOTIFY_CHANNEL, payload)

    def after_commit(self) -> list[Callable[[], None]]:
        """This replica's own wake-ups (its listener ignores its own notifications)."""
        w = self._wakeups
        calls: list[Callable[[], None]] = [
            *(lambda p=p: w.work_available(p) for p in self._work),
            *(lambda p=p, t=t: w.work_available_at(p, t) for p, t in self._work_at),
            *(lambda e=e: w.execution_final(e) for e in self._final),
            *(lambda p=p, t=t: w.topic_published(p, t) for p, t in self._topics),
        ]
        return [*calls, *self.callbacks]

    # -- primitives of the shared operations (store/model_ops.py) ---------------------------

    LOCK = " FOR UPDATE"
    LOCK_SKIP = " FOR UPDATE SKIP LOCKED"
    INSERTION_ORDER = "seq"

    async def _rows(self, sql: str, *params: Any) -> list[Row]:
        return list(await self._c.fetch(_numbered(sql), *params))

    async def _one(self, sql: str, *params: Any) -> Row | None:
        row: Row | None = await self._c.fetchrow(_numbered(sql), *params)
        return row

    async def _exec(self, sql: str, *params: Any) -> int:
        status = await self._c.execute(_numbered(sql), *params)
        try:
            return int(status.rsplit(" ", 1)[-1])
        except ValueError:
            return 0

    async def _many(self, sql: str, rows: list[tuple[Any, ...]]) -> None:
        await self._c.executemany(_numbered(sql), rows)

    # -- projects, workflows, queues -----------------------------------------------------

    async def ensure_project(self, project_id: str, now: float) -> None:
        await self._c.execute(
            "INSERT INTO projects (id, created_at) VALUES ($1, $2) ON CONFLICT DO NOTHING",
            project_id,
            now,
        )

    async def upsert_workflows(
        self, project_id: str, registrations: Sequence[WorkflowRegistration], now: float
    ) -> None:
        await self._c.executemany(
            "INSERT INTO workflows (project_id, workflow_id, queue_name, registered_at, "
            "last_registered_at) VALUES ($1, $2, $3, $4, $4) "
            "ON CONFLICT (project_id, workflow_id) DO UPDATE SET "
            "queue_name = excluded.queue_name, last_registered_at = excluded.last_registered_at",
            [
                (project_id, r.workflow_id, r.queue_name, now)
                for r in sorted(registrations, key=lambda r: r.workflow_id)
            ],
        )

    async def known_workflows(
        self, project_id: str, workflow_ids: Collection[str]
    ) -> dict[str, str]:
        rows = await self._c.fetch(
            "SELECT workflow_id, queue_name FROM workflows WHERE project_id = $1 "
            "AND workflow_id = ANY($2::text[])",
            project_id,
            list(set(workflow_ids)),
        )
        return {r[0]: r[1] for r in rows}

    async def ensure_queues(
        self,
        project_id: str,
        queues: Mapping[str, int | None],
        now: float,
        overwrite_limits: bool,
    ) -> None:
        conflict = (
            "ON CONFLICT (project_id, name) DO UPDATE SET "
            "concurrency_limit = excluded.concurrency_limit"
            if overwrite_limits
            else "ON CONFLICT DO NOTHING"
        )
        await self._c.executemany(
            "INSERT INTO queues (project_id, name, concurrency_limit, created_at) "
            f"VALUES ($1, $2, $3, $4) {conflict}",
            [(project_id, name, limit, now) for name, limit in sorted(queues.items())],
        )

    async def queue_limits(self, project_id: str) -> dict[str, int | None]:
        rows = await self._c.fetch(
            "SELECT name, concurrency_limit FROM queues WHERE project_id = $1", project_id
        )
        return {r[0]: r[1] for r in rows}

    async def lock_queue_for_claim(self, project_id: str, queue_name: str) -> None:
        await self._c.execute(
            "SELECT 1 FROM queues WHERE project_id = $1 AND name = $2 FOR UPDATE",
            project_id,
            queue_name,
        )

    async def queue_usage(self, project_id: str, queue_name: str) -> dict[str, int]:
        rows = await self._c.fetch(
            "SELECT concurrency_key, running FROM queue_usage "
            "WHERE project_id = $1 AND queue_name = $2",
            project_id,
            queue_name,
        )
        return {r[0]: r[1] for r in rows}

    async def adjust_usage(self, deltas: Mapping[UsageKey, int]) -> None:
        rows = [(p, q, k, d) for (p, q, k), d in sorted(deltas.items()) if d]
        if rows:
            await self._c.executemany(
                "INSERT INTO queue_usage (project_id, queue_name, concurrency_key, running) "
                "VALUES ($1, $2, $3, GREATEST($4::int, 0)) "
                "ON CONFLICT (project_id, queue_name, concurrency_key) "
                "DO UPDATE SET running = GREATEST(queue_usage.running + $4::int, 0)",
                rows,
            )

    # -- API keys ----------------------------------------------------------------------------

    async def insert_api_key(self, key: ApiKey) -> None:
        await self._c.execute(
            "INSERT INTO api_keys (id, project_id, name, key_hash, prefix, created_at) "
            "VALUES ($1, $2, $3, $4, $5, $6)",
            key.id,
            key.project_id,
            key.name,
            key.key_hash,
            key.prefix,
            key.created_at,
        )

    async def api_key_by_hash(self, key_hash: str) -> ApiKey | None:
        r = await self._c.fetchrow(
            f"SELECT {_KEY_COLUMNS} FROM api_keys WHERE key_hash = $1", key_hash
        )
        return None if r is None else ApiKey(*r)

    async def list_api_keys(self, project_id: str | None) -> list[ApiKey]:
        rows = await self._c.fetch(
            f"SELECT {_KEY_COLUMNS} FROM api_keys WHERE $1::text IS NULL OR project_id = $1 "
            "ORDER BY created_at",
            project_id,
        )
        return [ApiKey(*r) for r in rows]

    async def revoke_api_key(self, key_id: str, now: float) -> bool:
        found = await self._c.fetchval(
            "UPDATE api_keys SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL RETURNING id",
            now,
            key_id,
        )
        return found is not None

    # -- workers ---------------------------------------------------------------------------

    async def save_worker(self, worker: WorkerInfo) -> None:
        await self._c.execute(
            "INSERT INTO workers (id, project_id, deployment_id, capacity, workflow_ids, "
            "registered_at, last_heartbeat_at) VALUES ($1, $2, $3, $4, $5, $6, $7) "
            "ON CONFLICT (id) DO UPDATE SET project_id = excluded.project_id, "
            "deployment_id = excluded.deployment_id, capacity = excluded.capacity, "
            "workflow_ids = excluded.workflow_ids, registered_at = excluded.registered_at, "
            "last_heartbeat_at = excluded.last_heartbeat_at",
            worker.id,
            worker.project_id,
            worker.deployment_id,
            worker.capacity,
            json.dumps(worker.workflow_ids),
            worker.registered_at,
            worker.last_heartbeat_at,
        )

    async def get_worker(self, worker_id: str) -> WorkerInfo | None:
        r = await self._c.fetchrow(
            "SELECT id, project_id, deployment_id, capacity, workflow_ids, registered_at, "
            "last_heartbeat_at FROM workers WHERE id = $1",
            worker_id,
        )
        if r is None:
            return None
        return WorkerInfo(r[0], r[1], r[2], r[3], json.loads(r[4]), r[5], r[6])

    async def touch_worker(self, worker_id: str, now: float) -> bool:
        found = await self._c.fetchval(
            "UPDATE workers SET last_heartbeat_at = $1 WHERE id = $2 RETURNING id",
            now,
            worker_id,
        )
        return found is not None

    async def touch_all_workers(self, now: float) -> None:
        await self._c.execute(
            "UPDATE workers SET last_heartbeat_at = GREATEST(last_heartbeat_at, $1)", now
        )

    async def delete_workers(self, worker_ids: Collection[str]) -> None:
        await self._c.execute("DELETE FROM workers WHERE id = ANY($1::text[])", list(worker_ids))

    async def silent_workers(self, heard_before: float) -> list[str]:
        rows = await self._c.fetch(
            "SELECT id FROM workers WHERE last_heartbeat_at < $1", heard_before
        )
        return [r[0] for r in rows]

    async def extend_leases(
        self, worker_id: str, execution_ids: Collection[str], until: float
    ) -> set[str]:
        rows = await self._c.fetch(
            "UPDATE executions SET lease_expires_at = $1 WHERE worker_id = $2 "
            "AND status = 'running' AND id = ANY($3::text[]) RETURNING id",
            until,
            worker_id,
            sorted(execution_ids),
        )
        return {r[0] for r in rows}

    async def extend_all_leases(self, until: float) -> int:
        rows = await self._c.fetch(
            "UPDATE executions SET lease_expires_at = $1 "
            "WHERE status = 'running' AND lease_expires_at < $1 RETURNING id",
            until,
        )
        return len(rows)

    # -- executions ------------------------------------------------------------------------

    async def insert_executions(self, rows: Sequence[NewExecution], now: float) -> set[str]:
        inserted: set[str] = set()
        for start in range(0, len(rows), _INSERT_CHUNK):
            part = rows[start : start + _INSERT_CHUNK]
            # Only the primary key is an arbiter: an idempotency-key collision between
            # replicas raises, and the store runs the unit again (it then finds the row).
            found = await self._c.fetch(
                "INSERT INTO executions (id, project_id, workflow_id, status, queue_name, "
                "concurrency_key, payload, parent_execution_id, root_execution_id, "
                "root_workflow_id, parent_step_key, batch_index, notify_parent, deployment_id, "
                "session_id, user_id, initial_state, run_timeout_seconds, idempotency_key, "
                "ready_at, created_at, updated_at, event_cursor) "
                "SELECT u.id, u.project_id, u.workflow_id, 'queued', u.queue_name, u.ckey, "
                "u.payload, u.parent, u.root, u.root_wf, u.step_key, u.batch_index, u.notify, "
                "u.deployment, u.session, u.usr, u.state, u.timeout, u.idem, $20, $20, $20, $21 "
                "FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], "
                "$6::text[], $7::text[], $8::text[], $9::text[], $10::text[], $11::int[], "
                "$12::int[], $13::text[], $14::text[], $15::text[], $16::text[], "
                "$17::float8[], $18::text[], $19::int[]) AS u(id, project_id, workflow_id, "
                "queue_name, ckey, payload, parent, root, root_wf, step_key, batch_index, "
                "notify, deployment, session, usr, state, timeout, idem, ord) "
                "ORDER BY u.ord ON CONFLICT (id) DO NOTHING RETURNING id",
                [r.id for r in part],
                [r.project_id for r in part],
                [r.workflow_id for r in part],
                [r.queue_name for r in part],
                [r.concurrency_key for r in part],
                [r.payload_json for r in part],
                [r.parent_execution_id for r in part],
                [r.root_execution_id or r.id for r in part],
                [r.root_workflow_id or r.workflow_id for r in part],
                [r.parent_step_key for r in part],
                [r.batch_index for r in part],
                [int(r.notify_parent) for r in part],
                [r.deployment_id for r in part],
                [r.session_id for r in part],
                [r.user_id for r in part],
                [r.initial_state_json for r in part],
                [r.run_timeout_seconds for r in part],
                [r.idempotency_key for r in part],
                list(range(len(part))),
                now,
                max((r.event_cursor for r in part), default=0),
            )
            inserted.update(r[0] for r in found)
        return inserted

    async def list_workflows(self, project_id: str) -> list[RegisteredWorkflow]:
        rows = await self._c.fetch(
            "SELECT workflow_id, queue_name, registered_at, last_registered_at "
            "FROM workflows WHERE project_id = $1 ORDER BY workflow_id",
            project_id,
        )
        return [RegisteredWorkflow(*r) for r in rows]

    async def list_workers(self, project_id: str) -> list[WorkerInfo]:
        rows = await self._c.fetch(
            "SELECT id, project_id, deployment_id, capacity, workflow_ids, registered_at, "
            "last_heartbeat_at FROM workers WHERE project_id = $1 ORDER BY registered_at",
            project_id,
        )
        return [WorkerInfo(r[0], r[1], r[2], r[3], json.loads(r[4]), r[5], r[6]) for r in rows]

    async def execution_by_idempotency_key(self, project_id: str, key: str) -> ExecutionRow | None:
        r = await self._c.fetchrow(
            f"SELECT {EXECUTION_COLUMNS} FROM executions "
            "WHERE project_id = $1 AND idempotency_key = $2",
            project_id,
            key,
        )
        return None if r is None else execution_row(r)

    async def get_execution(self, execution_id: str) -> ExecutionRow | None:
        r = await self._c.fetchrow(
            f"SELECT {EXECUTION_COLUMNS} FROM executions WHERE id = $1", execution_id
        )
        return None if r is None else execution_row(r)

    async def fence_rows(self, execution_ids: Collection[str]) -> dict[str, FenceRow]:
        rows = await self._c.fetch(
            f"SELECT {FENCE_COLUMNS} FROM executions WHERE id = ANY($1::text[]) "
            "ORDER BY id FOR UPDATE",
            sorted(set(execution_ids)),
        )
        return {r[0]: fence_row(r) for r in rows}

    async def ready_candidates(
        self,
        project_id: str,
        queue_name: str,
        workflow_ids: Collection[str],
        now: float,
        limit: int,
    ) -> list[tuple[str, str, float]]:
        rows = await self._c.fetch(
            "SELECT id, concurrency_key, ready_at FROM executions WHERE project_id = $1 "
            "AND queue_name = $2 AND status = 'queued' AND ready_at <= $3 "
            "AND workflow_id = ANY($4::text[]) ORDER BY ready_at, seq LIMIT $5 "
            "FOR UPDATE SKIP LOCKED",
            project_id,
            queue_name,
            now,
            list(workflow_ids),
            limit,
        )
        return [(r[0], r[1], r[2]) for r in rows]

    async def mark_running(
        self, execution_ids: Sequence[str], worker_id: str, lease_until: float, now: float
    ) -> list[ClaimedExecution]:
        rows = await self._c.fetch(
            "UPDATE executions SET status = 'running', attempt = attempt + 1, "
            "worker_id = $1, lease_expires_at = $2, started_at = COALESCE(started_at, $3), "
            "updated_at = $3 WHERE id = ANY($4::text[]) AND status = 'queued' "
            f"RETURNING {CLAIM_RETURNING}",
            worker_id,
            lease_until,
            now,
            list(execution_ids),
        )
        by_id = {r[0]: ClaimedExecution(*r) for r in rows}
        return [by_id[i] for i in execution_ids if i in by_id]

    async def load_journals(self, execution_ids: Sequence[str]) -> dict[str, list[StepRecord]]:
        rows = await self._c.fetch(
            "SELECT execution_id, step_key, kind, status, position, result, error_type, "
            "error_message, output_schema FROM steps WHERE execution_id = ANY($1::text[]) "
            "ORDER BY execution_id, position",
            list(execution_ids),
        )
        out: dict[str, list[StepRecord]] = {}
        for r in rows:
            out.setdefault(r[0], []).append(_step(tuple(r)[1:]))
        return out

    async def finish_executions(self, updates: Sequence[FinalUpdate], now: float) -> None:
        await self._c.executemany(
            "UPDATE executions SET status = $1, result = $2, error_type = $3, "
            "error_message = $4, output_schema = $5, state = COALESCE($6, state), "
            "worker_id = NULL, lease_expires_at = NULL, completed_at = $7, updated_at = $7 "
            "WHERE id = $8",
            [
                (
                    u.status.value,
                    u.result_json,
                    u.error.type if u.error else None,
                    u.error.message if u.error else None,
                    u.output_schema,
                    u.state_json,
                    now,
                    u.id,
                )
                for u in sorted(updates, key=lambda u: u.id)
            ],
        )

    async def requeue_executions(
        self, execution_ids: Sequence[str], ready_at: float, now: float, count_retry: bool
    ) -> None:
        await self._c.execute(
            "UPDATE executions SET status = 'queued', worker_id = NULL, "
            "lease_expires_at = NULL, ready_at = $1, retry_count = retry_count + $2, "
            "updated_at = $3 WHERE id = ANY($4::text[])",
            ready_at,
            int(count_retry),
            now,
            sorted(execution_ids),
        )

    async def set_waiting(self, execution_id: str, state_json: str | None, now: float) -> None:
        await self._c.execute(
            "UPDATE executions SET status = 'waiting', worker_id = NULL, "
            "lease_expires_at = NULL, state = COALESCE($1, state), updated_at = $2 "
            "WHERE id = $3",
            state_json,
            now,
            execution_id,
        )

    async def expired_leases(self, now: float, limit: int) -> list[FenceRow]:
        rows = await self._c.fetch(
            f"SELECT {FENCE_COLUMNS} FROM executions WHERE status = 'running' "
            "AND lease_expires_at < $1 ORDER BY id LIMIT $2 FOR UPDATE SKIP LOCKED",
            now,
            limit,
        )
        return [fence_row(r) for r in rows]

    async def running_of_worker(self, worker_id: str) -> list[FenceRow]:
        rows = await self._c.fetch(
            f"SELECT {FENCE_COLUMNS} FROM executions WHERE worker_id = $1 "
            "AND status = 'running' ORDER BY id FOR UPDATE",
            worker_id,
        )
        return [fence_row(r) for r in rows]

    # -- journals and waiting steps ---------------------------------------------------------

    async def insert_steps(
        self, execution_id: str, steps: Sequence[StepRecord], now: float
    ) -> None:
        await self._c.executemany(
            "INSERT INTO steps (execution_id, step_key, position, kind, status, result, "
            "error_type, error_message, output_schema, created_at, completed_at, "
            "duration_seconds) "
            "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) ON CONFLICT DO NOTHING",
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
                for s in steps
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
        await self._c.execute(
            "UPDATE steps SET pending = $1, fail_fast = $2, min_success = $3 "
            "WHERE execution_id = $4 AND step_key = $5 AND status = 'pending'",
            pending,
            int(fail_fast),
            min_success,
            execution_id,
            step_key,
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
        await self._c.execute(
            "UPDATE steps SET status = $1, result = $2, error_type = $3, error_message = $4, "
            "output_schema = $5, pending = 0, completed_at = $6 "
            "WHERE execution_id = $7 AND step_key = $8",
            status.value,
            result_json,
            error.type if error else None,
            error.message if error else None,
            output_schema,
            now,
            execution_id,
            step_key,
        )

    async def get_step(self, execution_id: str, step_key: str) -> StepRecord | None:
        r = await self._c.fetchrow(
            "SELECT step_key, kind, status, position, result, error_type, error_message, "
            "output_schema FROM steps WHERE execution_id = $1 AND step_key = $2",
            execution_id,
            step_key,
        )
        return None if r is None else _step(r)

    async def count_unfinished_children(self, parent_id: str, step_key: str) -> int:
        count = await self._c.fetchval(
            "SELECT COUNT(*) FROM executions WHERE parent_execution_id = $1 "
            "AND parent_step_key = $2 AND status <> ALL($3::text[])",
            parent_id,
            step_key,
            list(FINAL),
        )
        return int(count)

    async def decrement_pending(
        self, decrements: Mapping[tuple[str, str], int]
    ) -> tuple[list[tuple[str, str]], list[tuple[str, str, bool, int | None]]]:
        if not decrements:
            return [], []
        # The parent's row first: this waits for a transaction that is suspending the
        # parent (and counting its unfinished children) to commit, so a child is counted
        # either there or here, never in both or neither.
        await self._c.execute(
            "SELECT 1 FROM executions WHERE id = ANY($1::text[]) ORDER BY id FOR UPDATE",
            sorted({parent for parent, _ in decrements}),
        )
        done: list[tuple[str, str]] = []
        with_policy: list[tuple[str, str, bool, int | None]] = []
        for (parent, key), n in sorted(decrements.items()):
            row = await self._c.fetchrow(
                "UPDATE steps SET pending = pending - $1 WHERE execution_id = $2 "
                "AND step_key = $3 AND status = 'pending' AND pending > 0 "
                "RETURNING pending, fail_fast, min_success",
                n,
                parent,
                key,
            )
            if row is None:
                continue
            if row[0] <= 0:
                done.append((parent, key))
            elif row[1] or row[2] is not None:
                with_policy.append((parent, key, bool(row[1]), row[2]))
        return done, with_policy

    async def child_outcomes(self, parent_id: str, step_key: str) -> list[ChildOutcome]:
        rows = await self._c.fetch(
            "SELECT id, workflow_id, status, result, error_type, error_message, output_schema "
            "FROM executions WHERE parent_execution_id = $1 AND parent_step_key = $2 "
            "ORDER BY batch_index",
            parent_id,
            step_key,
        )
        return [
            ChildOutcome(
                id=r[0],
                workflow_id=r[1],
                status=ExecutionStatus(r[2]),
                result_json=r[3],
                error=error_info(r[4], r[5]),
                output_schema=r[6],
            )
            for r in rows
        ]


def notification_payloads(
    sender: str,
    work: Collection[str],
    work_at: Sequence[tuple[str, float]],
    final: Collection[str],
    topics: Collection[tuple[str, str]] = (),
) -> list[str]:
    """JSON payloads under PostgreSQL's size limit: {"s": sender, "w": [...], "a": [...],
    "f": [...]}."""
    payloads: list[str] = []
    current: dict[str, Any] = {"s": sender}
    size = 40 + len(sender)

    def add(key: str, value: Any) -> None:
        nonlocal current, size
        cost = len(json.dumps(value)) + 2
        if size + cost > _PAYLOAD_BUDGET and len(current) > 1:
            payloads.append(json.dumps(current))
            current, size = {"s": sender}, 40 + len(sender)
        current.setdefault(key, []).append(value)
        size += cost

    for p in sorted(work):
        add("w", p)
    for p, t in work_at:
        add("a", [p, t])
    for e in sorted(final):
        add("f", e)
    for project_id, topic in sorted(topics):
        add("t", [project_id, topic])
    if len(current) > 1:
        payloads.append(json.dumps(current))
    return payloads
