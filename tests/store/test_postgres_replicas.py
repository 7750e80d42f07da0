"""Two PostgreSQL stores on one database behave like two server replicas: racing claims never
hand one execution out twice and never exceed a queue's limit, racing lease sweeps re-queue each
expired execution once, and a wake-up committed by one replica reaches the other."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import AsyncIterator

import pytest

from polos.model import ExecutionStatus, WorkerInfo, WorkflowRegistration
from polos.server import dispatch, lifecycle
from polos.server.settings import Settings
from polos.store.base import Store, StoreTx
from polos.store.postgres import PostgresStore
from tests import pg
from tests.store.harness import CountingSignals

PROJECT = "replicas"


@pytest.fixture
async def replicas(pg_url: str) -> AsyncIterator[list[tuple[PostgresStore, CountingSignals]]]:
    pg.run_sync(pg.truncate_all(pg_url))
    opened: list[tuple[PostgresStore, CountingSignals]] = []
    try:
        for _ in range(2):
            store = PostgresStore(pg_url)
            signals = CountingSignals()
            store.attach(signals)
            await store.open()
            opened.append((store, signals))
        yield opened
    finally:
        for store, _ in opened:
            await store.close()


async def _register(store: Store, worker_id: str, limit: int | None) -> WorkerInfo:
    now = time.time()
    worker = WorkerInfo(worker_id, PROJECT, None, 1000, ["wf"], now, now)

    async def work(tx: StoreTx) -> None:
        await lifecycle.register_worker(tx, worker, [WorkflowRegistration("wf", "q", limit)], now)

    await store.run(work)
    return worker


async def _submit(store: Store, n: int) -> list[str]:
    specs = [lifecycle.SubmitSpec(workflow_id="wf", payload_json="{}") for _ in range(n)]

    async def work(tx: StoreTx) -> list[str]:
        done = await lifecycle.submit(tx, PROJECT, specs, time.time())
        return [s.execution_id for s in done]

    return await store.run(work)


async def _claim(store: Store, worker: WorkerInfo, n: int) -> list[str]:
    async def work(tx: StoreTx) -> list[str]:
        claimed = await dispatch.claim(tx, worker, n, time.time(), 30.0)
        return [c.id for c in claimed]

    return await store.run(work)


async def test_racing_claims_never_double_claim(
    replicas: list[tuple[PostgresStore, CountingSignals]],
) -> None:
    (a, _), (b, _) = replicas
    wa, wb = await _register(a, "wa", None), await _register(b, "wb", None)
    ids = await _submit(a, 400)
    claimed: list[str] = []
    while len(claimed) < len(ids):
        got = await asyncio.gather(*(_claim(s, w, 7) for s, w in [(a, wa), (b, wb)] * 4))
        claimed += [i for batch in got for i in batch]
    assert Counter(claimed).most_common(1)[0][1] == 1
    assert sorted(claimed) == sorted(ids)


async def test_racing_claims_respect_a_queue_limit(
    replicas: list[tuple[PostgresStore, CountingSignals]],
) -> None:
    (a, _), (b, _) = replicas
    wa, wb = await _register(a, "wa", 3), await _register(b, "wb", 3)
    await _submit(a, 50)
    got = await asyncio.gather(*(_claim(s, w, 5) for s, w in [(a, wa), (b, wb)] * 6))
    assert sum(len(batch) for batch in got) == 3


async def test_racing_lease_sweeps_requeue_each_execution_once(
    replicas: list[tuple[PostgresStore, CountingSignals]],
) -> None:
    (a, _), (b, _) = replicas
    worker = await _register(a, "w", None)
    ids = await _submit(a, 300)
    assert len(await _claim(a, worker, 300)) == 300
    later = time.time() + 3600  # every lease has run out by then
    settings = Settings(database_url="postgresql://unused")

    async def sweep(tx: StoreTx) -> int:
        return await lifecycle.expire_leases(tx, settings, later, limit=40)

    swept = 0
    while True:
        counts = await asyncio.gather(*(s.run(sweep) for s in (a, b, a, b)))
        swept += sum(counts)
        if not any(counts):
            break
    assert swept == len(ids)

    async def statuses(tx: StoreTx) -> list[ExecutionStatus]:
        return [(await tx.get_execution(i)).status for i in ids]  # type: ignore[union-attr]

    assert set(await a.read(statuses)) == {ExecutionStatus.QUEUED}
    assert await a.read(lambda tx: tx.queue_usage(PROJECT, "q")) == {"": 0}


async def test_a_wake_up_committed_on_one_replica_reaches_the_other(
    replicas: list[tuple[PostgresStore, CountingSignals]],
) -> None:
    (a, signals_a), (_b, signals_b) = replicas
    await _register(a, "w", None)
    parked = signals_b.work_event(PROJECT)  # a worker long-polling replica B
    before_a = len(signals_a.work_calls)
    await _submit(a, 1)  # submitted through replica A
    async with asyncio.timeout(5):
        await parked.wait()
    assert PROJECT in signals_b.work_calls
    # Replica A woke its own claimers at commit, once: its listener ignores its own news.
    await asyncio.sleep(0.2)
    assert signals_a.work_calls[before_a:] == [PROJECT]
