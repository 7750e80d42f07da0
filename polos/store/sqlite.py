"""The embedded store: one SQLite file in WAL mode, written with group commit.

All units of work queued while the previous transaction ran are applied in one transaction
(each inside a savepoint, so a unit that raises undoes only its own writes) and committed once:
one fsync for many changes. The units run on the server's event loop and must not await real
I/O — the committer drives each coroutine synchronously and fails one that suspends — so a unit
is atomic without locks.

A SQLite file is served by one server process; several replicas need PostgreSQL.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import sqlite3
import time
from collections.abc import Callable, Collection, Coroutine, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

from polos.model import (
    ClaimedExecution,
    ErrorInfo,
    ExecutionRow,
    ExecutionStatus,
    NewExecution,
    StepKind,
    StepRecord,
    StepStatus,
    WorkerInfo,
    WorkflowRegistration,
)
from polos.store.base import (
    ChildOutcome,
    FenceRow,
    FinalUpdate,
    Store,
    StoreTx,
    UsageKey,
    Work,
    migrations,
)

T = TypeVar("T")
log = logging.getLogger("polos.store.sqlite")

# Keep IN (...) lists well under SQLite's variable limit.
_CHUNK = 500

_EXECUTION_COLUMNS = (
    "id, project_id, workflow_id, status, queue_name, concurrency_key, payload, result, "
    "error_type, error_message, output_schema, parent_execution_id, root_execution_id, "
    "root_workflow_id, parent_step_key, batch_index, deployment_id, session_id, user_id, "
    "attempt, retry_count, worker_id, created_at, started_at, completed_at, run_timeout_seconds"
)
_FENCE_COLUMNS = (
    "id, project_id, workflow_id, status, attempt, worker_id, queue_name, concurrency_key, "
    "parent_execution_id, parent_step_key, notify_parent, retry_count, root_execution_id, "
    "root_workflow_id, deployment_id, session_id, user_id"
)
_CLAIM_RETURNING = (
    "id, attempt, workflow_id, payload, queue_name, concurrency_key, deployment_id, "
    "parent_execution_id, root_execution_id, root_workflow_id, parent_step_key, retry_count, "
    "created_at, session_id, user_id, COALESCE(state, initial_state), run_timeout_seconds"
)
_FINAL = ("completed", "failed", "cancelled")


def _chunks(items: Sequence[T]) -> Iterator[Sequence[T]]:
    for i in range(0, len(items), _CHUNK):
        yield items[i : i + _CHUNK]


def _marks(n: int) -> str:
    return ",".join("?" * n)


def _error(type_: str | None, message: str | None) -> ErrorInfo | None:
    if type_ is None and message is None:
        return None
    return ErrorInfo(type=type_ or "Error", message=message or "")


def _execution_row(r: sqlite3.Row | tuple[Any, ...]) -> ExecutionRow:
    return ExecutionRow(
        id=r[0],
        project_id=r[1],
        workflow_id=r[2],
        status=ExecutionStatus(r[3]),
        queue_name=r[4],
        concurrency_key=r[5],
        payload_json=r[6],
        result_json=r[7],
        error=_error(r[8], r[9]),
        output_schema=r[10],
        parent_execution_id=r[11],
        root_execution_id=r[12],
        root_workflow_id=r[13],
        parent_step_key=r[14],
        batch_index=r[15],
        deployment_id=r[16],
        session_id=r[17],
        user_id=r[18],
        attempt=r[19],
        retry_count=r[20],
        worker_id=r[21],
        created_at=r[22],
        started_at=r[23],
        completed_at=r[24],
        run_timeout_seconds=r[25],
    )


def _fence_row(r: tuple[Any, ...]) -> FenceRow:
    return FenceRow(
        id=r[0],
        project_id=r[1],
        workflow_id=r[2],
        status=ExecutionStatus(r[3]),
        attempt=r[4],
        worker_id=r[5],
        queue_name=r[6],
        concurrency_key=r[7],
        parent_execution_id=r[8],
        parent_step_key=r[9],
        notify_parent=bool(r[10]),
        retry_count=r[11],
        root_execution_id=r[12],
        root_workflow_id=r[13],
        deployment_id=r[14],
        session_id=r[15],
        user_id=r[16],
    )


class SqliteTx(StoreTx):
    def __init__(self, conn: sqlite3.Connection) -> None:
        self._c = conn
        self.callbacks: list[Callable[[], None]] = []

    def on_commit(self, callback: Callable[[], None]) -> None:
        self.callbacks.append(callback)

    # -- projects, workflows, queues -----------------------------------------------------

    async def ensure_project(self, project_id: str, now: float) -> None:
        self._c.execute(
            "INSERT INTO projects (id, created_at) VALUES (?, ?) ON CONFLICT DO NOTHING",
            (project_id, now),
        )

    async def upsert_workflows(
        self, project_id: str, registrations: Sequence[WorkflowRegistration], now: float
    ) -> None:
        self._c.executemany(
            "INSERT INTO workflows (project_id, workflow_id, queue_name, registered_at, "
            "last_registered_at) VALUES (?, ?, ?, ?, ?) ON CONFLICT (project_id, workflow_id) "
            "DO UPDATE SET queue_name = excluded.queue_name, "
            "last_registered_at = excluded.last_registered_at",
            [(project_id, r.workflow_id, r.queue_name, now, now) for r in registrations],
        )

    async def known_workflows(
        self, project_id: str, workflow_ids: Collection[str]
    ) -> dict[str, str]:
        ids = list(dict.fromkeys(workflow_ids))
        found: dict[str, str] = {}
        for part in _chunks(ids):
            for wid, queue in self._c.execute(
                f"SELECT workflow_id, queue_name FROM workflows WHERE project_id = ? "
                f"AND workflow_id IN ({_marks(len(part))})",
                (project_id, *part),
            ):
                found[wid] = queue
        return found

    async def ensure_queues(
        self,
        project_id: str,
        queues: Mapping[str, int | None],
        now: float,
        overwrite_limits: bool,
    ) -> None:
        rows = [(project_id, name, limit, now) for name, limit in queues.items()]
        if overwrite_limits:
            sql = (
                "INSERT INTO queues (project_id, name, concurrency_limit, created_at) "
                "VALUES (?, ?, ?, ?) ON CONFLICT (project_id, name) "
                "DO UPDATE SET concurrency_limit = excluded.concurrency_limit"
            )
        else:
            sql = (
                "INSERT INTO queues (project_id, name, concurrency_limit, created_at) "
                "VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING"
            )
        self._c.executemany(sql, rows)

    async def queue_limits(self, project_id: str) -> dict[str, int | None]:
        return dict(
            self._c.execute(
                "SELECT name, concurrency_limit FROM queues WHERE project_id = ?", (project_id,)
            ).fetchall()
        )

    async def queue_usage(self, project_id: str, queue_name: str) -> dict[str, int]:
        return dict(
            self._c.execute(
                "SELECT concurrency_key, running FROM queue_usage "
                "WHERE project_id = ? AND queue_name = ?",
                (project_id, queue_name),
            ).fetchall()
        )

    async def adjust_usage(self, deltas: Mapping[UsageKey, int]) -> None:
        rows = [(p, q, k, d) for (p, q, k), d in deltas.items() if d]
        self._c.executemany(
            "INSERT INTO queue_usage (project_id, queue_name, concurrency_key, running) "
            "VALUES (?, ?, ?, MAX(?, 0)) ON CONFLICT (project_id, queue_name, concurrency_key) "
            "DO UPDATE SET running = MAX(running + ?, 0)",
            [(p, q, k, d, d) for p, q, k, d in rows],
        )

    # -- workers ---------------------------------------------------------------------------

    async def save_worker(self, worker: WorkerInfo) -> None:
        self._c.execute(
            "INSERT INTO workers (id, project_id, deployment_id, capacity, workflow_ids, "
            "registered_at, last_heartbeat_at) VALUES (?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (id) DO UPDATE SET project_id = excluded.project_id, "
            "deployment_id = excluded.deployment_id, capacity = excluded.capacity, "
            "workflow_ids = excluded.workflow_ids, registered_at = excluded.registered_at, "
            "last_heartbeat_at = excluded.last_heartbeat_at",
            (
                worker.id,
                worker.project_id,
                worker.deployment_id,
                worker.capacity,
                json.dumps(worker.workflow_ids),
                worker.registered_at,
                worker.last_heartbeat_at,
            ),
        )

    async def get_worker(self, worker_id: str) -> WorkerInfo | None:
        r = self._c.execute(
            "SELECT id, project_id, deployment_id, capacity, workflow_ids, registered_at, "
            "last_heartbeat_at FROM workers WHERE id = ?",
            (worker_id,),
        ).fetchone()
        if r is None:
            return None
        return WorkerInfo(r[0], r[1], r[2], r[3], json.loads(r[4]), r[5], r[6])

    async def touch_worker(self, worker_id: str, now: float) -> bool:
        cur = self._c.execute(
            "UPDATE workers SET last_heartbeat_at = ? WHERE id = ?", (now, worker_id)
        )
        return cur.rowcount > 0

    async def touch_all_workers(self, now: float) -> None:
        self._c.execute("UPDATE workers SET last_heartbeat_at = MAX(last_heartbeat_at, ?)", (now,))

    async def delete_workers(self, worker_ids: Collection[str]) -> None:
        self._c.executemany("DELETE FROM workers WHERE id = ?", [(w,) for w in worker_ids])

    async def silent_workers(self, heard_before: float) -> list[str]:
        return [
            r[0]
            for r in self._c.execute(
                "SELECT id FROM workers WHERE last_heartbeat_at < ?", (heard_before,)
            )
        ]

    async def extend_leases(
        self, worker_id: str, execution_ids: Collection[str], until: float
    ) -> int:
        count = 0
        for part in _chunks(list(execution_ids)):
            count += self._c.execute(
                "UPDATE executions SET lease_expires_at = ? WHERE worker_id = ? "
                f"AND status = 'running' AND id IN ({_marks(len(part))})",
                (until, worker_id, *part),
            ).rowcount
        return count

    async def extend_all_leases(self, until: float) -> int:
        return self._c.execute(
            "UPDATE executions SET lease_expires_at = ? "
            "WHERE status = 'running' AND lease_expires_at < ?",
            (until, until),
        ).rowcount

    # -- executions ------------------------------------------------------------------------

    async def insert_executions(self, rows: Sequence[NewExecution], now: float) -> set[str]:
        existing: set[str] = set()
        for part in _chunks([r.id for r in rows]):
            existing.update(
                x[0]
                for x in self._c.execute(
                    f"SELECT id FROM executions WHERE id IN ({_marks(len(part))})", tuple(part)
                )
            )
        fresh = [r for r in rows if r.id not in existing]
        self._c.executemany(
            "INSERT INTO executions (id, project_id, workflow_id, status, queue_name, "
            "concurrency_key, payload, parent_execution_id, root_execution_id, root_workflow_id, "
            "parent_step_key, batch_index, notify_parent, deployment_id, session_id, user_id, "
            "initial_state, run_timeout_seconds, idempotency_key, ready_at, created_at, "
            "updated_at) VALUES (?, ?, ?, 'queued', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, "
            "?, ?, ?)",
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
                )
                for r in fresh
            ],
        )
        return {r.id for r in fresh}

    async def execution_by_idempotency_key(self, project_id: str, key: str) -> ExecutionRow | None:
        r = self._c.execute(
            f"SELECT {_EXECUTION_COLUMNS} FROM executions "
            "WHERE project_id = ? AND idempotency_key = ?",
            (project_id, key),
        ).fetchone()
        return None if r is None else _execution_row(r)

    async def get_execution(self, execution_id: str) -> ExecutionRow | None:
        r = self._c.execute(
            f"SELECT {_EXECUTION_COLUMNS} FROM executions WHERE id = ?", (execution_id,)
        ).fetchone()
        return None if r is None else _execution_row(r)

    async def fence_rows(self, execution_ids: Collection[str]) -> dict[str, FenceRow]:
        ids = list(dict.fromkeys(execution_ids))
        out: dict[str, FenceRow] = {}
        for part in _chunks(ids):
            for r in self._c.execute(
                f"SELECT {_FENCE_COLUMNS} FROM executions WHERE id IN ({_marks(len(part))})",
                tuple(part),
            ):
                out[r[0]] = _fence_row(r)
        return out

    async def ready_candidates(
        self,
        project_id: str,
        queue_name: str,
        workflow_ids: Collection[str],
        now: float,
        limit: int,
    ) -> list[tuple[str, str, float]]:
        wf = list(workflow_ids)
        return [
            (r[0], r[1], r[2])
            for r in self._c.execute(
                "SELECT id, concurrency_key, ready_at FROM executions WHERE project_id = ? "
                "AND queue_name = ? AND status = 'queued' AND ready_at <= ? "
                f"AND workflow_id IN ({_marks(len(wf))}) ORDER BY ready_at LIMIT ?",
                (project_id, queue_name, now, *wf, limit),
            )
        ]

    async def mark_running(
        self, execution_ids: Sequence[str], worker_id: str, lease_until: float, now: float
    ) -> list[ClaimedExecution]:
        by_id: dict[str, ClaimedExecution] = {}
        for part in _chunks(execution_ids):
            for r in self._c.execute(
                "UPDATE executions SET status = 'running', attempt = attempt + 1, "
                "worker_id = ?, lease_expires_at = ?, started_at = COALESCE(started_at, ?), "
                f"updated_at = ? WHERE id IN ({_marks(len(part))}) AND status = 'queued' "
                f"RETURNING {_CLAIM_RETURNING}",
                (worker_id, lease_until, now, now, *part),
            ).fetchall():
                by_id[r[0]] = ClaimedExecution(*r)
        return [by_id[i] for i in execution_ids if i in by_id]

    async def load_journals(self, execution_ids: Sequence[str]) -> dict[str, list[StepRecord]]:
        out: dict[str, list[StepRecord]] = {}
        for part in _chunks(execution_ids):
            for r in self._c.execute(
                "SELECT execution_id, step_key, kind, status, position, result, error_type, "
                "error_message, output_schema FROM steps "
                f"WHERE execution_id IN ({_marks(len(part))}) ORDER BY execution_id, position",
                tuple(part),
            ):
                out.setdefault(r[0], []).append(
                    StepRecord(
                        step_key=r[1],
                        kind=StepKind(r[2]),
                        status=StepStatus(r[3]),
                        position=r[4],
                        result_json=r[5],
                        error=_error(r[6], r[7]),
                        output_schema=r[8],
                    )
                )
        return out

    async def finish_executions(self, updates: Sequence[FinalUpdate], now: float) -> None:
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
        self._c.executemany(
            "UPDATE executions SET status = 'queued', worker_id = NULL, lease_expires_at = NULL, "
            "ready_at = ?, retry_count = retry_count + ?, updated_at = ? WHERE id = ?",
            [(ready_at, int(count_retry), now, i) for i in execution_ids],
        )

    async def set_waiting(self, execution_id: str, state_json: str | None, now: float) -> None:
        self._c.execute(
            "UPDATE executions SET status = 'waiting', worker_id = NULL, lease_expires_at = NULL, "
            "state = COALESCE(?, state), updated_at = ? WHERE id = ?",
            (state_json, now, execution_id),
        )

    async def expired_leases(self, now: float, limit: int) -> list[FenceRow]:
        return [
            _fence_row(r)
            for r in self._c.execute(
                f"SELECT {_FENCE_COLUMNS} FROM executions "
                "WHERE status = 'running' AND lease_expires_at < ? LIMIT ?",
                (now, limit),
            )
        ]

    async def running_of_worker(self, worker_id: str) -> list[FenceRow]:
        return [
            _fence_row(r)
            for r in self._c.execute(
                f"SELECT {_FENCE_COLUMNS} FROM executions "
                "WHERE worker_id = ? AND status = 'running'",
                (worker_id,),
            )
        ]

    # -- journals and waiting steps ---------------------------------------------------------

    async def insert_steps(
        self, execution_id: str, steps: Sequence[StepRecord], now: float
    ) -> None:
        self._c.executemany(
            "INSERT INTO steps (execution_id, step_key, position, kind, status, result, "
            "error_type, error_message, output_schema, created_at, completed_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
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
                )
                for s in steps
            ],
        )

    async def set_step_pending(self, execution_id: str, step_key: str, pending: int) -> None:
        self._c.execute(
            "UPDATE steps SET pending = ? WHERE execution_id = ? AND step_key = ? "
            "AND status = 'pending'",
            (pending, execution_id, step_key),
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
            error=_error(r[5], r[6]),
            output_schema=r[7],
        )

    async def count_unfinished_children(self, parent_id: str, step_key: str) -> int:
        row = self._c.execute(
            "SELECT COUNT(*) FROM executions WHERE parent_execution_id = ? "
            "AND parent_step_key = ? AND status NOT IN (?, ?, ?)",
            (parent_id, step_key, *_FINAL),
        ).fetchone()
        return int(row[0])

    async def decrement_pending(
        self, decrements: Mapping[tuple[str, str], int]
    ) -> list[tuple[str, str]]:
        done: list[tuple[str, str]] = []
        for (parent, key), n in decrements.items():
            row = self._c.execute(
                # A child that finished before its parent suspended is not in `pending`
                # (the suspension counts unfinished children only): leave it at 0.
                "UPDATE steps SET pending = pending - ? WHERE execution_id = ? "
                "AND step_key = ? AND status = 'pending' AND pending > 0 RETURNING pending",
                (n, parent, key),
            ).fetchone()
            if row is not None and row[0] <= 0:
                done.append((parent, key))
        return done

    async def child_outcomes(self, parent_id: str, step_key: str) -> list[ChildOutcome]:
        return [
            ChildOutcome(
                id=r[0],
                workflow_id=r[1],
                status=ExecutionStatus(r[2]),
                result_json=r[3],
                error=_error(r[4], r[5]),
                output_schema=r[6],
            )
            for r in self._c.execute(
                "SELECT id, workflow_id, status, result, error_type, error_message, "
                "output_schema FROM executions WHERE parent_execution_id = ? "
                "AND parent_step_key = ? ORDER BY batch_index",
                (parent_id, step_key),
            )
        ]


def _drive(coro: Coroutine[Any, Any, T]) -> T:
    """Run a unit of work to completion without the event loop (it must not suspend)."""
    try:
        coro.send(None)
    except StopIteration as stop:
        return stop.value  # type: ignore[no-any-return]
    coro.close()
    raise RuntimeError("a store unit of work awaited real I/O; on SQLite units must not")


class SqliteStore(Store):
    def __init__(self, path: str | os.PathLike[str], synchronous: str = "full") -> None:
        self.path = str(path)
        if synchronous.lower() not in ("full", "normal", "extra", "off"):
            raise ValueError(f"unknown SQLite synchronous mode {synchronous!r}")
        self._synchronous = synchronous.upper()
        self._conn: sqlite3.Connection | None = None
        self._pending: list[tuple[Work[Any], asyncio.Future[Any]]] = []
        self._wakeup = asyncio.Event()
        self._committer: asyncio.Task[None] | None = None
        self.transactions = 0  # for tests and metrics

    def describe(self) -> str:
        return f"sqlite:///{self.path}"

    async def open(self) -> None:
        if self.path != ":memory:":
            Path(self.path).expanduser().parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(
            self.path, isolation_level=None, check_same_thread=False, timeout=30.0
        )
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute(f"PRAGMA synchronous = {self._synchronous}")
        conn.execute("PRAGMA busy_timeout = 30000")
        conn.execute("PRAGMA temp_store = MEMORY")
        conn.execute("PRAGMA cache_size = -65536")  # 64 MiB
        self._conn = conn
        apply_migrations(conn)
        self._committer = asyncio.create_task(self._commit_loop(), name="sqlite-committer")

    async def close(self) -> None:
        if self._committer is not None:
            # Let queued units finish before closing.
            while self._pending:
                await asyncio.sleep(0)
                self._wakeup.set()
            self._committer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._committer
            self._committer = None
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    async def run(self, work: Work[T]) -> T:
        fut: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._pending.append((work, fut))
        self._wakeup.set()
        return await fut

    async def read(self, work: Work[T]) -> T:
        conn = self._require()
        tx = SqliteTx(conn)
        conn.execute("BEGIN")
        try:
            return _drive(work(tx))
        finally:
            conn.execute("COMMIT")

    def _require(self) -> sqlite3.Connection:
        if self._conn is None:
            raise RuntimeError("the SQLite store is not open")
        return self._conn

    async def _commit_loop(self) -> None:
        while True:
            await self._wakeup.wait()
            self._wakeup.clear()
            batch, self._pending = self._pending, []
            if batch:
                try:
                    self._apply(batch)
                except Exception:  # _apply settles its futures; never let the loop die
                    log.exception("SQLite committer failed")

    def _apply(self, batch: list[tuple[Work[Any], asyncio.Future[Any]]]) -> None:
        conn = self._require()
        outcomes: list[tuple[asyncio.Future[Any], bool, Any, list[Callable[[], None]]]] = []
        fatal: BaseException | None = None
        try:
            conn.execute("BEGIN IMMEDIATE")
            for work, fut in batch:
                tx = SqliteTx(conn)
                conn.execute("SAVEPOINT unit")
                try:
                    value: Any = _drive(work(tx))
                except BaseException as exc:  # a unit's failure is that unit's alone
                    conn.execute("ROLLBACK TO unit")
                    conn.execute("RELEASE unit")
                    outcomes.append((fut, False, exc, []))
                    if isinstance(exc, KeyboardInterrupt | SystemExit):
                        fatal = exc
                else:
                    conn.execute("RELEASE unit")
                    outcomes.append((fut, True, value, tx.callbacks))
            conn.execute("COMMIT")
            self.transactions += 1
        except Exception as exc:  # the commit itself failed: nothing of the batch is stored
            log.exception("SQLite transaction failed")
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
            for _, fut in batch:
                if not fut.done():
                    fut.set_exception(exc)
            return
        for fut, ok, value, callbacks in outcomes:
            if ok:
                for callback in callbacks:
                    try:
                        callback()
                    except Exception:
                        log.exception("post-commit callback failed")
            if fut.done():  # the caller went away (cancelled request)
                continue
            if ok:
                fut.set_result(value)
            elif isinstance(value, asyncio.CancelledError):
                fut.cancel()
            else:
                fut.set_exception(value)
        if fatal is not None:
            raise fatal


def apply_migrations(conn: sqlite3.Connection) -> list[int]:
    """Apply the migrations not yet applied; return their versions."""
    conn.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations "
        "(version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at REAL NOT NULL)"
    )
    done = {r[0] for r in conn.execute("SELECT version FROM schema_migrations")}
    applied: list[int] = []
    for m in migrations("sqlite"):
        if m.version in done:
            continue
        conn.execute("BEGIN IMMEDIATE")
        try:
            for statement in _statements(m.sql):
                conn.execute(statement)
            conn.execute(
                "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
                (m.version, m.name, time.time()),
            )
            conn.execute("COMMIT")
        except Exception:
            conn.execute("ROLLBACK")
            raise
        applied.append(m.version)
    return applied


def _statements(sql: str) -> list[str]:
    """Split a script into statements the way SQLite itself sees them."""
    statements: list[str] = []
    current: list[str] = []
    for line in sql.splitlines(keepends=True):
        current.append(line)
        text = "".join(current)
        if sqlite3.complete_statement(text):
            if text.strip(" \n;"):
                statements.append(text.strip())
            current = []
    rest = "".join(current).strip()
    if rest and not all(x.strip().startswith("--") for x in rest.splitlines() if x.strip()):
        raise ValueError(f"incomplete SQL statement at the end of a migration: {rest[:80]!r}")
    return statements
