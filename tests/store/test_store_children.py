"""The store contract, part 3: children, suspended parents and their wake-up
(design.md rules 4, 5 and 6) at store level. Every test runs on each backend of
conftest.BACKENDS.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from polos import protocol
from polos.model import ClaimedExecution, ExecutionStatus, StepKind, StepStatus
from tests.store.harness import Engine, child_submissions, pending_batch_step, step_report

S = ExecutionStatus


async def _start_parent(engine: Engine, limit: int | None = None) -> tuple[str, str]:
    """Register a parent worker and a child worker, submit a parent; return its id and the
    parent worker's id."""
    await engine.register("parents", [("parent_wf", "parent_q", limit)])
    await engine.register("kids", [("child_wf", "child_q", None)])
    submitted = await engine.submit("parent_wf", '{"topic":"x"}')
    return submitted.execution_id, "parents"


async def _claim_as(engine: Engine, worker_id: str, max_count: int = 100) -> list[str]:
    return [c.id for c in await engine.claim(await engine.worker(worker_id), max_count)]


async def _suspend_on_batch(
    engine: Engine, parent_id: str, attempt: int, n: int, key: str = "reviews"
) -> str:
    payloads = [json.dumps({"reviewer": i}) for i in range(n)]
    return await engine.report_one(
        "parents",
        protocol.ReportItem(
            execution_id=parent_id,
            attempt=attempt,
            steps=[pending_batch_step(key)],
            children=child_submissions(key, "child_wf", payloads),
            outcome=protocol.SuspendOutcome(step_key=key),
        ),
    )


async def _finish_child(
    engine: Engine, child_id: str, success: bool = True, result: str | None = None
) -> str:
    row = await engine.get(child_id)
    assert row.status is S.RUNNING and row.worker_id is not None
    outcome: protocol.CompleteOutcome | protocol.FailOutcome
    if success:
        outcome = protocol.CompleteOutcome(
            result=result or json.dumps({"score": row.batch_index}), output_schema="mod:Score"
        )
    else:
        outcome = protocol.FailOutcome(
            error=protocol.StoredError(type="ValueError", message=f"child {row.batch_index} hurt"),
            retryable=False,
        )
    item = protocol.ReportItem(execution_id=child_id, attempt=row.attempt, outcome=outcome)
    return await engine.report_one(row.worker_id, item)


async def test_a_parent_waiting_for_a_batch_is_woken_once_after_the_last_child(
    engine: Engine,
) -> None:
    parent_id, _ = await _start_parent(engine, limit=1)
    assert await _claim_as(engine, "parents") == [parent_id]
    assert await _suspend_on_batch(engine, parent_id, attempt=1, n=3) == "ok"

    parent = await engine.get(parent_id)
    assert parent.status is S.WAITING
    assert parent.worker_id is None
    assert await engine.usage("parent_q") == 0  # waiting holds no slot
    expected_ids = [protocol.child_execution_id(parent_id, "reviews", i) for i in range(3)]
    children = await engine.children(parent_id, "reviews")
    assert [c.id for c in children] == expected_ids
    for i, child_id in enumerate(expected_ids):
        row = await engine.get(child_id)
        assert row.status is S.QUEUED
        assert (row.parent_execution_id, row.parent_step_key, row.batch_index) == (
            parent_id,
            "reviews",
            i,
        )
        assert row.root_execution_id == parent_id
        assert row.payload_json == json.dumps({"reviewer": i})

    assert sorted(await _claim_as(engine, "kids")) == sorted(expected_ids)
    wakeups = len(engine.signals.work_calls)

    # Finish them out of order: 2 succeeds, 0 fails, 1 (the last) succeeds.
    for child_id, success in ((expected_ids[2], True), (expected_ids[0], False)):
        assert await _finish_child(engine, child_id, success) == "ok"
        assert (await engine.get(parent_id)).status is S.WAITING
        step = await engine.step(parent_id, "reviews")
        assert step is not None and step.status is StepStatus.PENDING
        assert len(engine.signals.work_calls) == wakeups
    assert await _finish_child(engine, expected_ids[1], True) == "ok"

    parent = await engine.get(parent_id)
    assert parent.status is S.QUEUED
    assert parent.attempt == 1 and parent.retry_count == 0
    assert len(engine.signals.work_calls) == wakeups + 1
    step = await engine.step(parent_id, "reviews")
    assert step is not None
    assert step.status is StepStatus.COMPLETED
    assert step.kind is StepKind.BATCH_WAIT
    assert json.loads(step.result_json or "null") == [
        {
            "workflow_id": "child_wf",
            "execution_id": expected_ids[0],
            "success": False,
            "result": None,
            "error": {"type": "ValueError", "message": "child 0 hurt"},
            "output_schema": None,
        },
        {
            "workflow_id": "child_wf",
            "execution_id": expected_ids[1],
            "success": True,
            "result": {"score": 1},
            "error": None,
            "output_schema": "mod:Score",
        },
        {
            "workflow_id": "child_wf",
            "execution_id": expected_ids[2],
            "success": True,
            "result": {"score": 2},
            "error": None,
            "output_schema": "mod:Score",
        },
    ]

    # The replay gets the resolved step in its journal.
    parents = await engine.worker("parents")
    [replay] = await engine.claim(parents)
    assert replay.id == parent_id and replay.attempt == 2
    [entry] = replay.journal
    assert (entry.step_key, entry.status) == ("reviews", StepStatus.COMPLETED)
    assert entry.result_json == step.result_json

    # A late duplicate report of a child changes nothing.
    last = await engine.get(expected_ids[1])
    late = protocol.ReportItem(
        execution_id=last.id, attempt=last.attempt, outcome=protocol.CompleteOutcome(result="0")
    )
    assert await engine.report_one("kids", late) == "stale"
    parent = await engine.get(parent_id)
    assert (parent.status, parent.attempt) == (S.RUNNING, 2)
    assert len(engine.signals.work_calls) == wakeups + 1


async def test_children_finishing_together_wake_the_parent_once(engine: Engine) -> None:
    parent_id, _ = await _start_parent(engine)
    await _claim_as(engine, "parents")
    assert await _suspend_on_batch(engine, parent_id, attempt=1, n=5) == "ok"
    child_ids = await _claim_as(engine, "kids")
    assert len(child_ids) == 5
    wakeups = len(engine.signals.work_calls)
    # Five separate units issued at once (one group-commit transaction on SQLite).
    statuses = await asyncio.gather(*(_finish_child(engine, c) for c in child_ids))
    assert statuses == ["ok"] * 5
    assert (await engine.get(parent_id)).status is S.QUEUED
    assert len(engine.signals.work_calls) == wakeups + 1
    step = await engine.step(parent_id, "reviews")
    assert step is not None and step.status is StepStatus.COMPLETED
    results = json.loads(step.result_json or "null")
    assert [r["execution_id"] for r in results] == [
        protocol.child_execution_id(parent_id, "reviews", i) for i in range(5)
    ]
    assert [r["result"] for r in results] == [{"score": i} for i in range(5)]


async def test_children_finishing_in_one_report_wake_the_parent_once(engine: Engine) -> None:
    parent_id, _ = await _start_parent(engine)
    await _claim_as(engine, "parents")
    assert await _suspend_on_batch(engine, parent_id, attempt=1, n=3) == "ok"
    kids = await engine.worker("kids")
    claimed = await engine.claim(kids)
    wakeups = len(engine.signals.work_calls)
    results = await engine.report(
        "kids",
        *(
            protocol.ReportItem(
                execution_id=c.id, attempt=c.attempt, outcome=protocol.CompleteOutcome(result="1")
            )
            for c in claimed
        ),
    )
    assert [r.status for r in results] == ["ok"] * 3
    assert (await engine.get(parent_id)).status is S.QUEUED
    assert len(engine.signals.work_calls) == wakeups + 1


async def test_one_report_mixing_deferred_and_in_order_items_applies_each_once(
    engine: Engine,
) -> None:
    """Plain items (steps; a child's completion or final failure) are written together at the
    end of the request; the others in order. In one request: steps and completions, a final
    failure, steps alone, a retryable failure (requeued, in order), a later item of a finished
    child (refused) and a child suspending on a batch of its own (in order)."""
    parent_id, _ = await _start_parent(engine)
    await _claim_as(engine, "parents")
    assert await _suspend_on_batch(engine, parent_id, attempt=1, n=5) == "ok"
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
    parent_id, _ = await _start_parent(engine)
    await _claim_as(engine, "parents")
    assert await _suspend_on_batch(engine, parent_id, attempt=1, n=1) == "ok"
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


async def test_resubmitting_the_same_children_is_idempotent(engine: Engine) -> None:
    parent_id, _ = await _start_parent(engine)
    await _claim_as(engine, "parents")
    payloads = ['{"n":0}', '{"n":1}', '{"n":2}']
    submission = protocol.ReportItem(
        execution_id=parent_id,
        attempt=1,
        steps=[pending_batch_step("fan")],
        children=child_submissions("fan", "child_wf", payloads),
    )
    # The same submission twice (a retried request), then the attempt dies.
    assert await engine.report_one("parents", submission) == "ok"
    assert await engine.report_one("parents", submission) == "ok"
    assert len(await engine.children(parent_id, "fan")) == 3
    assert await engine.expire(engine.clock + engine.settings.lease_seconds + 1) == 1
    engine.advance(engine.settings.lease_seconds + 1)
    for worker_id in ("parents", "kids"):  # the workers live on; the attempt died
        assert await engine.heartbeat(worker_id, [])

    # The replay finds the step pending and submits the same children with its suspension.
    parents = await engine.worker("parents")
    [replay] = await engine.claim(parents)
    assert replay.attempt == 2
    assert [(e.step_key, e.status) for e in replay.journal] == [("fan", StepStatus.PENDING)]
    resubmission = submission.model_copy(
        update={"attempt": 2, "outcome": protocol.SuspendOutcome(step_key="fan")}
    )
    assert await engine.report_one("parents", resubmission) == "ok"
    assert (await engine.get(parent_id)).status is S.WAITING

    children = await engine.children(parent_id, "fan")
    expected = [protocol.child_execution_id(parent_id, "fan", i) for i in range(3)]
    assert [c.id for c in children] == expected
    kids = await engine.worker("kids")
    claimed = await engine.claim(kids)
    assert sorted(c.id for c in claimed) == sorted(expected)
    assert [(await engine.get(i)).payload_json for i in expected] == payloads

    for child_id in expected[:-1]:
        assert await _finish_child(engine, child_id) == "ok"
        assert (await engine.get(parent_id)).status is S.WAITING
    assert await _finish_child(engine, expected[-1]) == "ok"
    assert (await engine.get(parent_id)).status is S.QUEUED


async def test_a_child_finishing_before_its_parent_suspends_is_counted_once(
    engine: Engine,
) -> None:
    """Children of an earlier attempt may finish before the replay suspends on them (the
    case reports._suspend handles with `unfinished == 0`). One that finishes early must not
    resolve the waiting step while its siblings still run."""
    parent_id, _ = await _start_parent(engine)
    await _claim_as(engine, "parents")
    submission = protocol.ReportItem(
        execution_id=parent_id,
        attempt=1,
        steps=[pending_batch_step("fan")],
        children=child_submissions("fan", "child_wf", ["0", "1", "2"]),
    )
    assert await engine.report_one("parents", submission) == "ok"
    assert await engine.expire(engine.clock + engine.settings.lease_seconds + 1) == 1
    engine.advance(engine.settings.lease_seconds + 1)
    for worker_id in ("parents", "kids"):  # the workers live on; the attempt died
        await engine.heartbeat(worker_id, [])

    expected = [protocol.child_execution_id(parent_id, "fan", i) for i in range(3)]
    kids = await engine.worker("kids")
    await engine.claim(kids)
    assert await _finish_child(engine, expected[0]) == "ok"
    step = await engine.step(parent_id, "fan")
    assert step is not None
    assert step.status is StepStatus.PENDING, (
        f"the step was resolved while 2 of its 3 children still run: {step.result_json}"
    )

    parents = await engine.worker("parents")
    [replay] = await engine.claim(parents)
    resubmission = submission.model_copy(
        update={"attempt": replay.attempt, "outcome": protocol.SuspendOutcome(step_key="fan")}
    )
    assert await engine.report_one("parents", resubmission) == "ok"
    assert (await engine.get(parent_id)).status is S.WAITING
    assert await _finish_child(engine, expected[1]) == "ok"
    assert (await engine.get(parent_id)).status is S.WAITING
    assert await _finish_child(engine, expected[2]) == "ok"
    assert (await engine.get(parent_id)).status is S.QUEUED
    step = await engine.step(parent_id, "fan")
    assert step is not None and step.status is StepStatus.COMPLETED
    assert [r["success"] for r in json.loads(step.result_json or "null")] == [True] * 3


async def test_invoke_and_wait_resolves_with_the_child_result_or_error(engine: Engine) -> None:
    await engine.register("parents", [("parent_wf", "parent_q", None)])
    await engine.register("kids", [("child_wf", "child_q", None)])
    ok_parent = (await engine.submit("parent_wf")).execution_id
    bad_parent = (await engine.submit("parent_wf")).execution_id
    await _claim_as(engine, "parents")
    for parent_id in (ok_parent, bad_parent):
        item = protocol.ReportItem(
            execution_id=parent_id,
            attempt=1,
            steps=[
                step_report("call", kind="invoke_and_wait", status="pending", result=None),
            ],
            children=[
                protocol.ChildSubmission(
                    step_key="call", index=0, workflow_id="child_wf", payload="{}", wait=True
                )
            ],
            outcome=protocol.SuspendOutcome(step_key="call"),
        )
        assert await engine.report_one("parents", item) == "ok"
    assert await _claim_as(engine, "kids") != []
    ok_child = protocol.child_execution_id(ok_parent, "call", 0)
    bad_child = protocol.child_execution_id(bad_parent, "call", 0)
    assert await _finish_child(engine, ok_child, result='{"score":7}') == "ok"
    assert await _finish_child(engine, bad_child, success=False) == "ok"

    ok_step = await engine.step(ok_parent, "call")
    assert ok_step is not None
    assert (ok_step.status, ok_step.result_json, ok_step.output_schema) == (
        StepStatus.COMPLETED,
        '{"score":7}',
        "mod:Score",
    )
    bad_step = await engine.step(bad_parent, "call")
    assert bad_step is not None
    assert bad_step.status is StepStatus.FAILED
    assert bad_step.error is not None
    assert (bad_step.error.type, bad_step.error.message) == ("ValueError", "child 0 hurt")
    assert (await engine.get(ok_parent)).status is S.QUEUED
    assert (await engine.get(bad_parent)).status is S.QUEUED


async def test_a_child_of_an_unknown_workflow_fails_its_step_and_requeues(engine: Engine) -> None:
    parent_id, _ = await _start_parent(engine, limit=1)
    await _claim_as(engine, "parents")
    item = protocol.ReportItem(
        execution_id=parent_id,
        attempt=1,
        steps=[
            step_report("before", position=0, result='"kept"'),
            pending_batch_step("fan", position=1),
        ],
        children=child_submissions("fan", "never_registered_wf", ["1", "2"]),
        outcome=protocol.SuspendOutcome(step_key="fan"),
    )
    [result] = await engine.report("parents", item)
    assert result.status == "requeued"
    assert result.detail is not None and "'never_registered_wf'" in result.detail
    row = await engine.get(parent_id)
    assert (row.status, row.retry_count) == (S.QUEUED, 0)
    assert await engine.usage("parent_q") == 0
    assert await engine.children(parent_id, "fan") == []
    [replay] = await engine.claim(await engine.worker("parents"))
    assert replay.attempt == 2
    assert [(e.step_key, e.status) for e in replay.journal] == [
        ("before", StepStatus.COMPLETED),
        ("fan", StepStatus.FAILED),
    ]
    fan = replay.journal[1]
    assert fan.error is not None and fan.error.type == "WorkflowNotFoundError"


async def test_children_of_steps_after_an_unknown_child_are_not_started(engine: Engine) -> None:
    """The worker merges the records of one attempt into one report item, so two
    `ctx.step.invoke` calls in a row arrive together. When the first names an unknown workflow,
    the steps after it are dropped ("a future that did not happen"); their children must not be
    started either."""
    parent_id, _ = await _start_parent(engine)
    await _claim_as(engine, "parents")
    first_handle = protocol.child_execution_id(parent_id, "first", 0)
    second_handle = protocol.child_execution_id(parent_id, "second", 0)
    item = protocol.ReportItem(
        execution_id=parent_id,
        attempt=1,
        steps=[
            step_report("first", kind="invoke", position=0, result=json.dumps([first_handle])),
            step_report("second", kind="invoke", position=1, result=json.dumps([second_handle])),
        ],
        children=[
            protocol.ChildSubmission(
                step_key="first", index=0, workflow_id="never_registered_wf", payload="1"
            ),
            protocol.ChildSubmission(
                step_key="second", index=0, workflow_id="child_wf", payload="2"
            ),
        ],
    )
    assert await engine.report_one("parents", item) == "requeued"
    assert await engine.step(parent_id, "second") is None  # dropped...
    orphan = await engine.store.read(lambda tx: tx.get_execution(second_handle))
    assert orphan is None, "the child of the dropped step 'second' was started anyway"


async def test_a_waiting_parent_frees_its_queue_slot(engine: Engine) -> None:
    await engine.register("parents", [("parent_wf", "parent_q", 1)])
    await engine.register("kids", [("child_wf", "child_q", None)])
    first = await engine.submit("parent_wf")
    second = await engine.submit("parent_wf")
    assert await _claim_as(engine, "parents") == [first.execution_id]  # limit 1
    assert await _suspend_on_batch(engine, first.execution_id, attempt=1, n=2) == "ok"
    assert await _claim_as(engine, "parents") == [second.execution_id]
