"""The status counters of trees and children (polos/store/status_counts.py, migration 0007)
through every status change, on each backend: their values at each stage of a tree's life, and
(after every test of the store suite, conftest.py) equality with a `GROUP BY` over executions.
"""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import asyncpg
import pytest

from polos import protocol
from polos.model import ErrorInfo
from polos.server.cancel import cancel_tree
from polos.server.settings import Settings
from polos.store.base import Store, StoreTx, Work, migrations
from polos.store.sqlite import SqliteStore, _statements
from tests import pg
from tests.status_counts_check import assert_status_counts_exact
from tests.store.harness import (
    CountingSignals,
    Engine,
    claim_as,
    start_parent,
    suspend_on_batch,
)


async def _tree(store: Store, root: str) -> dict[str, int]:
    return await store.read(lambda tx: tx.tree_counts(root))


async def _children(store: Store, parent: str) -> dict[str, int]:
    counts = await store.read(lambda tx: tx.children_counts([parent, "nobody"]))
    assert "nobody" not in counts
    return counts.get(parent, {})


async def _of_step(store: Store, parent: str, step_key: str) -> dict[str, int]:
    return await store.read(lambda tx: tx.child_status_counts(parent, step_key))


async def _finish(engine: Engine, child_id: str, success: bool) -> None:
    row = await engine.get(child_id)
    assert row.worker_id is not None
    outcome: protocol.CompleteOutcome | protocol.FailOutcome = (
        protocol.CompleteOutcome(result="1")
        if success
        else protocol.FailOutcome(
            error=protocol.StoredError(type="ValueError", message="no"), retryable=False
        )
    )
    item = protocol.ReportItem(execution_id=child_id, attempt=row.attempt, outcome=outcome)
    assert await engine.report_one(row.worker_id, item) == "ok"


async def test_counts_follow_a_tree_through_its_life(engine: Engine) -> None:
    store = engine.store
    parent_id, _ = await start_parent(engine)
    assert await _tree(store, parent_id) == {"queued": 1}
    assert await _children(store, parent_id) == {}

    assert await claim_as(engine, "parents") == [parent_id]
    assert await _tree(store, parent_id) == {"running": 1}

    assert await suspend_on_batch(engine, parent_id, attempt=1, n=4) == "ok"
    assert await _tree(store, parent_id) == {"waiting": 1, "queued": 4}
    assert await _children(store, parent_id) == {"queued": 4}
    assert await _of_step(store, parent_id, "reviews") == {"queued": 4}
    assert await _of_step(store, parent_id, "other") == {}

    kids = await claim_as(engine, "kids", max_count=3)
    assert len(kids) == 3
    assert await _tree(store, parent_id) == {"waiting": 1, "queued": 1, "running": 3}
    assert await _children(store, parent_id) == {"queued": 1, "running": 3}

    await _finish(engine, kids[0], success=True)
    await _finish(engine, kids[1], success=False)
    assert await _tree(store, parent_id) == {
        "waiting": 1,
        "queued": 1,
        "running": 1,
        "completed": 1,
        "failed": 1,
    }
    assert await _of_step(store, parent_id, "reviews") == {
        "queued": 1,
        "running": 1,
        "completed": 1,
        "failed": 1,
    }

    # A lease that expires puts its child back in the queue.
    engine.advance(engine.settings.lease_seconds + 5)
    assert await engine.expire(engine.clock) >= 1
    assert await _children(store, parent_id) == {"queued": 2, "completed": 1, "failed": 1}

    # Cancelling the tree cancels what was not final, the root included.
    async def cancel(tx: StoreTx) -> int:
        error = ErrorInfo("ExecutionCancelledError", "stop")
        return len(await cancel_tree(tx, parent_id, error, engine.clock))

    assert await store.run(cancel) == 3
    assert await _tree(store, parent_id) == {"cancelled": 3, "completed": 1, "failed": 1}
    assert await _children(store, parent_id) == {"cancelled": 2, "completed": 1, "failed": 1}


async def test_counts_of_separate_roots_and_steps_stay_apart(engine: Engine) -> None:
    store = engine.store
    first, _ = await start_parent(engine)
    second = (await engine.submit("parent_wf", "null")).execution_id
    assert sorted(await claim_as(engine, "parents")) == sorted([first, second])
    assert await suspend_on_batch(engine, first, attempt=1, n=2, key="a") == "ok"
    assert await suspend_on_batch(engine, second, attempt=1, n=3, key="b") == "ok"
    assert await _tree(store, first) == {"waiting": 1, "queued": 2}
    assert await _tree(store, second) == {"waiting": 1, "queued": 3}
    assert await _of_step(store, first, "a") == {"queued": 2}
    assert await _of_step(store, first, "b") == {}
    assert await _of_step(store, second, "b") == {"queued": 3}
    both = await store.read(lambda tx: tx.children_counts([first, second]))
    assert both == {first: {"queued": 2}, second: {"queued": 3}}


async def test_a_unit_that_fails_leaves_the_counts_as_they_were(engine: Engine) -> None:
    store = engine.store
    parent_id, _ = await start_parent(engine)

    class Boom(Exception):
        pass

    async def claim_then_fail(tx: StoreTx) -> None:
        worker = await tx.get_worker("parents")
        assert worker is not None
        await tx.mark_running([parent_id], worker.id, engine.clock + 30, engine.clock)
        # Inside the unit, the counts include its own changes.
        assert await tx.tree_counts(parent_id) == {"running": 1}
        raise Boom

    with pytest.raises(Boom):
        await store.run(claim_then_fail)
    assert await _tree(store, parent_id) == {"queued": 1}
    assert (await engine.get(parent_id)).status.value == "queued"


# A database of migration 0006 with executions in it: (id, parent, parent step, status).
_OLD_ROWS = [
    ("r1", None, None, "running"),
    ("c1", "r1", "s", "completed"),
    ("c2", "r1", "s", "completed"),
    ("c3", "r1", "t", "queued"),
    ("g1", "c3", None, "failed"),
    ("r2", None, None, "completed"),
]
_OLD_ROOTS = {"r1": "r1", "c1": "r1", "c2": "r1", "c3": "r1", "g1": "r1", "r2": "r2"}
_INSERT_OLD = (
    "INSERT INTO executions (id, project_id, workflow_id, status, queue_name, payload, "
    "parent_execution_id, root_execution_id, root_workflow_id, parent_step_key, ready_at, "
    "created_at, updated_at) VALUES ({}, 'p', 'w', {}, 'q', 'null', {}, {}, 'w', {}, 0, 0, 0)"
)
_COUNTED_TREE = {
    ("r1", "running", 1),
    ("r1", "completed", 2),
    ("r1", "queued", 1),
    ("r1", "failed", 1),
    ("r2", "completed", 1),
}
_COUNTED_CHILDREN = {("r1", "s", "completed", 2), ("r1", "t", "queued", 1), ("c3", "", "failed", 1)}


def test_the_migration_counts_the_executions_already_there_sqlite(tmp_path: Path) -> None:
    conn = sqlite3.connect(tmp_path / "old.db", isolation_level=None)
    steps = migrations("sqlite")
    assert steps[6].name == "status_counts"
    for m in steps[:6]:
        for statement in _statements(m.sql):
            conn.execute(statement)
    for id_, parent, step, status in _OLD_ROWS:
        conn.execute(
            _INSERT_OLD.format("?", "?", "?", "?", "?"),
            (id_, status, parent, _OLD_ROOTS[id_], step),
        )
    for statement in _statements(steps[6].sql):
        conn.execute(statement)
    assert set(conn.execute("SELECT * FROM tree_status_counts")) == _COUNTED_TREE
    assert set(conn.execute("SELECT * FROM child_status_counts")) == _COUNTED_CHILDREN
    conn.close()


async def test_the_migration_counts_the_executions_already_there_postgres() -> None:
    url = pg.create_database("polos_migration")
    try:
        conn = await asyncpg.connect(url)
        try:
            steps = migrations("postgres")
            assert steps[6].name == "status_counts"
            for m in steps[:6]:
                await conn.execute(m.sql)
            for id_, parent, step, status in _OLD_ROWS:
                await conn.execute(
                    _INSERT_OLD.format("$1", "$2", "$3", "$4", "$5"),
                    id_,
                    status,
                    parent,
                    _OLD_ROOTS[id_],
                    step,
                )
            await conn.execute(steps[6].sql)
            tree = {tuple(r) for r in await conn.fetch("SELECT * FROM tree_status_counts")}
            children = {tuple(r) for r in await conn.fetch("SELECT * FROM child_status_counts")}
        finally:
            await conn.close()
    finally:
        pg.drop_database(url)
    assert tree == _COUNTED_TREE
    assert children == _COUNTED_CHILDREN


async def test_units_committed_together_each_count_once(sqlite_store: SqliteStore) -> None:
    """On SQLite the units of one group commit write their counts together, before the
    COMMIT; a unit rolled back to its savepoint takes its own changes with it."""
    engine = Engine(sqlite_store, CountingSignals(), Settings(database_url="sqlite:///unused"))
    parent_id, _ = await start_parent(engine)
    other = (await engine.submit("parent_wf", "null")).execution_id
    worker = await engine.worker("parents")

    class Boom(Exception):
        pass

    def claim(execution_id: str, then_fail: bool) -> Work[None]:
        async def work(tx: StoreTx) -> None:
            await tx.mark_running([execution_id], worker.id, engine.clock + 30, engine.clock)
            if then_fail:
                raise Boom

        return work

    async def read_inside(tx: StoreTx) -> dict[str, int]:
        # Runs after the first claim in the same transaction: sees it, not yet written.
        return await tx.tree_counts(parent_id)

    before = sqlite_store.transactions
    results = await asyncio.gather(
        sqlite_store.run(claim(parent_id, then_fail=False)),
        sqlite_store.run(read_inside),
        sqlite_store.run(claim(other, then_fail=True)),
        return_exceptions=True,
    )
    assert sqlite_store.transactions == before + 1  # one group commit
    assert results[1] == {"running": 1}
    assert isinstance(results[2], Boom)
    assert await _tree(sqlite_store, parent_id) == {"running": 1}
    assert await _tree(sqlite_store, other) == {"queued": 1}
    await assert_status_counts_exact(sqlite_store)
