"""The worker's report records and their encoder (polos/worker/reports.py): every kind of record,
encoded, validates on the server into the very `protocol.ReportRequest` the pydantic models
would have made, with fields at their defaults left out; and the records keep the models'
fields, so that a field added to one side and not the other fails here."""

from __future__ import annotations

import dataclasses

import orjson
import pytest

from polos import protocol
from polos.worker import reports


def _children() -> list[protocol.ChildSubmission]:
    return [
        # Every field set, none at its default.
        protocol.ChildSubmission(
            step_key="fan",
            index=0,
            workflow_id="child",
            payload='{"n": 1}',
            queue_name="q",
            queue_concurrency_limit=3,
            concurrency_key="tenant-1",
            initial_state='{"s": 0}',
            run_timeout_seconds=12.5,
            wait=True,
            idempotency_key="once",
        ),
        # Only what is required; an empty concurrency key is a value, not an absence.
        protocol.ChildSubmission(
            step_key="fan", index=1, workflow_id="child", payload="null", concurrency_key=""
        ),
    ]


def _events() -> list[protocol.EventPublish]:
    return [
        protocol.EventPublish(topic="news", event_type="created", data='{"id": 1}'),
        protocol.EventPublish(topic="news", data="{}"),
    ]


def _records() -> list[reports.ReportItem]:
    """One item per kind of record (steps of every status and kind of wait, each outcome)."""
    children, events = _children(), _events()
    return [
        reports.ReportItem(
            "e-steps",
            1,
            [
                reports.StepReport(key="first", kind="run", status="completed", result="1"),
                reports.StepReport(
                    key="model",
                    kind="run",
                    status="completed",
                    position=1,
                    result='{"a": 1}',
                    output_schema="app.models:Thing",
                    duration_seconds=0.25,
                ),
                reports.StepReport(
                    key="boom",
                    kind="run",
                    status="failed",
                    position=2,
                    error=reports.StoredError("ValueError", "Step 'boom' failed: no é ✓"),
                    duration_seconds=0.0,
                ),
                reports.StepReport(
                    key="publish", kind="publish", status="completed", position=3, result="null"
                ),
            ],
            [],
            events,
        ),
        reports.ReportItem("e-invoke", 2, [], children, [], None),
        reports.ReportItem(
            "e-batch",
            1,
            [
                reports.StepReport(
                    key="fan",
                    kind="batch_invoke_and_wait",
                    status="pending",
                    position=7,
                    fail_fast=True,
                    min_success=2,
                )
            ],
            children,
            [],
            reports.SuspendOutcome(step_key="fan", final_state='{"s": 1}'),
        ),
        reports.ReportItem(
            "e-timer",
            1,
            [reports.StepReport(key="nap", kind="wait", status="pending", wait_seconds=3600.5)],
            outcome=reports.SuspendOutcome(step_key="nap"),
        ),
        reports.ReportItem(
            "e-until",
            1,
            [reports.StepReport(key="date", kind="wait", status="pending", wait_until=1.9e9)],
            outcome=reports.SuspendOutcome(step_key="date"),
        ),
        reports.ReportItem(
            "e-event",
            1,
            [
                reports.StepReport(
                    key="ask",
                    kind="suspend",
                    status="pending",
                    position=1,
                    wait_topic="workflow/wf/e-event",
                    wait_event_type="resume_ask",
                    wait_after_seq=41,
                    wait_timeout_seconds=30.0,
                )
            ],
            [],
            events[:1],
            reports.SuspendOutcome(step_key="ask"),
        ),
        reports.ReportItem(
            "e-complete",
            3,
            outcome=reports.CompleteOutcome(
                result='{"ok": true}', output_schema="app.models:Result", final_state='{"s": 2}'
            ),
        ),
        reports.ReportItem("e-complete-plain", 1, outcome=reports.CompleteOutcome(result="1")),
        reports.ReportItem(
            "e-fail",
            1,
            outcome=reports.FailOutcome(
                error=reports.StoredError("KeyError", "'x'"), retryable=False, final_state="{}"
            ),
        ),
        reports.ReportItem(
            "e-fail-retry",
            1,
            outcome=reports.FailOutcome(error=reports.StoredError("RuntimeError", "again")),
        ),
        reports.ReportItem("e-release", 4, outcome=reports.ReleaseOutcome()),
    ]


def _expected() -> protocol.ReportRequest:
    """What the pydantic path built for the same records."""
    children, events = _children(), _events()
    return protocol.ReportRequest(
        items=[
            protocol.ReportItem(
                execution_id="e-steps",
                attempt=1,
                steps=[
                    protocol.StepReport(key="first", kind="run", status="completed", result="1"),
                    protocol.StepReport(
                        key="model",
                        kind="run",
                        status="completed",
                        position=1,
                        result='{"a": 1}',
                        output_schema="app.models:Thing",
                        duration_seconds=0.25,
                    ),
                    protocol.StepReport(
                        key="boom",
                        kind="run",
                        status="failed",
                        position=2,
                        error=protocol.StoredError(
                            type="ValueError", message="Step 'boom' failed: no é ✓"
                        ),
                        duration_seconds=0.0,
                    ),
                    protocol.StepReport(
                        key="publish", kind="publish", status="completed", position=3, result="null"
                    ),
                ],
                events=events,
            ),
            protocol.ReportItem(execution_id="e-invoke", attempt=2, children=children),
            protocol.ReportItem(
                execution_id="e-batch",
                attempt=1,
                steps=[
                    protocol.StepReport(
                        key="fan",
                        kind="batch_invoke_and_wait",
                        status="pending",
                        position=7,
                        fail_fast=True,
                        min_success=2,
                    )
                ],
                children=children,
                outcome=protocol.SuspendOutcome(step_key="fan", final_state='{"s": 1}'),
            ),
            protocol.ReportItem(
                execution_id="e-timer",
                attempt=1,
                steps=[
                    protocol.StepReport(
                        key="nap", kind="wait", status="pending", wait_seconds=3600.5
                    )
                ],
                outcome=protocol.SuspendOutcome(step_key="nap"),
            ),
            protocol.ReportItem(
                execution_id="e-until",
                attempt=1,
                steps=[
                    protocol.StepReport(key="date", kind="wait", status="pending", wait_until=1.9e9)
                ],
                outcome=protocol.SuspendOutcome(step_key="date"),
            ),
            protocol.ReportItem(
                execution_id="e-event",
                attempt=1,
                steps=[
                    protocol.StepReport(
                        key="ask",
                        kind="suspend",
                        status="pending",
                        position=1,
                        wait_topic="workflow/wf/e-event",
                        wait_event_type="resume_ask",
                        wait_after_seq=41,
                        wait_timeout_seconds=30.0,
                    )
                ],
                events=events[:1],
                outcome=protocol.SuspendOutcome(step_key="ask"),
            ),
            protocol.ReportItem(
                execution_id="e-complete",
                attempt=3,
                outcome=protocol.CompleteOutcome(
                    result='{"ok": true}',
                    output_schema="app.models:Result",
                    final_state='{"s": 2}',
                ),
            ),
            protocol.ReportItem(
                execution_id="e-complete-plain",
                attempt=1,
                outcome=protocol.CompleteOutcome(result="1"),
            ),
            protocol.ReportItem(
                execution_id="e-fail",
                attempt=1,
                outcome=protocol.FailOutcome(
                    error=protocol.StoredError(type="KeyError", message="'x'"),
                    retryable=False,
                    final_state="{}",
                ),
            ),
            protocol.ReportItem(
                execution_id="e-fail-retry",
                attempt=1,
                outcome=protocol.FailOutcome(
                    error=protocol.StoredError(type="RuntimeError", message="again")
                ),
            ),
            protocol.ReportItem(
                execution_id="e-release", attempt=4, outcome=protocol.ReleaseOutcome()
            ),
        ]
    )


def test_the_body_validates_into_the_request_the_models_made() -> None:
    body = reports.encode_request(_records())
    assert protocol.ReportRequest.model_validate_json(body) == _expected()


def test_fields_at_their_defaults_are_left_out() -> None:
    items = orjson.loads(reports.encode_request(_records()))["items"]
    by_id = {item["execution_id"]: item for item in items}
    assert by_id["e-steps"]["steps"][0] == {
        "key": "first",
        "kind": "run",
        "status": "completed",
        "result": "1",
    }
    assert by_id["e-invoke"] == {
        "execution_id": "e-invoke",
        "attempt": 2,
        "children": [
            {
                "step_key": "fan",
                "index": 0,
                "workflow_id": "child",
                "payload": '{"n": 1}',
                "queue_name": "q",
                "queue_concurrency_limit": 3,
                "concurrency_key": "tenant-1",
                "initial_state": '{"s": 0}',
                "run_timeout_seconds": 12.5,
                "wait": True,
                "idempotency_key": "once",
            },
            {
                "step_key": "fan",
                "index": 1,
                "workflow_id": "child",
                "payload": "null",
                "concurrency_key": "",
            },
        ],
    }
    assert by_id["e-steps"]["events"][1] == {"topic": "news", "data": "{}"}
    assert by_id["e-complete-plain"]["outcome"] == {"type": "complete", "result": "1"}
    assert by_id["e-fail-retry"]["outcome"] == {
        "type": "fail",
        "error": {"type": "RuntimeError", "message": "again"},
    }
    assert by_id["e-release"] == {
        "execution_id": "e-release",
        "attempt": 4,
        "outcome": {"type": "release"},
    }


def test_an_empty_request() -> None:
    assert protocol.ReportRequest.model_validate_json(
        reports.encode_request([])
    ) == protocol.ReportRequest(items=[])


def test_every_field_of_a_submission_and_an_event_is_written() -> None:
    """The encoder reads child submissions and events field by field: a field added to
    their models must be added to it (this fails until it is)."""
    [full, _] = _children()
    item = orjson.loads(reports.encode_request([reports.ReportItem("e", 1, [], [full])]))
    assert set(item["items"][0]["children"][0]) == set(protocol.ChildSubmission.model_fields)
    [event, _] = _events()
    item = orjson.loads(reports.encode_request([reports.ReportItem("e", 1, [], [], [event])]))
    assert set(item["items"][0]["events"][0]) == set(protocol.EventPublish.model_fields)


@pytest.mark.parametrize(
    ("record", "model"),
    [
        (reports.StepReport, protocol.StepReport),
        (reports.ReportItem, protocol.ReportItem),
        (reports.StoredError, protocol.StoredError),
        (reports.CompleteOutcome, protocol.CompleteOutcome),
        (reports.FailOutcome, protocol.FailOutcome),
        (reports.SuspendOutcome, protocol.SuspendOutcome),
        (reports.ReleaseOutcome, protocol.ReleaseOutcome),
    ],
)
def test_records_have_the_fields_of_the_models(record: type, model: type) -> None:
    fields = {f.name for f in dataclasses.fields(record)}
    if "type" in model.model_fields and "type" not in fields:  # an outcome's: a class constant
        assert record.type == model.model_fields["type"].default
        fields.add("type")
    assert fields == set(model.model_fields)
