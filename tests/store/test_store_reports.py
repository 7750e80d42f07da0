"""The store contract, part 4: one report request applied in order (design.md rule 3), with
its plain items (step records; a child's completion or final failure) written together at
the end of the transaction (polos/server/reports.py). Every test runs on each backend of
conftest.BACKENDS.
"""

from __future__ import annotations

from typing import Any

from polos import protocol
from polos.model import ClaimedExecution, ExecutionStatus
from polos.server import reports
from polos.store.base import StoreTx
from tests.store.harness import (
    Engine,
    child_submissions,
    claim_as,
    pending_batch_step,
    start_parent,
    step_report,
    suspend_on_batch,
)

S = ExecutionStatus


async def test_one_report_mixing_deferred_and_in_order_items_applies_each_once(
    engine: Engine,
) -> None:
    """Plain items (steps; a child's completion or final failure) are written together at the
    end of the request; the others in order. In one request: steps and completions, a final
    failure, steps alone, a retryable failure (requeued, in order), a later item of a finished
    child (refused) and a child suspending on a batch of its own (in order)."""
    parent_id, _ = await start_parent(engine)
    await claim_as(engine, "parents")
    assert await suspend_on_batch(engine, parent_id, attempt=1, n=5) == "ok"
    claimed = await engine.claim(await engine.worker("kids"))
    assert len(claimed) == 5
    usage_before = await engine.usage("child_q")
    a, b, c, d, e = claimed

    def item(ex: ClaimedExecution, **kwargs: Any) -> protocol.ReportItem:
        return protocol.ReportItem(execution_id=ex.id, attempt=ex.attempt, **kwargs)

    results = await engine.report(
        "kids",
        item(a, steps=[step_report("one", result="1")]),
        item(
            a,
            steps=[step_report("two", position=1, result="2")],
            outcome=protocol.CompleteOutcome(result='{"score": 10}'),
        ),
        item(
            b,
            outcome=protocol.FailOutcome(
                error=protocol.StoredError(type="ValueError", message="no"), retryable=False
            ),
        ),
        item(c, steps=[step_report("one", result="3")]),
        item(
            d,
            steps=[step_report("one", result="4")],
            outcome=protocol.FailOutcome(
                error=protocol.StoredError(type="OSError", message="again"), retryable=True
            ),
        ),
        item(a, steps=[step_report("late", position=2, result="9")]),
        item(
            e,
            steps=[pending_batch_step("grandkids", position=0)],
            children=child_submissions("grandkids", "child_wf", ['{"g": 0}']),
            outcome=protocol.SuspendOutcome(step_key="grandkids"),
        ),
    )
    assert [r.status for r in results] == ["ok", "ok", "ok", "ok", "ok", "stale", "ok"]

    row_a = await engine.get(a.id)
    assert row_a.status is S.COMPLETED and row_a.result_json == '{"score": 10}'
    assert [(s.step_key, s.result_json) for s in await engine.journal(a.id)] == [
        ("one", "1"),
        ("two", "2"),
    ]
    row_b = await engine.get(b.id)
    assert row_b.status is S.FAILED and row_b.error is not None
    assert row_b.error.type == "ValueError"
    row_c = await engine.get(c.id)
    assert row_c.status is S.RUNNING
    assert [(s.step_key, s.result_json) for s in await engine.journal(c.id)] == [("one", "3")]
    row_d = await engine.get(d.id)
    assert row_d.status is S.QUEUED and row_d.retry_count == 1
    assert [s.step_key for s in await engine.journal(d.id)] == ["one"]
    row_e = await engine.get(e.id)
    assert row_e.status is S.WAITING
    assert [c.id for c in await engine.children(e.id, "grandkids")] == [
        protocol.child_execution_id(e.id, "grandkids", 0)
    ]
    # a, b and d gave their slots back; e waits (no slot); c still runs.
    assert await engine.usage("child_q") == usage_before - 4
    # Two of five children are final: the parent still waits.
    assert (await engine.get(parent_id)).status is S.WAITING


async def test_a_deferred_step_record_is_still_the_first_record(engine: Engine) -> None:
    """A step recorded by a plain item keeps its record when a later item of the same request,
    applied in order, records the same key again (first record wins, as across requests)."""
    parent_id, _ = await start_parent(engine)
    await claim_as(engine, "parents")
    assert await suspend_on_batch(engine, parent_id, attempt=1, n=1) == "ok"
    (child,) = await engine.claim(await engine.worker("kids"))
    results = await engine.report(
        "kids",
        protocol.ReportItem(
            execution_id=child.id, attempt=child.attempt, steps=[step_report("one", result="1")]
        ),
        protocol.ReportItem(
            execution_id=child.id,
            attempt=child.attempt,
            steps=[step_report("one", result="2")],
            events=[protocol.EventPublish(topic="news", data="{}")],
        ),
    )
    assert [r.status for r in results] == ["ok", "ok"]
    assert [(s.step_key, s.result_json) for s in await engine.journal(child.id)] == [("one", "1")]


async def test_a_report_of_steps_alone_is_one_statement_with_the_same_fence(
    engine: Engine,
) -> None:
    """`reports.record_steps` (what the report route runs, as `one_statement`, for a request of
    step records alone): the steps of the items whose attempt still runs on the reporting
    worker are recorded, a first record is kept, and every other item is refused as stale,
    its steps not written: a later attempt, another worker's, a queued one, an unknown one, an
    attempt no column can hold."""
    await engine.register("w1", [("wf", "q", None)])
    await engine.register("w2", [("wf", "q", None)])
    ids = [(await engine.submit("wf")).execution_id for _ in range(4)]
    mine = await engine.claim(await engine.worker("w1"), 2)
    theirs = await engine.claim(await engine.worker("w2"), 1)
    assert len(mine) == 2 and len(theirs) == 1
    queued = next(i for i in ids if i not in {c.id for c in mine + theirs})
    a, b = mine
    first = await engine.report(
        "w1",
        protocol.ReportItem(
            execution_id=a.id, attempt=a.attempt, steps=[step_report("one", result="1")]
        ),
    )
    assert [r.status for r in first] == ["ok"]

    items = [
        protocol.ReportItem(
            execution_id=a.id,
            attempt=a.attempt,
            steps=[
                step_report("one", result="changed"),
                step_report("two", position=1, result="2"),
            ],
        ),
        protocol.ReportItem(
            execution_id=b.id, attempt=b.attempt + 1, steps=[step_report("one", result="x")]
        ),
        protocol.ReportItem(
            execution_id=theirs[0].id, attempt=theirs[0].attempt, steps=[step_report("one")]
        ),
        protocol.ReportItem(execution_id=queued, attempt=1, steps=[step_report("one")]),
        protocol.ReportItem(execution_id="nobody", attempt=1, steps=[step_report("one")]),
        # an attempt beyond any column's range (the protocol does not bound it)
        protocol.ReportItem(execution_id=b.id, attempt=2**40, steps=[step_report("one")]),
    ]
    assert reports.only_steps(items)

    async def work(tx: StoreTx) -> list[protocol.ReportItemResult]:
        return await reports.record_steps(tx, "w1", items, engine.clock)

    transactions = engine.store.transactions
    results = await engine.store.run(work, one_statement=True)

    assert [(r.execution_id, r.status) for r in results] == [
        (a.id, "ok"),
        (b.id, "stale"),
        (theirs[0].id, "stale"),
        (queued, "stale"),
        ("nobody", "stale"),
        (b.id, "stale"),
    ]
    assert engine.store.transactions == transactions + 1
    assert [(s.step_key, s.result_json) for s in await engine.journal(a.id)] == [
        ("one", "1"),  # the first record stays
        ("two", "2"),
    ]
    for other in (b.id, theirs[0].id, queued):
        assert await engine.journal(other) == []
    assert (await engine.get(a.id)).status is S.RUNNING


async def test_a_report_with_more_than_steps_is_not_one_statement() -> None:
    step = [step_report("one")]
    assert not reports.only_steps(
        [
            protocol.ReportItem(execution_id="e", attempt=1, steps=step),
            protocol.ReportItem(
                execution_id="e", attempt=1, outcome=protocol.CompleteOutcome(result="null")
            ),
        ]
    )
    assert not reports.only_steps(
        [
            protocol.ReportItem(
                execution_id="e", attempt=1, events=[protocol.EventPublish(topic="t", data="1")]
            )
        ]
    )
