"""Wire objects the worker receives, built for unit tests with only what a test cares about."""

from __future__ import annotations

from typing import Any

from polos import protocol


def claimed_execution(execution_id: str, **fields: Any) -> protocol.ClaimedExecutionWire:
    """A first attempt of a top-level execution with an empty journal, unless `fields` say
    otherwise (any field of `ClaimedExecutionWire`)."""
    values: dict[str, Any] = {
        "id": execution_id,
        "project_id": "p",
        "attempt": 1,
        "workflow_id": "wf",
        "payload": "null",
        "queue_name": "q",
        "concurrency_key": "",
        "deployment_id": None,
        "parent_execution_id": None,
        "root_execution_id": execution_id,
        "root_workflow_id": "wf",
        "step_key": None,
        "retry_count": 0,
        "created_at": 0.0,
        "session_id": None,
        "user_id": None,
        "initial_state": None,
        "run_timeout_seconds": None,
        "journal": [],
    }
    values.update(fields)
    return protocol.ClaimedExecutionWire(**values)
