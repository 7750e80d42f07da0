"""A claim's answer written straight from the store's rows (polos/server/claim_wire.py) is the
`protocol.ClaimResponse` the pydantic models describe, field for field."""

from __future__ import annotations

import dataclasses

from polos import protocol
from polos.model import ClaimedExecution, ErrorInfo, StepKind, StepRecord, StepStatus
from polos.server.claim_wire import encode_claim_response


def _journal() -> list[StepRecord]:
    return [
        StepRecord("a", StepKind.RUN, StepStatus.COMPLETED, 0, '{"x": 1}', None, None),
        StepRecord(
            "b",
            StepKind.RUN,
            StepStatus.FAILED,
            1,
            None,
            ErrorInfo("ValueError", 'bad \u00e9 "quoted"\n'),
            None,
        ),
        StepRecord("c", StepKind.BATCH_WAIT, StepStatus.PENDING, 2),
        StepRecord("d", StepKind.RUN, StepStatus.COMPLETED, 3, '{"k": "v"}', None, "Review"),
    ]


def _full() -> ClaimedExecution:
    return ClaimedExecution(
        id="e-1",
        attempt=3,
        workflow_id="wf",
        payload_json='{"content": "caf\u00e9"}',
        queue_name="q",
        concurrency_key="tenant-7",
        deployment_id="dep",
        parent_execution_id="p-1",
        root_execution_id="r-1",
        root_workflow_id="root_wf",
        parent_step_key="reviews",
        retry_count=2,
        created_at=1_764_000_000.125,
        session_id="s",
        user_id="u",
        initial_state_json='{"n": 0}',
        run_timeout_seconds=30.5,
        project_id="default",
        journal=_journal(),
    )


def _minimal() -> ClaimedExecution:
    return ClaimedExecution(
        id="e-2",
        attempt=1,
        workflow_id="wf",
        payload_json="null",
        queue_name="default",
        concurrency_key="",
        deployment_id=None,
        parent_execution_id=None,
        root_execution_id="e-2",
        root_workflow_id="wf",
        parent_step_key=None,
        retry_count=0,
        created_at=1.0,
        session_id=None,
        user_id=None,
        initial_state_json=None,
        run_timeout_seconds=None,
        project_id="default",
    )


def _expected(e: ClaimedExecution) -> protocol.ClaimedExecutionWire:
    return protocol.ClaimedExecutionWire(
        id=e.id,
        project_id=e.project_id,
        attempt=e.attempt,
        workflow_id=e.workflow_id,
        payload=e.payload_json,
        queue_name=e.queue_name,
        concurrency_key=e.concurrency_key,
        deployment_id=e.deployment_id,
        parent_execution_id=e.parent_execution_id,
        root_execution_id=e.root_execution_id,
        root_workflow_id=e.root_workflow_id,
        step_key=e.parent_step_key,
        retry_count=e.retry_count,
        created_at=e.created_at,
        session_id=e.session_id,
        user_id=e.user_id,
        initial_state=e.initial_state_json,
        run_timeout_seconds=e.run_timeout_seconds,
        journal=[
            protocol.JournalEntry(
                key=s.step_key,
                kind=s.kind.value,
                position=s.position,
                status=s.status.value,
                result=s.result_json,
                error=None
                if s.error is None
                else protocol.StoredError(type=s.error.type, message=s.error.message),
                output_schema=s.output_schema,
            )
            for s in e.journal
        ],
    )


def test_the_body_is_the_response_the_models_describe() -> None:
    claimed = [_full(), _minimal()]
    parsed = protocol.ClaimResponse.model_validate_json(encode_claim_response(claimed))
    assert parsed == protocol.ClaimResponse(executions=[_expected(e) for e in claimed])


def test_nothing_claimed() -> None:
    assert protocol.ClaimResponse.model_validate_json(encode_claim_response([])) == (
        protocol.ClaimResponse(executions=[])
    )


def test_every_field_of_the_model_is_written() -> None:
    """A field added to the wire model but not to the encoder fails here."""
    [body] = protocol.ClaimResponse.model_validate_json(encode_claim_response([_full()])).executions
    written = body.model_fields_set
    assert written == set(protocol.ClaimedExecutionWire.model_fields), (
        set(protocol.ClaimedExecutionWire.model_fields) - written
    )
    assert body.journal[0].model_fields_set == set(protocol.JournalEntry.model_fields)
    # And every column the store hands over is used (journal aside, by name or renamed).
    renamed = {"payload_json", "parent_step_key", "initial_state_json", "journal"}
    columns = {f.name for f in dataclasses.fields(ClaimedExecution)} - renamed
    assert columns <= set(protocol.ClaimedExecutionWire.model_fields)
