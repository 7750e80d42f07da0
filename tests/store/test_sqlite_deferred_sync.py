"""SQLite commits that skip their fsync (`run(..., defer_sync=True)`, the submission of
`Workflow.run`): when a transaction may commit with `synchronous=NORMAL`, and how the next
read or `sync` makes it durable before anyone outside learns of it.

With the default `synchronous=full` the connection runs NORMAL (SQLite never syncs a commit
itself) and the store fdatasyncs the WAL after each commit that must be durable. What is checked
is that setting and the real `fdatasync` calls on the WAL file (a spy that calls through), along
with the store's count of synced commits.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from polos.model import ClaimedExecution, ExecutionRow, WorkerInfo
from polos.server import dispatch, lifecycle
from polos.server.settings import Settings
from polos.store.base import StoreTx
from polos.store.sqlite import SqliteStore
from tests.store.harness import PROJECT, CountingSignals, Engine

NORMAL = 1


def _mode(store: SqliteStore) -> int:
    conn = store._conn
    assert conn is not None
    value: int = conn.execute("PRAGMA synchronous").fetchone()[0]
    return value


class WalSyncs:
    """Counts the process's real `fdatasync` calls on WAL files."""

    def __init__(self) -> None:
        self.count = 0


@pytest.fixture
def wal_syncs(monkeypatch: pytest.MonkeyPatch) -> Iterator[WalSyncs]:
    syncs = WalSyncs()
    real = os.fdatasync

    def spy(fd: int) -> None:
        if os.readlink(f"/proc/self/fd/{fd}").endswith("-wal"):
            syncs.count += 1
        real(fd)

    monkeypatch.setattr(os, "fdatasync", spy)
    yield syncs


def _engine(store: SqliteStore, tmp_path: Path) -> Engine:
    return Engine(store, CountingSignals(), Settings(database_url=f"sqlite:///{tmp_path}/x.db"))


async def _submit(engine: Engine, defer_sync: bool) -> str:
    spec = lifecycle.SubmitSpec("wf", "null")

    async def work(tx: StoreTx) -> list[lifecycle.Submitted]:
        return await lifecycle.submit(tx, PROJECT, [spec], engine.clock)

    [submitted] = await engine.store.run(work, defer_sync=defer_sync)
    return submitted.execution_id


async def _get(store: SqliteStore, execution_id: str) -> ExecutionRow | None:
    async def work(tx: StoreTx) -> ExecutionRow | None:
        return await tx.get_execution(execution_id)

    return await store.read(work)


async def test_a_deferred_unit_commits_without_fsync_until_a_read_syncs_it(
    sqlite_store: SqliteStore, tmp_path: Path, wal_syncs: WalSyncs
) -> None:
    engine = _engine(sqlite_store, tmp_path)
    await engine.register("w1", [("wf", "default", None)])
    # SQLite never syncs a commit by itself here: the store does, after the COMMIT.
    assert _mode(sqlite_store) == NORMAL
    synced, fsyncs = sqlite_store.synced_commits, wal_syncs.count

    execution_id = await _submit(engine, defer_sync=True)

    assert wal_syncs.count == fsyncs
    assert sqlite_store.synced_commits == synced
    assert sqlite_store.pending_sync
    # A read syncs first (an fsync of the WAL, no transaction), then sees the row.
    transactions = sqlite_store.transactions
    row = await _get(sqlite_store, execution_id)
    assert row is not None and row.status == "queued"
    assert not sqlite_store.pending_sync
    assert wal_syncs.count == fsyncs + 1
    assert sqlite_store.synced_commits == synced + 1
    assert sqlite_store.transactions == transactions
    # Nothing left to sync: the next read costs no fsync.
    await _get(sqlite_store, execution_id)
    assert wal_syncs.count == fsyncs + 1


async def test_a_unit_that_must_be_durable_is_fsynced_once(
    sqlite_store: SqliteStore, tmp_path: Path, wal_syncs: WalSyncs
) -> None:
    engine = _engine(sqlite_store, tmp_path)
    await engine.register("w1", [("wf", "default", None)])
    fsyncs = wal_syncs.count

    execution_id = await _submit(engine, defer_sync=False)

    assert wal_syncs.count == fsyncs + 1
    assert not sqlite_store.pending_sync
    # The read after it finds nothing to sync.
    assert await _get(sqlite_store, execution_id) is not None
    assert wal_syncs.count == fsyncs + 1


async def test_a_synced_unit_makes_the_deferred_ones_before_it_durable(
    sqlite_store: SqliteStore, tmp_path: Path, wal_syncs: WalSyncs
) -> None:
    engine = _engine(sqlite_store, tmp_path)
    await engine.register("w1", [("wf", "default", None)])
    await _submit(engine, defer_sync=True)
    assert sqlite_store.pending_sync
    synced, fsyncs = sqlite_store.synced_commits, wal_syncs.count

    await _submit(engine, defer_sync=False)

    assert not sqlite_store.pending_sync
    assert sqlite_store.synced_commits == synced + 1
    assert wal_syncs.count == fsyncs + 1
    await sqlite_store.sync()  # nothing to do
    assert sqlite_store.synced_commits == synced + 1
    assert wal_syncs.count == fsyncs + 1


async def test_one_synced_unit_syncs_the_transaction_it_shares(
    sqlite_store: SqliteStore, tmp_path: Path
) -> None:
    engine = _engine(sqlite_store, tmp_path)
    await engine.register("w1", [("wf", "default", None)])
    transactions, synced = sqlite_store.transactions, sqlite_store.synced_commits

    await asyncio.gather(_submit(engine, defer_sync=True), _submit(engine, defer_sync=False))

    assert sqlite_store.transactions == transactions + 1
    assert sqlite_store.synced_commits == synced + 1
    assert not sqlite_store.pending_sync


async def _park_claim(engine: Engine, worker_id: str) -> asyncio.Future[list[ClaimedExecution]]:
    worker = await engine.worker(worker_id)

    async def work(tx: StoreTx) -> list[ClaimedExecution]:
        return await dispatch.claim(tx, worker, 10, engine.clock, 30.0)

    parked = engine.store.park(PROJECT, work)
    assert parked is not None
    return parked


async def test_a_parked_claim_of_only_the_new_execution_keeps_the_commit_deferred(
    sqlite_store: SqliteStore, tmp_path: Path, wal_syncs: WalSyncs
) -> None:
    engine = _engine(sqlite_store, tmp_path)
    await engine.register("w1", [("wf", "default", None)])
    parked = await _park_claim(engine, "w1")
    synced, fsyncs = sqlite_store.synced_commits, wal_syncs.count

    execution_id = await _submit(engine, defer_sync=True)

    # The claim ran in the submission's transaction: if that is lost, so is what it claimed.
    assert [c.id for c in await parked] == [execution_id]
    assert sqlite_store.synced_commits == synced
    assert wal_syncs.count == fsyncs
    assert sqlite_store.pending_sync


async def test_a_parked_claim_of_an_older_execution_syncs_the_commit(
    sqlite_store: SqliteStore, tmp_path: Path, wal_syncs: WalSyncs
) -> None:
    engine = _engine(sqlite_store, tmp_path)
    await engine.register("w1", [("wf", "default", None)])
    older = await _submit(engine, defer_sync=False)
    parked = await _park_claim(engine, "w1")
    synced, fsyncs = sqlite_store.synced_commits, wal_syncs.count

    newer = await _submit(engine, defer_sync=True)

    # The lease of `older` was handed out by this commit: it must survive a power loss, or a
    # second claim after it could hand out the same attempt again.
    assert {c.id for c in await parked} == {older, newer}
    assert sqlite_store.synced_commits == synced + 1
    assert wal_syncs.count == fsyncs + 1
    assert not sqlite_store.pending_sync


async def test_a_store_configured_not_to_sync_never_switches(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "normal.db", synchronous="normal")
    await store.open()
    try:
        engine = _engine(store, tmp_path)
        await engine.register("w1", [("wf", "default", None)])
        await _submit(engine, defer_sync=True)
        await _submit(engine, defer_sync=False)
        assert _mode(store) == NORMAL
        assert not store.pending_sync
        assert store.synced_commits == 0
    finally:
        await store.close()


async def _claim(engine: Engine, worker: WorkerInfo) -> list[str]:

    async def work(tx: StoreTx) -> list[ClaimedExecution]:
        return await dispatch.claim(tx, worker, 10, engine.clock, 30.0)

    return [c.id for c in await engine.store.run(work, defer_sync=True)]


async def test_a_deferred_claim_that_finds_nothing_does_not_sync(
    sqlite_store: SqliteStore, tmp_path: Path, wal_syncs: WalSyncs
) -> None:
    engine = _engine(sqlite_store, tmp_path)
    await engine.register("w1", [("wf", "default", None)])
    other = await engine.register("w2", [("other", "default", None)])
    await _submit(engine, defer_sync=True)
    synced, fsyncs = sqlite_store.synced_commits, wal_syncs.count

    # (The worker's row comes from its registration: a read would sync first.)
    assert await _claim(engine, other) == []

    assert sqlite_store.synced_commits == synced
    assert wal_syncs.count == fsyncs
    assert sqlite_store.pending_sync


async def test_a_deferred_claim_of_an_execution_written_before_syncs(
    sqlite_store: SqliteStore, tmp_path: Path, wal_syncs: WalSyncs
) -> None:
    engine = _engine(sqlite_store, tmp_path)
    worker = await engine.register("w1", [("wf", "default", None)])
    execution_id = await _submit(engine, defer_sync=True)
    synced, fsyncs = sqlite_store.synced_commits, wal_syncs.count

    assert await _claim(engine, worker) == [execution_id]

    # Committed without a sync (decided before the claim found work), then the WAL's fsync.
    assert sqlite_store.synced_commits == synced + 1
    assert wal_syncs.count == fsyncs + 1
    assert not sqlite_store.pending_sync


async def test_closing_syncs_what_was_deferred(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "close.db")
    await store.open()
    engine = _engine(store, tmp_path)
    await engine.register("w1", [("wf", "default", None)])
    await _submit(engine, defer_sync=True)
    assert store.pending_sync
    await store.close()
    assert not store.pending_sync


async def test_a_store_configured_extra_lets_sqlite_sync(
    tmp_path: Path, wal_syncs: WalSyncs
) -> None:
    store = SqliteStore(tmp_path / "extra.db", synchronous="extra")
    await store.open()
    try:
        engine = _engine(store, tmp_path)
        await engine.register("w1", [("wf", "default", None)])
        await _submit(engine, defer_sync=True)
        await _submit(engine, defer_sync=False)
        assert _mode(store) == 3  # EXTRA: SQLite syncs every commit itself, none is deferred
        assert not store.pending_sync
        assert wal_syncs.count == 0  # the spy sees the store's calls, not SQLite's own
    finally:
        await store.close()
