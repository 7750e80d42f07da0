"""Fixtures of the store contract suite.

Every test that takes `store` (or `engine`) runs once per backend in `BACKENDS`: SQLite on a
fresh file, PostgreSQL on this run's database (tests/pg.py), emptied before each test.
Tests of one backend's own mechanics (SQLite's group commit) take `sqlite_store` instead.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest

from polos.server.settings import Settings
from polos.store import create_store
from polos.store.base import Store
from polos.store.sqlite import SqliteStore
from tests import pg
from tests.status_counts_check import assert_queue_usage_exact, assert_status_counts_exact
from tests.store.harness import CountingSignals, Engine

BACKENDS = ["sqlite", "postgres"]


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    backend = request.param
    if backend == "sqlite":
        return f"sqlite:///{tmp_path / 'polos.db'}"
    if backend == "postgres":
        url: str = request.getfixturevalue("pg_url")
        await_truncate(url)
        return url
    raise AssertionError(f"no database for backend {backend!r}")


def await_truncate(url: str) -> None:
    try:
        pg.run_sync(pg.truncate_all(url))
    except asyncpg.UndefinedTableError:
        pass


async def open_store(database_url: str) -> Store:
    store = create_store(database_url)
    await store.open()
    return store


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[Store]:
    opened = await open_store(database_url)
    try:
        yield opened
        # Whatever the test did, the status counters and the queues' usage are still exact.
        await assert_status_counts_exact(opened)
        await assert_queue_usage_exact(opened)
    finally:
        await opened.close()


@pytest.fixture
async def sqlite_store(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    opened = SqliteStore(tmp_path / "polos.db")
    await opened.open()
    try:
        yield opened
    finally:
        await opened.close()


@pytest.fixture
def settings(database_url: str) -> Settings:
    return Settings(database_url=database_url)


@pytest.fixture
def signals() -> CountingSignals:
    return CountingSignals()


@pytest.fixture
def engine(store: Store, signals: CountingSignals, settings: Settings) -> Engine:
    return Engine(store, signals, settings)
