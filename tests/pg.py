"""PostgreSQL for the tests: one throwaway database per test run, dropped at the end.

The server is the one on 127.0.0.1:5432 (trust auth, user postgres) unless
POLOS_TEST_PG_ADMIN_URL names another. The PostgreSQL tests never skip: a missing server is a
failure with instructions (`.ci/run` and `make test` start it first, see scripts/).
"""

from __future__ import annotations

import asyncio
import os
import threading
import uuid
from collections.abc import Coroutine
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

import asyncpg

T = TypeVar("T")

ADMIN_URL = os.environ.get(
    "POLOS_TEST_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)


def run_sync(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine to completion from sync code, even inside a running event loop."""
    result: list[T] = []
    error: list[BaseException] = []

    def target() -> None:
        try:
            result.append(asyncio.run(coro))
        except BaseException as exc:
            error.append(exc)

    thread = threading.Thread(target=target)
    thread.start()
    thread.join()
    if error:
        raise error[0]
    return result[0]


def url_for(database: str) -> str:
    parts = urlsplit(ADMIN_URL)
    return urlunsplit(parts._replace(path=f"/{database}"))


async def _admin(sql: str) -> None:
    conn = await asyncpg.connect(ADMIN_URL, timeout=10)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def create_database(prefix: str = "polos_test") -> str:
    """Create an empty database and return its URL."""
    name = f"{prefix}_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    try:
        run_sync(_admin(f'CREATE DATABASE "{name}"'))
    except (OSError, asyncpg.PostgresError) as exc:
        raise RuntimeError(
            f"PostgreSQL is needed by the tests and is not reachable at {ADMIN_URL}: {exc}. "
            "Start it (scripts/ensure-postgres does), or point POLOS_TEST_PG_ADMIN_URL at one."
        ) from exc
    return url_for(name)


def drop_database(url: str) -> None:
    name = urlsplit(url).path.lstrip("/")
    run_sync(_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


async def query(url: str, sql: str, *params: object) -> list[tuple[Any, ...]]:
    conn = await asyncpg.connect(url, timeout=10)
    try:
        return [tuple(r) for r in await conn.fetch(sql, *params)]
    finally:
        await conn.close()


async def truncate_all(url: str) -> None:
    """Empty every table but the migration record (a fresh database, minus its creation)."""
    conn = await asyncpg.connect(url, timeout=10)
    try:
        names = [
            r[0]
            for r in await conn.fetch(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public' "
                "AND tablename <> 'schema_migrations'"
            )
        ]
        if names:
            await conn.execute("TRUNCATE " + ", ".join(f'"{n}"' for n in names))
    finally:
        await conn.close()
