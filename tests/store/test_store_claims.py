"""The store contract, part 2b: claims at store level — what a claim hands out (attempts,
journals, the workflows its worker registered, oldest first across queues) and the queues'
concurrency limits and usage it counts against (design.md rules 2 and 8). The rest of the
lifecycle is in test_store_lifecycle.py.

polos.server.dispatch and polos.server.lifecycle driven against a real store the way the
HTTP routes drive them (see harness.py), with a clock the test controls. Every test runs on
each backend of conftest.BACKENDS.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any, cast

from polos import protocol
from polos.model import ClaimedExecution, ExecutionStatus, StepRecord, StepStatus
from polos.server import dispatch
from polos.store.base import StoreTx
from tests.store.harness import (
    PROJECT,
    Engine,
    step_report,
)

S = ExecutionStatus


async def test_a_claim_reads_its_worker_and_the_projects_queues_together(engine: Engine) -> None:
    await engine.register("w1", [("wf_a", "queue_a", None), ("wf_b", "queue_b", 3)])
    await engine.register("other", [("wf_c", "queue_c", 1)], project="elsewhere")
    worker, limits = await engine.store.read(lambda tx: tx.worker_and_queue_limits("w1", PROJECT))
    assert worker == await engine.worker("w1")
    assert limits == {"queue_a": None, "queue_b": 3}
    # Gone, or asked about in a project without queues: the worker alone is missing.
    gone, limits = await engine.store.read(lambda tx: tx.worker_and_queue_limits("nobody", PROJECT))
    assert gone is None and limits == {"queue_a": None, "queue_b": 3}
    worker, none = await engine.store.read(lambda tx: tx.worker_and_queue_limits("w1", "empty"))
    assert worker is not None and worker.id == "w1" and none == {}


async def test_claim_returns_the_execution_with_attempt_1_and_its_journal(
    engine: Engine,
) -> None:
    worker = await engine.register("w1", [("claim_wf", "claim_wf", None)])
    submitted = await engine.submit("claim_wf", '{"title":"t"}', session_id="s1", user_id="u1")
    [claimed] = await engine.claim(worker)
    assert claimed.id == submitted.execution_id
    assert claimed.attempt == 1
    assert claimed.workflow_id == "claim_wf"
    assert claimed.payload_json == '{"title":"t"}'
    assert claimed.root_execution_id == submitted.execution_id
    assert claimed.parent_execution_id is None
    assert (claimed.session_id, claimed.user_id) == ("s1", "u1")
    assert claimed.journal == []
    row = await engine.get(claimed.id)
    assert row.status is S.RUNNING
    assert row.worker_id == "w1"
    assert row.attempt == 1
    assert row.started_at == engine.clock
    # A running execution is not handed out twice.
    assert await engine.claim(worker) == []


async def test_claim_hands_out_only_workflows_the_worker_registered(engine: Engine) -> None:
    worker_a = await engine.register("wa", [("only_a", "shared_queue", None)])
    worker_b = await engine.register("wb", [("only_b", "shared_queue", None)])
    b_execution = await engine.submit("only_b")
    assert await engine.claim(worker_a) == []
    [claimed] = await engine.claim(worker_b)
    assert claimed.id == b_execution.execution_id


async def test_the_journal_travels_with_the_next_claim(engine: Engine) -> None:
    worker = await engine.register("w1", [("journal_wf", "journal_wf", None)])
    submitted = await engine.submit("journal_wf")
    [first] = await engine.claim(worker)
    item = protocol.ReportItem(
        execution_id=first.id,
        attempt=1,
        steps=[
            step_report("zero", position=0, result="0"),
            step_report("model", position=1, result='{"a":1}', output_schema="m:Model"),
        ],
    )
    assert await engine.report_one("w1", item) == "ok"
    released = protocol.ReportItem(
        execution_id=first.id,
        attempt=1,
        steps=[step_report("broken", position=2, status="failed", result=None, error=("E", "m"))],
        outcome=protocol.ReleaseOutcome(),
    )
    assert await engine.report_one("w1", released) == "ok"
    assert (await engine.get(submitted.execution_id)).status is S.QUEUED
    [second] = await engine.claim(worker)
    assert second.id == submitted.execution_id
    assert second.attempt == 2
    assert [(s.step_key, s.position, s.status, s.result_json) for s in second.journal] == [
        ("zero", 0, StepStatus.COMPLETED, "0"),
        ("model", 1, StepStatus.COMPLETED, '{"a":1}'),
        ("broken", 2, StepStatus.FAILED, None),
    ]
    assert second.journal[1].output_schema == "m:Model"
    assert second.journal[2].error is not None
    assert (second.journal[2].error.type, second.journal[2].error.message) == ("E", "m")
    # A recorded key keeps its first record (exactly-once results).
    again = protocol.ReportItem(
        execution_id=second.id, attempt=2, steps=[step_report("zero", result="99")]
    )
    assert await engine.report_one("w1", again) == "ok"
    step = await engine.step(second.id, "zero")
    assert step is not None and step.result_json == "0"


class _JournalReads:
    """A transaction that notes which executions' journals a claim reads (everything else
    goes to the store's own transaction)."""

    def __init__(self, tx: StoreTx) -> None:
        self._tx = tx
        self.asked: list[list[str]] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self._tx, name)

    async def load_journals(self, execution_ids: Sequence[str]) -> dict[str, list[StepRecord]]:
        self.asked.append(list(execution_ids))
        return await self._tx.load_journals(execution_ids)


async def test_a_claim_reads_the_journals_of_replays_only(engine: Engine) -> None:
    """A first attempt has no journal (steps are recorded by an attempt that owns its
    execution), so a claim reads the journals of the executions it hands out again only."""
    worker = await engine.register("w1", [("mixed_wf", "mixed_wf", None)])
    replayed = await engine.submit("mixed_wf")
    [first] = await engine.claim(worker)
    item = protocol.ReportItem(
        execution_id=first.id,
        attempt=1,
        steps=[step_report("done", position=0, result="1")],
        outcome=protocol.ReleaseOutcome(),
    )
    assert await engine.report_one("w1", item) == "ok"
    engine.clock += 1
    fresh = await engine.submit("mixed_wf")
    spies: list[_JournalReads] = []

    async def work(tx: StoreTx) -> list[ClaimedExecution]:
        spy = _JournalReads(tx)
        spies.append(spy)
        return await dispatch.claim(
            cast(StoreTx, spy), worker, 10, engine.clock, engine.settings.lease_seconds
        )

    claimed = {c.id: c for c in await engine.store.run(work)}
    assert {i: c.attempt for i, c in claimed.items()} == {
        replayed.execution_id: 2,
        fresh.execution_id: 1,
    }
    assert [s.step_key for s in claimed[replayed.execution_id].journal] == ["done"]
    assert claimed[fresh.execution_id].journal == []
    assert [spy.asked for spy in spies] == [[[replayed.execution_id]]]
    # A claim of first attempts only reads no journal at all.
    third = await engine.submit("mixed_wf")
    spies.clear()
    [only] = await engine.store.run(work)
    assert (only.id, only.attempt, only.journal) == (third.execution_id, 1, [])
    assert [spy.asked for spy in spies] == [[]]


async def test_usage_changes_are_read_back_within_their_unit_and_kept(engine: Engine) -> None:
    """On PostgreSQL a unit's usage changes are written with its last statement; a read of
    the usage inside the unit sees them all the same, increments and decrements in one
    statement both land, and a decrement never takes a slot count below zero."""
    await engine.register("w1", [("usage_wf", "uq", 2)])

    def key(k: str) -> tuple[str, str, str]:
        return (PROJECT, "uq", k)

    async def nonzero() -> dict[str, int]:
        usage = await engine.store.read(lambda tx: tx.queue_usage(PROJECT, "uq"))
        return {k: n for k, n in usage.items() if n}

    async def first(tx: StoreTx) -> dict[str, int]:
        await tx.adjust_usage({key("a"): 2, key("b"): 1})
        seen = await tx.queue_usage(PROJECT, "uq")
        await tx.adjust_usage({key("a"): -1, key("b"): -1, key("never"): -1})
        return seen

    assert await engine.store.run(first) == {"a": 2, "b": 1}
    assert await nonzero() == {"a": 1}

    async def both(tx: StoreTx) -> None:
        await tx.adjust_usage({key("b"): 1, key("a"): -1})

    await engine.store.run(both)
    assert await nonzero() == {"b": 1}

    async def below_zero(tx: StoreTx) -> None:
        await tx.adjust_usage({key("b"): -3})

    await engine.store.run(below_zero)
    assert await nonzero() == {}


async def test_a_queue_limit_holds_across_two_workers(engine: Engine) -> None:
    w1 = await engine.register("w1", [("limited_wf", "limited_q", 2)])
    w2 = await engine.register("w2", [("limited_wf", "limited_q", 2)])
    ids = [(await engine.submit("limited_wf", str(i))).execution_id for i in range(7)]
    owner: dict[str, str] = {}
    attempts: dict[str, int] = {}
    finished: list[str] = []
    for _ in range(20):
        got_1, got_2 = await asyncio.gather(engine.claim(w1, 5), engine.claim(w2, 5))
        for worker_id, got in (("w1", got_1), ("w2", got_2)):
            for c in got:
                owner[c.id] = worker_id
                attempts[c.id] = c.attempt
        running = [i for i in ids if (await engine.get(i)).status is S.RUNNING]
        assert len(running) <= 2, f"{len(running)} running under a limit of 2"
        assert await engine.usage("limited_q") == len(running)
        if not running:
            break
        if len(finished) < len(ids) - 1:
            assert len(running) == 2  # the limit is also reached, not only respected
        oldest = running[0]
        claimed_row = await engine.get(oldest)
        item = protocol.ReportItem(
            execution_id=oldest,
            attempt=claimed_row.attempt,
            outcome=protocol.CompleteOutcome(result="1"),
        )
        assert await engine.report_one(owner[oldest], item) == "ok"
        finished.append(oldest)
    assert sorted(finished) == sorted(ids)
    assert set(attempts.values()) == {1}  # nothing was handed out twice
    assert set(owner.values()) <= {"w1", "w2"}
    assert await engine.usage("limited_q") == 0


async def test_a_queue_limit_applies_per_concurrency_key(engine: Engine) -> None:
    worker = await engine.register("w1", [("keyed_wf", "keyed_q", 1)])
    for key in ("a", "a", "b", "b"):
        await engine.submit("keyed_wf", concurrency_key=key)
    claimed = await engine.claim(worker)
    assert sorted(c.concurrency_key for c in claimed) == ["a", "b"]
    assert await engine.claim(worker) == []


async def test_a_claim_takes_the_oldest_across_queues_at_most_max_in_all(engine: Engine) -> None:
    """Queues without a limit are read together (one statement on PostgreSQL): the claim
    still takes the oldest due executions across them, at most
    `max_count` in all, and none of a workflow the worker does not serve."""
    worker = await engine.register(
        "w1", [("wf_a", "queue_a", None), ("wf_b", "queue_b", None), ("wf_c", "queue_c", None)]
    )
    await engine.register("w2", [("wf_other", "queue_b", None)])
    submitted: dict[str, str] = {}
    for name, workflow in [
        ("a1", "wf_a"),
        ("b1", "wf_b"),
        ("other", "wf_other"),
        ("c1", "wf_c"),
        ("a2", "wf_a"),
        ("b2", "wf_b"),
    ]:
        engine.advance(1.0)
        submitted[name] = (await engine.submit(workflow)).execution_id
    names = {v: k for k, v in submitted.items()}
    first = await engine.claim(worker, max_count=3)
    assert [names[e.id] for e in first] == ["a1", "b1", "c1"]
    rest = await engine.claim(worker, max_count=10)
    assert [names[e.id] for e in rest] == ["a2", "b2"]
    assert await engine.claim(worker, max_count=10) == []


async def test_a_slot_freed_in_a_limited_queue_wakes_claimers_and_one_elsewhere_does_not(
    engine: Engine,
) -> None:
    """Claimers parked while a limited queue was full are woken by the report that frees a
    slot there (nothing else would wake them); a slot of an unlimited queue wakes nobody."""
    worker = await engine.register("w1", [("wf_lim", "full_q", 1), ("wf_free", "open_q", None)])
    limited = [await engine.submit("wf_lim") for _ in range(2)]
    unlimited = await engine.submit("wf_free")
    claimed = {c.id: c for c in await engine.claim(worker)}
    assert set(claimed) == {limited[0].execution_id, unlimited.execution_id}
    before = len(engine.signals.work_calls)
    assert await engine.complete("w1", claimed[unlimited.execution_id]) == "ok"
    assert len(engine.signals.work_calls) == before
    assert await engine.complete("w1", claimed[limited[0].execution_id]) == "ok"
    assert engine.signals.work_calls[before:] == [PROJECT]
    [next_one] = await engine.claim(worker)
    assert next_one.id == limited[1].execution_id
