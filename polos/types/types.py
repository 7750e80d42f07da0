"""Inputs and results of batches (`from polos.types.types import BatchWorkflowInput`)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict


class BatchWorkflowInput(BaseModel):
    """One child of `ctx.step.batch_invoke*` or `PolosClient.batch_invoke`.

    `id` is the workflow ID (the workflow does not have to be imported by the caller).
    `concurrency_key` and `queue` are per-item additions to upstream's fields.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    id: str
    payload: Any | None = None
    initial_state: BaseModel | dict[str, Any] | None = None
    run_timeout_seconds: int | None = None
    concurrency_key: str | None = None
    queue: str | None = None


class BatchStepResult(BaseModel):
    """One child's outcome in `batch_invoke_and_wait`, in input order.

    `result` is rebuilt into the child's return type when the reading process knows it (the
    child workflow is registered locally, or its result class can be imported); otherwise it
    is the plain JSON value. A failed or cancelled child has `success=False` and `error` set.
    """

    model_config = ConfigDict(extra="ignore")

    workflow_id: str
    execution_id: str
    success: bool
    result: Any | None = None
    error: str | None = None
    error_type: str | None = None
