"""`views.execution_json` (the answers that carry one execution, written with orjson and the
stored JSON values spliced in) gives the JSON of the documented model, `protocol.ExecutionView`
as `views.execution_view` builds it: the same fields, in the same order, with the same values."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import orjson
import pytest

from polos import codec
from polos.model import ErrorInfo, ExecutionRow, ExecutionStatus
from polos.server.views import execution_json, execution_view

_BASE = ExecutionRow(
    id="e-1",
    project_id="default",
    workflow_id="single_review",
    status=ExecutionStatus.COMPLETED,
    queue_name="single_review",
    concurrency_key="",
    payload_json=codec.dumps({"reviewer_id": "r", "content": 'é ✓ \u2028 "quoted"', "n": 1.5e-7}),
    result_json=codec.dumps({"approved": True, "score": 8, "comments": ["a", None]}),
    error=None,
    output_schema="Review",
    parent_execution_id=None,
    root_execution_id="e-1",
    root_workflow_id="single_review",
    parent_step_key=None,
    batch_index=None,
    deployment_id=None,
    session_id=None,
    user_id=None,
    attempt=1,
    retry_count=0,
    worker_id="w-1",
    created_at=1764331200.123456,
    started_at=1764331200.2,
    completed_at=1764331201.0,
    run_timeout_seconds=None,
)

ROWS = {
    "completed": _BASE,
    "failed child with state": dataclasses.replace(
        _BASE,
        status=ExecutionStatus.FAILED,
        result_json=None,
        error=ErrorInfo(type="ValueError", message='bad: "x"\nline two'),
        state_json=codec.dumps({"count": 3, "tags": []}),
        parent_execution_id="p-1",
        root_execution_id="p-1",
        root_workflow_id="parallel_review",
        parent_step_key="reviews",
        batch_index=7,
        concurrency_key="tenant-1",
        deployment_id="d-1",
        session_id="s",
        user_id="u",
        attempt=3,
        retry_count=2,
        run_timeout_seconds=30,
    ),
    "queued, plain values": dataclasses.replace(
        _BASE,
        status=ExecutionStatus.QUEUED,
        payload_json="null",
        result_json=None,
        output_schema=None,
        worker_id=None,
        started_at=None,
        completed_at=None,
        run_timeout_seconds=2.5,
    ),
    "big integers and floats": dataclasses.replace(
        _BASE, payload_json=codec.dumps([2**63, -(2**70), 1e300, 0.1, -0.0, 12345678901234567890])
    ),
}


@pytest.mark.parametrize("name", sorted(ROWS))
def test_the_json_is_the_models(name: str) -> None:
    row = ROWS[name]
    fast: dict[str, Any] = json.loads(orjson.dumps(execution_json(row)))
    model: dict[str, Any] = json.loads(execution_view(row).model_dump_json())
    assert list(fast) == list(model)
    assert fast == model
