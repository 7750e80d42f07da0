"""Records of the store as the public API shows them.

`execution_view` builds the documented model (`protocol.ExecutionView`); `execution_json` the
same object for orjson, with the stored JSON values (payload, result, state) spliced in as they
are stored instead of decoded and encoded again: the answers that carry one execution (a
`Workflow.run`'s, `GET .../wait`, `GET /executions/{id}`) are written that way.
tests/unit/test_view_wire.py checks that both give the same JSON.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson

from polos import codec, protocol
from polos.model import ExecutionRow


def iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, UTC).isoformat().replace("+00:00", "Z")


def execution_view(row: ExecutionRow) -> protocol.ExecutionView:
    return protocol.ExecutionView(
        id=row.id,
        workflow_id=row.workflow_id,
        status=row.status.value,
        payload=codec.loads(row.payload_json),
        result=codec.loads(row.result_json),
        error=protocol.StoredError(type=row.error.type, message=row.error.message)
        if row.error
        else None,
        output_schema_name=row.output_schema,
        state=codec.loads(row.state_json),
        parent_execution_id=row.parent_execution_id,
        root_execution_id=row.root_execution_id,
        root_workflow_id=row.root_workflow_id,
        step_key=row.parent_step_key,
        batch_index=row.batch_index,
        queue_name=row.queue_name,
        concurrency_key=row.concurrency_key or None,
        deployment_id=row.deployment_id,
        session_id=row.session_id,
        user_id=row.user_id,
        attempt=row.attempt,
        retry_count=row.retry_count,
        worker_id=row.worker_id,
        run_timeout_seconds=row.run_timeout_seconds,
        created_at=iso(row.created_at) or "",
        started_at=iso(row.started_at),
        completed_at=iso(row.completed_at),
    )


def _stored(text: str | None) -> orjson.Fragment | None:
    # Stored values were checked to be one JSON document when they were written.
    return None if text is None else orjson.Fragment(text)


def execution_json(row: ExecutionRow) -> dict[str, Any]:
    """`execution_view(row)` as a dict for `orjson.dumps`, the same fields in the same order."""
    return {
        "id": row.id,
        "workflow_id": row.workflow_id,
        "status": row.status.value,
        "payload": _stored(row.payload_json),
        "result": _stored(row.result_json),
        "error": {"type": row.error.type, "message": row.error.message} if row.error else None,
        "output_schema_name": row.output_schema,
        "state": _stored(row.state_json),
        "parent_execution_id": row.parent_execution_id,
        "root_execution_id": row.root_execution_id,
        "root_workflow_id": row.root_workflow_id,
        "step_key": row.parent_step_key,
        "batch_index": row.batch_index,
        "queue_name": row.queue_name,
        "concurrency_key": row.concurrency_key or None,
        "deployment_id": row.deployment_id,
        "session_id": row.session_id,
        "user_id": row.user_id,
        "attempt": row.attempt,
        "retry_count": row.retry_count,
        "worker_id": row.worker_id,
        "run_timeout_seconds": (
            None if row.run_timeout_seconds is None else float(row.run_timeout_seconds)
        ),
        "created_at": iso(row.created_at) or "",
        "started_at": iso(row.started_at),
        "completed_at": iso(row.completed_at),
    }
