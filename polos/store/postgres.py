"""The shared store: PostgreSQL through an asyncpg connection pool, for any number of server
replicas.

Each unit of work is one transaction; a unit that loses a race (deadlock, serialization
failure, a unique key another replica inserted first) runs again from the start. Wake-ups of
committed units reach this replica at once and the others through `pg_notify`, which a
dedicated connection per replica `LISTEN`s to (docs/decisions.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import random
import time
import uuid
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from polos.store.base import Store, StoreUnavailable, Work, migrations
from polos.store.postgres_tx import NOTIFY_CHANNEL, PgTx

if TYPE_CHECKING:
    from polos.store.postgres_tx import PgConnection

T = TypeVar("T")
log = logging.getLogger("polos.store.postgres")

# Units that hit one of these ran into another transaction; running them again is safe
# because a unit is pure database logic.
_RETRYABLE = (
    asyncpg.exceptions.DeadlockDetectedError,
    asyncpg.exceptions.SerializationError,
    asyncpg.exceptions.UniqueViolationError,
)
_ATTEMPTS = 6
# The database went away (restart, network): not a bug of ours, a 503 for the caller.
_UNAVAILABLE = (
    OSError,
    TimeoutError,
    asyncpg.exceptions.PostgresConnectionError,
    asyncpg.exceptions.OperatorInterventionError,
    asyncpg.exceptions.InterfaceError,
    # A connection the server terminated mid-COMMIT (MagicStack/asyncpg#784).
    asyncpg.exceptions.InternalClientError,
)
# Any 64-bit number of our own: migrations of several replicas starting together run once.
_MIGRATION_LOCK = 0x706F6C6F73  # "polos"


async def _keep_session(_conn: object) -> None:
    """Units keep no session state (only transaction-scoped locks, no LISTEN, no SET), so the
    pool's default reset query (RESET ALL, UNLISTEN *, ...) on every release is skipped: it
    cost about 0.3 ms per unit. An open transaction is still rolled back by asyncpg."""


def redact(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
    return urlunsplit(parts._replace(netloc=netloc))


def _planner_settings() -> dict[str, str]:
    """Plans made once per statement and connection, never a sequential scan where an index
    serves (docs/decisions.md, "PostgreSQL: generic plans, no sequential scans").

    Planning every execution (`force_custom_plan`, chosen first because generic plans made
    while the tables were tiny stayed full scans as they grew) was about half of
    PostgreSQL's CPU on a single execution's path: 0.1-0.4 ms per bind. A generic plan is
    made once; with sequential scans priced out it takes the index every hot query was
    written for, whatever the tables' size when it was made. `POLOS_PG_PLANNER=custom`
    restores planning per execution (should a query ever need its parameters' values)."""
    mode = os.environ.get("POLOS_PG_PLANNER", "generic").strip().lower()
    if mode == "custom":
        return {"plan_cache_mode": "force_custom_plan"}
    if mode != "generic":
        raise ValueError(f"POLOS_PG_PLANNER must be 'generic' or 'custom', not {mode!r}")
    return {"plan_cache_mode": "force_generic_plan", "enable_seqscan": "off"}


class PostgresStore(Store):
    shared = True

    def __init__(self, url: str, pool_min: int | None = None, pool_max: int | None = None) -> None:
        self.url = url
        self.pool_max = pool_max or int(os.environ.get("POLOS_PG_POOL_MAX", "10"))
        self.pool_min = min(
            pool_min or int(os.environ.get("POLOS_PG_POOL_MIN", "2")), self.pool_max
        )
        # Read here, with the pool's sizes (a test environment hides POLOS_* while it builds
        # its store).
        self._planner = _planner_settings()
        # Tells this replica's notifications from the others'.
        self.sender = uuid.uuid4().hex[:12]
        self._pool: asyncpg.Pool | None = None
        self._listener: asyncio.Task[None] | None = None
        self._closing = False
        self.transactions = 0
        self.retries = 0

    def describe(self) -> str:
        return redact(self.url)

    # -- lifecycle ---------------------------------------------------------------------

    async def open(self) -> None:
        self._pool = await asyncpg.create_pool(
            self.url,
            # Opened at start, but no floor to keep: asyncpg would log a traceback for every
            # failed refill while the database is down.
            init_size=self.pool_min,
            min_size=0,
            max_size=self.pool_max,
            reset=_keep_session,
            server_settings={
                "application_name": "polos-server",
                **self._planner,
            },
        )
        async with self._pool.acquire() as conn:
            await apply_migrations(conn)
        listening = asyncio.Event()
        self._listener = asyncio.create_task(self._listen(listening), name="pg-listener")
        # Notifications sent before the LISTEN began would be missed: start serving after it.
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(10):
                await listening.wait()

    async def close(self) -> None:
        self._closing = True
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._listener
            self._listener = None
        if self._pool is not None:
            await self._pool.close()
            self._pool = None

    def _require(self) -> asyncpg.Pool:
        if self._pool is None:
            raise RuntimeError("the PostgreSQL store is not open")
        return self._pool

    # -- units of work -----------------------------------------------------------------

    async def run(
        self, work: Work[T], *, defer_sync: bool = False, one_statement: bool = False
    ) -> T:
        # Every commit is synced: a deferred one would need a wait for the WAL flush before
        # the answers it permits, and the run route's latency on PostgreSQL is not the goal.
        try:
            return await self._run(work, one_statement)
        except _UNAVAILABLE as exc:
            raise StoreUnavailable(
                f"PostgreSQL is unavailable: {type(exc).__name__}: {exc}"
            ) from exc

    async def _run(self, work: Work[T], one_statement: bool = False) -> T:
        pool = self._require()
        for attempt in range(_ATTEMPTS):
            async with pool.acquire() as conn:
                tx = PgTx(conn, self.wakeups, self.sender)
                try:
                    if one_statement:  # its own transaction (Store.run's contract)
                        value = await work(tx)
                        if not tx.tail_is_empty():
                            raise RuntimeError("a one-statement unit left a tail to write")
                    else:
                        async with conn.transaction():
                            value = await work(tx)
                            await tx.close_unit()
                except _RETRYABLE as exc:
                    if attempt == _ATTEMPTS - 1:
                        raise
                    self.retries += 1
                    log.debug("unit lost a race (%s); running it again", type(exc).__name__)
                    await asyncio.sleep(random.uniform(0, 0.005 * (attempt + 1)))
                    continue
            self.transactions += 1
            for callback in tx.after_commit():
                try:
                    callback()
                except Exception:
                    log.exception("post-commit callback failed")
            return value
        raise AssertionError("unreachable")

    async def read(self, work: Work[T]) -> T:
        try:
            async with self._require().acquire() as conn:
                return await work(PgTx(conn, self.wakeups, self.sender))
        except _UNAVAILABLE as exc:
            raise StoreUnavailable(
                f"PostgreSQL is unavailable: {type(exc).__name__}: {exc}"
            ) from exc

    # -- notifications from the other replicas -----------------------------------------

    def _on_notification(self, _conn: object, _pid: int, _channel: str, payload: object) -> None:
        if not isinstance(payload, str):
            return
        try:
            news = json.loads(payload)
        except ValueError:
            log.warning("ignored a malformed notification: %r", payload[:200])
            return
        if news.get("s") == self.sender:
            return  # delivered locally at commit already
        w = self.wakeups
        for project_id in news.get("w", ()):
            w.work_available(project_id)
        for project_id, when in news.get("a", ()):
            w.work_available_at(project_id, when)
        for execution_id in news.get("f", ()):
            w.execution_final(execution_id)
        for project_id, topic in news.get("t", ()):
            w.topic_published(project_id, topic)

    async def _listen(self, listening: asyncio.Event) -> None:
        delay = 0.1
        while not self._closing:
            conn: asyncpg.Connection[Any] | None = None
            try:
                conn = await asyncpg.connect(
                    self.url, server_settings={"application_name": "polos-listener"}
                )
                lost = asyncio.Event()
                conn.add_termination_listener(lambda _c, lost=lost: lost.set())
                await conn.add_listener(NOTIFY_CHANNEL, self._on_notification)
                listening.set()
                # Whatever was announced while we were not listening is looked at again.
                self.wakeups.wake_everyone()
                delay = 0.1
                while not lost.is_set():
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(10):
                            await lost.wait()
                    if not lost.is_set():
                        await conn.execute("SELECT 1")  # notice a silently dead connection
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("LISTEN connection lost (%s); reconnecting in %.1f s", exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
            finally:
                if conn is not None and not conn.is_closed():
                    with contextlib.suppress(Exception):
                        await conn.close()


async def apply_migrations(conn: PgConnection) -> list[int]:
    """Apply the migrations not yet applied (under an advisory lock); return their versions."""
    applied: list[int] = []
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", _MIGRATION_LOCK)
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, "
            "name TEXT NOT NULL, applied_at DOUBLE PRECISION NOT NULL)"
        )
        done = {r[0] for r in await conn.fetch("SELECT version FROM schema_migrations")}
        for m in migrations("postgres"):
            if m.version in done:
                continue
            await conn.execute(m.sql)
            await conn.execute(
                "INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)",
                m.version,
                m.name,
                time.time(),
            )
            applied.append(m.version)
    return applied
