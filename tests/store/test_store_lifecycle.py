"""The store contract, part 2: the execution lifecycle at store level (claims, journals and
queue limits are in test_store_claims.py; children and waking parents in
test_store_children.py).

polos.server.lifecycle and polos.server.dispatch driven against a real store the way the HTTP
routes drive them (see harness.py), with a clock the test controls. Every test runs on each
backend of conftest.BACKENDS.
"""

from __future__ import annotations

import pytest

from polos import protocol
from polos.model import ExecutionStatus
from polos.server import lifecycle
from tests.store.harness import (
    PROJECT,
    Engine,
    step_report,
)

S = ExecutionStatus


async def test_register_worker_makes_its_workflows_known(engine: Engine) -> None:
    worker = await engine.register("w1", [("wf_a", "queue_a", None), ("wf_b", "queue_b", 3)])
    assert worker.workflow_ids == ["wf_a", "wf_b"]
    known = await engine.store.read(
        lambda tx: tx.known_workflows(PROJECT, ["wf_a", "wf_b", "wf_unknown"])
    )
    assert known == {"wf_a": "queue_a", "wf_b": "queue_b"}
    limits = await engine.store.read(lambda tx: tx.queue_limits(PROJECT))
    assert limits == {"queue_a": None, "queue_b": 3}
    stored = await engine.worker("w1")
    assert stored.workflow_ids == ["wf_a", "wf_b"]
    assert stored.project_id == PROJECT


async def test_submitting_an_unknown_workflow_raises_and_stores_nothing(engine: Engine) -> None:
    worker = await engine.register("w1", [("known_wf", "known_wf", None)])
    with pytest.raises(lifecycle.UnknownWorkflow) as raised:
        await engine.submit("never_registered")
    assert "'never_registered'" in str(raised.value)
    assert raised.value.workflow_ids == ["never_registered"]
    # A batch naming one unknown workflow creates none of its executions.
    with pytest.raises(lifecycle.UnknownWorkflow):
        await engine.submit_many(
            [
                lifecycle.SubmitSpec("known_wf", "1"),
                lifecycle.SubmitSpec("never_registered", "2"),
            ]
        )
    assert await engine.claim(worker) == []


async def test_a_known_workflow_without_a_live_worker_is_queued(engine: Engine) -> None:
    await engine.register("w1", [("lonely_wf", "lonely_wf", None)])
    await engine.deregister("w1")
    submitted = await engine.submit("lonely_wf", '{"x":1}')
    row = await engine.get(submitted.execution_id)
    assert row.status is S.QUEUED
    later = await engine.register("w2", [("lonely_wf", "lonely_wf", None)])
    [claimed] = await engine.claim(later)
    assert claimed.id == submitted.execution_id


async def test_idempotency_key_returns_the_same_execution(engine: Engine) -> None:
    worker = await engine.register("w1", [("idem_wf", "idem_wf", None)])
    first = await engine.submit("idem_wf", '{"n":1}', idempotency_key="order-42")
    again = await engine.submit("idem_wf", '{"n":2}', idempotency_key="order-42")
    assert first.created and not again.created
    assert again.execution_id == first.execution_id
    # Twice in one batch, too.
    batch = await engine.submit_many(
        [
            lifecycle.SubmitSpec("idem_wf", "1", idempotency_key="order-43"),
            lifecycle.SubmitSpec("idem_wf", "2", idempotency_key="order-43"),
        ]
    )
    assert batch[0].execution_id == batch[1].execution_id
    other = await engine.submit("idem_wf", "3", idempotency_key="order-44")
    assert other.execution_id != first.execution_id
    claimed = await engine.claim(worker)
    assert sorted(c.id for c in claimed) == sorted(
        {first.execution_id, batch[0].execution_id, other.execution_id}
    )
    assert (await engine.get(first.execution_id)).payload_json == '{"n":1}'


async def test_idempotency_keys_are_scoped_to_a_project(engine: Engine) -> None:
    await engine.register("w1", [("scoped_wf", "scoped_wf", None)])
    await engine.register("w2", [("scoped_wf", "scoped_wf", None)], project="other-project")
    here = await engine.submit("scoped_wf", idempotency_key="same-key")
    [there] = await engine.submit_many(
        [lifecycle.SubmitSpec("scoped_wf", "null", idempotency_key="same-key")],
        project="other-project",
    )
    assert there.created
    assert there.execution_id != here.execution_id


async def test_a_completion_report_completes_the_execution(engine: Engine) -> None:
    worker = await engine.register("w1", [("done_wf", "done_q", 5)])
    submitted = await engine.submit("done_wf")
    [claimed] = await engine.claim(worker)
    assert await engine.usage("done_q") == 1
    engine.advance(2.5)
    status = await engine.complete("w1", claimed, '{"verdict":"ok"}', "mod:Verdict")
    assert status == "ok"
    row = await engine.get(submitted.execution_id)
    assert row.status is S.COMPLETED
    assert row.result_json == '{"verdict":"ok"}'
    assert row.output_schema == "mod:Verdict"
    assert row.error is None
    assert row.completed_at == engine.clock
    assert row.worker_id is None
    assert await engine.usage("done_q") == 0
    assert engine.signals.final_calls == [submitted.execution_id]


async def test_a_non_retryable_failure_keeps_type_and_whole_message(engine: Engine) -> None:
    worker = await engine.register("w1", [("fail_wf", "fail_wf", None)])
    submitted = await engine.submit("fail_wf")
    [claimed] = await engine.claim(worker)
    message = "3 validation errors for Request\ntitle\n  ...\npages\n  ...\nratio\n  ..."
    assert await engine.fail("w1", claimed, "PayloadValidationError", message) == "ok"
    row = await engine.get(submitted.execution_id)
    assert row.status is S.FAILED
    assert row.error is not None
    assert (row.error.type, row.error.message) == ("PayloadValidationError", message)
    assert row.result_json is None


async def test_a_retryable_failure_is_queued_again_after_a_delay(engine: Engine) -> None:
    worker = await engine.register("w1", [("retry_wf", "retry_wf", 1)])
    submitted = await engine.submit("retry_wf")
    [claimed] = await engine.claim(worker)
    assert await engine.fail("w1", claimed, "IOError", "flaky", retryable=True) == "ok"
    row = await engine.get(submitted.execution_id)
    assert row.status is S.QUEUED
    assert row.retry_count == 1
    assert await engine.usage("retry_wf") == 0
    assert await engine.claim(worker) == []  # not due yet
    [again] = await engine.claim(worker, now=engine.clock + engine.settings.retry_delay(0))
    assert again.attempt == 2
    assert again.retry_count == 1


async def test_stale_reports_are_refused_and_change_nothing(engine: Engine) -> None:
    worker = await engine.register("w1", [("fence_wf", "fence_q", 1)])
    await engine.register("w2", [("fence_wf", "fence_q", 1)])
    submitted = await engine.submit("fence_wf")
    [claimed] = await engine.claim(worker)

    def item(attempt: int, key: str) -> protocol.ReportItem:
        return protocol.ReportItem(
            execution_id=claimed.id,
            attempt=attempt,
            steps=[step_report(key, result='"stale"')],
            outcome=protocol.CompleteOutcome(result='"stale"'),
        )

    wrong_attempt = await engine.report("w1", item(2, "from_wrong_attempt"))
    other_worker = await engine.report("w2", item(1, "from_other_worker"))
    unknown = await engine.report(
        "w1", protocol.ReportItem(execution_id="no-such-execution", attempt=1)
    )
    for results in (wrong_attempt, other_worker, unknown):
        assert [r.status for r in results] == ["stale"]
    row = await engine.get(submitted.execution_id)
    assert row.status is S.RUNNING
    assert (row.attempt, row.worker_id, row.result_json) == (1, "w1", None)
    assert await engine.step(claimed.id, "from_wrong_attempt") is None
    assert await engine.step(claimed.id, "from_other_worker") is None
    assert await engine.usage("fence_q") == 1
    assert engine.signals.final_calls == []

    assert await engine.complete("w1", claimed, '"real"') == "ok"
    # Once final, the same attempt is stale too.
    assert [r.status for r in await engine.report("w1", item(1, "late"))] == ["stale"]
    row = await engine.get(submitted.execution_id)
    assert (row.status, row.result_json) == (S.COMPLETED, '"real"')
    assert await engine.usage("fence_q") == 0


async def test_an_item_after_an_outcome_in_the_same_request_is_stale(engine: Engine) -> None:
    worker = await engine.register("w1", [("order_wf", "order_wf", None)])
    await engine.submit("order_wf")
    [claimed] = await engine.claim(worker)
    results = await engine.report(
        "w1",
        protocol.ReportItem(
            execution_id=claimed.id,
            attempt=1,
            outcome=protocol.CompleteOutcome(result="1"),
        ),
        protocol.ReportItem(
            execution_id=claimed.id,
            attempt=1,
            steps=[step_report("after_the_end")],
        ),
    )
    assert [r.status for r in results] == ["ok", "stale"]
    assert await engine.step(claimed.id, "after_the_end") is None


# --------------------------------------------------------------------------- limits and leases


async def test_expired_leases_requeue_and_free_the_slot(engine: Engine) -> None:
    worker = await engine.register("w1", [("lease_wf", "lease_q", 1)])
    first = await engine.submit("lease_wf")
    second = await engine.submit("lease_wf")
    [claimed] = await engine.claim(worker)
    assert claimed.id == first.execution_id
    assert await engine.usage("lease_q") == 1
    lease = engine.settings.lease_seconds

    assert await engine.expire(engine.clock + lease / 2) == 0
    assert (await engine.get(first.execution_id)).status is S.RUNNING

    later = engine.advance(lease + 1)
    assert await engine.expire(later) == 1
    row = await engine.get(first.execution_id)
    assert row.status is S.QUEUED
    assert row.worker_id is None
    assert row.retry_count == 0  # a lost lease is not the workflow's failure
    assert await engine.usage("lease_q") == 0

    # A worker silent for a whole lease (frozen, say) gets nothing, even with a long-poll
    # still open, until it heartbeats again.
    assert await engine.claim(worker) == []
    assert await engine.heartbeat("w1", [])
    # The freed slot goes to the next due execution (the second submission is due earlier
    # than the re-queued one, whose ready time is the expiry).
    [other] = await engine.claim(worker)
    assert other.id == second.execution_id
    assert await engine.usage("lease_q") == 1
    late = protocol.ReportItem(
        execution_id=first.execution_id,
        attempt=1,
        outcome=protocol.CompleteOutcome(result='"late"'),
    )
    assert await engine.report_one("w1", late) == "stale"
    assert (await engine.get(first.execution_id)).status is S.QUEUED
    assert await engine.usage("lease_q") == 1

    assert await engine.complete("w1", other) == "ok"
    [again] = await engine.claim(worker)
    assert again.id == first.execution_id
    assert again.attempt == 2


async def test_heartbeats_extend_only_the_leases_named(engine: Engine) -> None:
    w1 = await engine.register("w1", [("hb_wf", "hb_q", None)])
    await engine.register("w2", [("hb_wf", "hb_q", None)])
    ids = [(await engine.submit("hb_wf", str(i))).execution_id for i in range(3)]
    claimed = await engine.claim(w1)
    assert sorted(c.id for c in claimed) == sorted(ids)
    start = engine.clock
    lease = engine.settings.lease_seconds

    assert await engine.heartbeat("w1", [ids[0], ids[1]], now=start + lease * 0.8)
    # Another worker cannot extend what it does not hold.
    assert await engine.heartbeat("w2", [ids[2]], now=start + lease * 0.8)
    assert not await engine.heartbeat("no-such-worker", ids, now=start + lease * 0.8)

    assert await engine.expire(start + lease * 1.2) == 1
    statuses = [(await engine.get(i)).status for i in ids]
    assert statuses == [S.RUNNING, S.RUNNING, S.QUEUED]

    assert await engine.expire(start + lease * 1.7) == 0
    assert await engine.expire(start + lease * 1.9) == 2
    assert [(await engine.get(i)).status for i in ids] == [S.QUEUED] * 3


async def test_a_worker_registering_again_keeps_its_live_leases(engine: Engine) -> None:
    # The server forgot the worker (e.g. during an outage) and it registers again under its
    # ID: what it still runs stays its own, and its heartbeats renew the leases.
    worker = await engine.register("w1", [("again_wf", "again_q", 1)])
    submitted = await engine.submit("again_wf")
    await engine.claim(worker)
    assert await engine.usage("again_q") == 1
    worker = await engine.register("w1", [("again_wf", "again_q", 1)])
    row = await engine.get(submitted.execution_id)
    assert (row.status, row.worker_id, row.attempt) == (S.RUNNING, "w1", 1)
    assert await engine.usage("again_q") == 1
    assert await engine.heartbeat("w1", [submitted.execution_id])
    # A worker that leaves for good gives back what it held at once.
    assert await engine.deregister("w1") == 1
    row = await engine.get(submitted.execution_id)
    assert (row.status, row.worker_id) == (S.QUEUED, None)
    assert await engine.usage("again_q") == 0
    worker = await engine.register("w2", [("again_wf", "again_q", 1)])
    [claimed] = await engine.claim(worker)
    assert claimed.attempt == 2
