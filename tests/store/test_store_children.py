"""The store contract, part 3: children, suspended parents and their wake-up
(design.md rules 4, 5 and 6) at store level. Every test runs on each backend of
conftest.BACKENDS.
"""

from __future__ import annotations

import asyncio
import json

from polos import protocol
from polos.model import ExecutionStatus, NewEvent, StepKind, StepStatus
from polos.server import events
from polos.store.base import StoreTx
from tests.store.harness import (
    PROJECT,
    Engine,
    child_submissions,
    claim_as,
    pending_batch_step,
    start_parent,
    step_report,
    suspend_on_batch,
)

S = ExecutionStatus


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
    parent_id, _ = await start_parent(engine, limit=1)
    assert await claim_as(engine, "parents") == [parent_id]
    assert await suspend_on_batch(engine, parent_id, attempt=1, n=3) == "ok"

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

    assert sorted(await claim_as(engine, "kids")) == sorted(expected_ids)
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
    parent_id, _ = await start_parent(engine)
    await claim_as(engine, "parents")
    assert await suspend_on_batch(engine, parent_id, attempt=1, n=5) == "ok"
    child_ids = await claim_as(engine, "kids")
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
    parent_id, _ = await start_parent(engine)
    await claim_as(engine, "parents")
    assert await suspend_on_batch(engine, parent_id, attempt=1, n=3) == "ok"
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


async def test_resubmitting_the_same_children_is_idempotent(engine: Engine) -> None:
    parent_id, _ = await start_parent(engine)
    await claim_as(engine, "parents")
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
    parent_id, _ = await start_parent(engine)
    await claim_as(engine, "parents")
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
    await claim_as(engine, "parents")
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
    assert await claim_as(engine, "kids") != []
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
    parent_id, _ = await start_parent(engine, limit=1)
    await claim_as(engine, "parents")
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
    parent_id, _ = await start_parent(engine)
    await claim_as(engine, "parents")
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
    assert await claim_as(engine, "parents") == [first.execution_id]  # limit 1
    assert await suspend_on_batch(engine, first.execution_id, attempt=1, n=2) == "ok"
    assert await claim_as(engine, "parents") == [second.execution_id]


async def test_new_executions_start_their_event_cursor_at_the_last_event(engine: Engine) -> None:
    """A wait only sees events published after its execution was created: the store reads the
    last sequence in the insert itself (a submission's and a step's children alike)."""

    async def publish(topic: str) -> int:
        async def work(tx: StoreTx) -> int:
            [record] = await events.publish(
                tx, PROJECT, [NewEvent(PROJECT, topic, "note", "{}")], engine.clock
            )
            return record.seq

        return await engine.store.run(work)

    async def cursor_of(execution_id: str) -> int:
        return await engine.store.read(lambda tx: tx.event_cursor_of(execution_id))

    parent_id, _ = await start_parent(engine, limit=1)
    seq = await publish("cursor/before-children")
    assert await cursor_of(parent_id) < seq
    assert await claim_as(engine, "parents") == [parent_id]
    assert await suspend_on_batch(engine, parent_id, attempt=1, n=2) == "ok"
    for child in await engine.children(parent_id, "reviews"):
        assert await cursor_of(child.id) == seq
    later = await publish("cursor/before-submission")
    await engine.register("w-cursor", [("wf_cursor", "cursor_q", None)])
    submitted = await engine.submit("wf_cursor")
    # Its own start event comes after it: the cursor is the last sequence before that.
    assert await cursor_of(submitted.execution_id) == later
