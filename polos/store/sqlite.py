"""The embedded store: one SQLite file in WAL mode, written with group commit.

All units of work queued while the previous transaction ran are applied in one transaction
(each inside a savepoint, so a unit that raises undoes only its own writes) and committed once:
one fsync for many changes. The units run on the server's event loop and must not await real
I/O — the committer drives each coroutine synchronously and fails one that suspends — so a unit
is atomic without locks.

With the default `synchronous=full` the store does SQLite's fsync itself: the connection runs
with `synchronous=NORMAL` and, after the COMMIT of a transaction that must be durable, the
store fdatasyncs the WAL file, as SQLite's FULL would have done before answering (no pragma
switched per transaction; docs/decisions.md). A transaction whose units all
deferred their sync (`run(..., defer_sync=True)`) and whose parked claims took only executions
it inserted itself is not synced: it is durable with the next synced commit (an fsync of the
WAL covers every frame before it), which `read` and `sync` force first (docs/decisions.md, "A
run's submission commits without its own fsync").

A SQLite file is served by one server process; several replicas need PostgreSQL.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sqlite3
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, TypeVar

from polos.store.base import Store, Work, migrations
from polos.store.sqlite_tx import SqliteTx, SyncLedger
from polos.store.status_counts import CountDeltas

T = TypeVar("T")
log = logging.getLogger("polos.store.sqlite")


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
        # Units to commit: (work, its future, whether its commit must be synced).
        self._pending: list[tuple[Work[Any], asyncio.Future[Any], bool]] = []
        # Parked units per project, run in the transaction that makes work ready (`park`).
        self._parked: dict[str, list[tuple[Work[Any], asyncio.Future[Any]]]] = {}
        self._wakeup = asyncio.Event()
        self._committer: asyncio.Task[None] | None = None
        self.transactions = 0  # for tests and metrics
        self.synced_commits = 0  # commits followed by the store's fsync of the WAL (tests)
        # FULL is kept by the store (the module's docstring); the other modes by SQLite.
        self._own_sync = self._synchronous == "FULL"
        # Whether a commit since the last fsync of the WAL skipped its own.
        self._unsynced = False

    def describe(self) -> str:
        return f"sqlite:///{self.path}"

    async def open(self) -> None:
        if self.path != ":memory:":
            Path(self.path).expanduser().parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(
            self.path, isolation_level=None, check_same_thread=False, timeout=30.0
        )
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute(f"PRAGMA synchronous = {'NORMAL' if self._own_sync else self._synchronous}")
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
            # Closing checkpoints the WAL only as the last connection to the file: sync here.
            if self._unsynced:
                self._fsync_wal()
                self._unsynced = False
            self._conn.close()
            self._conn = None

    async def run(
        self, work: Work[T], *, defer_sync: bool = False, one_statement: bool = False
    ) -> T:
        fut: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._pending.append((work, fut, not defer_sync))
        self._wakeup.set()
        return await fut

    @property
    def pending_sync(self) -> bool:
        """Whether a commit since the last fsync of the WAL deferred its own."""
        return self._unsynced

    async def sync(self) -> None:
        # No transaction needed: the deferred commits' frames are in the WAL already, and no
        # transaction is half-done between two steps of the event loop (the committer's are
        # synchronous).
        self._synced(needs_sync=True, wrote=False)

    parks_claims = True

    def park(self, project_id: str, work: Work[T]) -> asyncio.Future[T] | None:
        fut: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._parked.setdefault(project_id, []).append((work, fut))
        return fut

    def unpark(self, project_id: str, parked: asyncio.Future[Any]) -> None:
        waiting = self._parked.get(project_id)
        if not waiting:
            return
        waiting[:] = [entry for entry in waiting if entry[1] is not parked]
        if not waiting:
            del self._parked[project_id]

    async def read(self, work: Work[T]) -> T:
        # What a reader sees is durable: nobody outside learns of a deferred unit before it is.
        if self._unsynced:
            await self.sync()
        conn = self._require()
        tx = SqliteTx(conn, self.wakeups)
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

    def _apply(self, batch: list[tuple[Work[Any], asyncio.Future[Any], bool]]) -> None:
        conn = self._require()
        outcomes: list[tuple[asyncio.Future[Any], bool, Any, list[Callable[[], None]]]] = []
        fatal: BaseException | None = None
        # Whether the commit must be synced: decided by the units, and by a parked claim that
        # leases an execution an earlier transaction wrote (SyncLedger).
        ledger = SyncLedger(needs_sync=any(must_sync for _, _, must_sync in batch))
        try:
            conn.execute("BEGIN IMMEDIATE")
            changes = conn.total_changes
            notified: set[str] = set()
            counts = CountDeltas()
            for work, fut, _ in batch:
                if self._apply_unit(conn, work, fut, outcomes, notified, counts, ledger):
                    fatal = outcomes[-1][2]
            # Claims parked on a project that now has work run here, after the units that
            # made it ready: their answers need no transaction of their own.
            units = len(outcomes)
            for project_id in notified:
                for work, fut in self._parked.pop(project_id, []):
                    if not fut.done() and self._apply_unit(
                        conn, work, fut, outcomes, set(), counts, ledger
                    ):
                        fatal = outcomes[-1][2]
            # The status counters change once per transaction (store/status_counts.py).
            _drive(SqliteTx(conn, self.wakeups).flush_status_counts(counts))
            wrote = conn.total_changes != changes
            conn.execute("COMMIT")
            self.transactions += 1
            self._synced(ledger.needs_sync, wrote)
        except Exception as exc:  # the commit itself failed: nothing of the batch is stored
            log.exception("SQLite transaction failed")
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
            for fut in [f for _, f, _ in batch] + [o[0] for o in outcomes]:
                if not fut.done():
                    fut.set_exception(exc)
            return
        # Commit callbacks (wake-ups) run in the transaction's order: a unit's callback can
        # rely on those of the units before it having run (the claim route does).
        for _, ok, _, callbacks in outcomes:
            if ok:
                for callback in callbacks:
                    try:
                        callback()
                    except Exception:
                        log.exception("post-commit callback failed")
        # The parked claims are settled first: a worker waits for their answers to start the
        # work, while the submitters' callers wait for more than this commit anyway.
        for fut, ok, value, _ in outcomes[units:] + outcomes[:units]:
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

    def _synced(self, needs_sync: bool, wrote: bool) -> None:
        """Account for a commit and, where it must be durable, fsync the WAL: it wrote, or an
        earlier commit deferred its sync (a read or `sync` forces that)."""
        if not self._own_sync:
            return  # SQLite syncs each commit itself (EXTRA) or none at all (NORMAL, OFF)
        if not needs_sync:
            self._unsynced = self._unsynced or wrote
            return
        if wrote or self._unsynced:
            self._fsync_wal()
            self.synced_commits += 1
        self._unsynced = False

    def _fsync_wal(self) -> None:
        # SQLite's own fsync at a FULL commit, done here: the frames of this commit and of the
        # deferred ones before it are in the WAL file (or, after a checkpoint, in the database
        # file, which the checkpoint synced), and an fsync of it makes them all durable.
        try:
            fd = os.open(self.path + "-wal", os.O_RDONLY)
        except FileNotFoundError:
            return
        try:
            os.fdatasync(fd)
        finally:
            os.close(fd)

    def _apply_unit(
        self,
        conn: sqlite3.Connection,
        work: Work[Any],
        fut: asyncio.Future[Any],
        outcomes: list[tuple[asyncio.Future[Any], bool, Any, list[Callable[[], None]]]],
        notified: set[str],
        counts: CountDeltas,
        ledger: SyncLedger,
    ) -> bool:
        """Run one unit in a savepoint; record its outcome. True: it raised a fatal error
        (KeyboardInterrupt, SystemExit), to be re-raised once the batch is settled."""
        tx = SqliteTx(conn, self.wakeups, ledger)
        tx._counts_before = counts
        conn.execute("SAVEPOINT unit")
        try:
            value: Any = _drive(work(tx))
        except BaseException as exc:  # a unit's failure is that unit's alone
            conn.execute("ROLLBACK TO unit")
            conn.execute("RELEASE unit")
            outcomes.append((fut, False, exc, []))
            return isinstance(exc, KeyboardInterrupt | SystemExit)
        conn.execute("RELEASE unit")
        changed = tx.take_counts()
        if changed is not None:
            counts.merge(changed)
        outcomes.append((fut, True, value, tx.callbacks))
        notified |= tx.work_projects
        return False


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
