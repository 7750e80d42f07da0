"""The store contract, part 1: migrations and units of work (part 2, the execution lifecycle
at store level, is test_store_lifecycle.py).

Tests taking `store` are the contract every backend must pass (see conftest.py); tests taking
`sqlite_store` are about SQLite's own group commit.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import Callable
from pathlib import Path

from polos.model import WorkflowRegistration
from polos.store.base import Store, StoreTx, Work, migrations
from polos.store.sqlite import SqliteStore, apply_migrations
from tests.store import introspect
from tests.store.conftest import open_store


def _project_unit(project_id: str, result: object = None) -> Work[object]:
    """A unit that creates a project and returns `result` (default: the project's ID)."""

    async def work(tx: StoreTx) -> object:
        await tx.ensure_project(project_id, 1.0)
        return project_id if result is None else result

    return work


# =========================================================================== migrations


async def test_migrations_produce_the_declared_schema(store: Store) -> None:
    declared_tables, declared_indexes = introspect.declared_schema(introspect.dialect(store))
    assert declared_tables, "no CREATE TABLE found in the migrations"
    assert introspect.tables(store) == set(declared_tables) | {"schema_migrations"}
    for table, declared_columns in declared_tables.items():
        assert introspect.columns(store, table) == declared_columns, table
    assert declared_indexes <= introspect.indexes(store)


async def test_migrations_create_what_the_engine_relies_on(store: Store) -> None:
    expected = {
        "projects": {"id", "created_at"},
        "workflows": {"project_id", "workflow_id", "queue_name"},
        "queues": {"project_id", "name", "concurrency_limit"},
        "queue_usage": {"project_id", "queue_name", "concurrency_key", "running"},
        "workers": {"id", "project_id", "capacity", "workflow_ids", "last_heartbeat_at"},
        "executions": {
            "id",
            "project_id",
            "workflow_id",
            "status",
            "queue_name",
            "concurrency_key",
            "payload",
            "result",
            "error_type",
            "error_message",
            "parent_execution_id",
            "parent_step_key",
            "batch_index",
            "notify_parent",
            "idempotency_key",
            "attempt",
            "worker_id",
            "lease_expires_at",
            "ready_at",
        },
        "steps": {"execution_id", "step_key", "position", "kind", "status", "result", "pending"},
    }
    for table, needed in expected.items():
        assert needed <= introspect.columns(store, table), table


async def test_every_migration_is_recorded_once(store: Store, database_url: str) -> None:
    versions = [m.version for m in migrations(introspect.dialect(store))]
    assert versions == list(range(1, len(versions) + 1))
    assert introspect.applied_versions(store) == versions
    # Opening the same database again applies nothing twice and keeps the data.
    await store.run(_project_unit("kept"))
    again = await open_store(database_url)
    try:
        assert introspect.applied_versions(again) == versions
        assert "kept" in introspect.project_ids(again)
    finally:
        await again.close()


async def test_sqlite_apply_migrations_is_idempotent(sqlite_store: SqliteStore) -> None:
    conn = sqlite3.connect(sqlite_store.path, isolation_level=None)
    try:
        assert apply_migrations(conn) == []
    finally:
        conn.close()


# =========================================================================== units of work


async def test_concurrent_units_each_get_their_own_result(store: Store) -> None:
    units = [_project_unit(f"p{i}", result=i * 10) for i in range(100)]
    results = await asyncio.gather(*(store.run(u) for u in units))
    assert results == [i * 10 for i in range(100)]
    assert {f"p{i}" for i in range(100)} <= introspect.project_ids(store)


async def test_concurrent_units_commit_in_few_transactions(sqlite_store: SqliteStore) -> None:
    before = sqlite_store.transactions
    units = [_project_unit(f"p{i}") for i in range(200)]
    results = await asyncio.gather(*(sqlite_store.run(u) for u in units))
    assert results == [f"p{i}" for i in range(200)]
    used = sqlite_store.transactions - before
    assert 1 <= used <= 2, f"200 concurrent units took {used} transactions"


async def test_a_failing_unit_rolls_back_only_its_own_writes(store: Store) -> None:
    async def failing(tx: StoreTx) -> None:
        await tx.ensure_project("doomed", 1.0)
        raise ValueError("this unit fails after writing")

    units: list[Work[object]] = [_project_unit("before"), failing]
    units.append(_project_unit("after"))
    results = await asyncio.gather(
        *(store.run(u) for u in units),
        return_exceptions=True,
    )
    assert results[0] == "before"
    assert isinstance(results[1], ValueError)
    assert str(results[1]) == "this unit fails after writing"
    assert results[2] == "after"
    committed = introspect.project_ids(store)
    assert {"before", "after"} <= committed
    assert "doomed" not in committed


async def test_a_failing_unit_shares_its_transaction_with_the_others(
    sqlite_store: SqliteStore,
) -> None:
    async def failing(tx: StoreTx) -> None:
        await tx.ensure_project("doomed", 1.0)
        raise KeyError("x")

    before = sqlite_store.transactions
    results = await asyncio.gather(
        sqlite_store.run(_project_unit("a")),
        sqlite_store.run(failing),
        sqlite_store.run(_project_unit("b")),
        return_exceptions=True,
    )
    assert sqlite_store.transactions - before == 1
    assert results[0] == "a" and results[2] == "b"
    assert isinstance(results[1], KeyError)
    assert introspect.project_ids(sqlite_store) >= {"a", "b"}
    assert "doomed" not in introspect.project_ids(sqlite_store)


async def test_a_unit_that_awaits_real_io_fails(sqlite_store: SqliteStore) -> None:
    async def sleepy(tx: StoreTx) -> str:
        await tx.ensure_project("sleepy", 1.0)
        await asyncio.sleep(0.01)
        return "should not get here"

    results = await asyncio.gather(
        sqlite_store.run(sleepy),
        sqlite_store.run(_project_unit("neighbour")),
        return_exceptions=True,
    )
    assert isinstance(results[0], RuntimeError)
    assert "awaited real I/O" in str(results[0])
    assert results[1] == "neighbour"
    assert "sleepy" not in introspect.project_ids(sqlite_store)
    assert "neighbour" in introspect.project_ids(sqlite_store)
    # The store goes on working.
    assert await sqlite_store.run(_project_unit("later")) == "later"


async def test_a_unit_raising_a_base_exception_does_not_wedge_the_store(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "wedge.db")
    await store.open()

    async def interrupted(tx: StoreTx) -> None:
        await tx.ensure_project("interrupted", 1.0)
        raise asyncio.CancelledError()

    try:
        failed = await asyncio.gather(
            asyncio.wait_for(store.run(interrupted), 2), return_exceptions=True
        )
        assert isinstance(failed[0], BaseException)
        # Whatever happened to that unit, the next one must still commit.
        later = await asyncio.gather(
            asyncio.wait_for(store.run(_project_unit("later")), 2),
            return_exceptions=True,
        )
        assert list(later) == ["later"], f"the store no longer commits: {later!r}"
        assert "interrupted" not in introspect.project_ids(store)
    finally:
        # close() waits for queued units; do not let a dead committer hang the suite.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(store.close(), 2)


async def test_on_commit_runs_after_commit_and_not_for_a_failed_unit(store: Store) -> None:
    seen: list[tuple[str, bool]] = []

    def visible_after_commit(name: str) -> Callable[[], None]:
        def callback() -> None:
            seen.append((name, name in introspect.project_ids(store)))

        return callback

    async def good(tx: StoreTx) -> str:
        await tx.ensure_project("committed-project", 1.0)
        tx.on_commit(visible_after_commit("committed-project"))
        assert seen == []  # not during the unit
        return "good"

    async def bad(tx: StoreTx) -> str:
        await tx.ensure_project("failed-project", 1.0)
        tx.on_commit(visible_after_commit("failed-project"))
        raise RuntimeError("rolled back")

    results = await asyncio.gather(store.run(good), store.run(bad), return_exceptions=True)
    assert results[0] == "good"
    assert isinstance(results[1], RuntimeError)
    # The callback of the good unit ran once the data was committed (an independent
    # connection saw it); the failed unit's callback never ran.
    assert seen == [("committed-project", True)]
    await store.run(_project_unit("one-more"))
    assert seen == [("committed-project", True)]


async def test_read_sees_what_units_committed(store: Store) -> None:
    async def write(tx: StoreTx) -> None:
        await tx.ensure_project("readable", 1.0)
        await tx.upsert_workflows("readable", [WorkflowRegistration("wf", "q")], 1.0)

    await store.run(write)
    assert await store.read(lambda tx: tx.known_workflows("readable", ["wf", "nope"])) == {
        "wf": "q"
    }
