"""Wire models of the public client API: submitting workflows (one or a batch), reading and
cancelling executions, listing workflows and workers, health."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, Field

from polos.protocol_base import Identifier, Limit, OptionalKey, StoredError, _Strict


class SubmitRequest(_Strict):
    payload: Any = None
    queue_name: Identifier | None = None
    queue_concurrency_limit: Limit | None = None
    concurrency_key: OptionalKey | None = None
    deployment_id: Identifier | None = None
    session_id: Identifier | None = None
    user_id: Identifier | None = None
    initial_state: Any = None
    run_timeout_seconds: Annotated[float, Field(gt=0)] | None = None
    idempotency_key: Identifier | None = None


class SubmitResponse(BaseModel):
    execution_id: str
    workflow_id: str
    root_execution_id: str
    created_at: str
    # False when an earlier submission with the same idempotency key was returned.
    created: bool = True
    # With `?wait_seconds=`: the execution, when it became final within that time.
    execution: ExecutionView | None = None


class BatchSubmitItem(_Strict):
    workflow_id: Identifier
    payload: Any = None
    queue_name: Identifier | None = None
    queue_concurrency_limit: Limit | None = None
    concurrency_key: OptionalKey | None = None
    initial_state: Any = None
    run_timeout_seconds: Annotated[float, Field(gt=0)] | None = None


class BatchSubmitRequest(_Strict):
    workflows: list[BatchSubmitItem]
    deployment_id: Identifier | None = None
    session_id: Identifier | None = None
    user_id: Identifier | None = None


class BatchSubmitResponse(BaseModel):
    executions: list[SubmitResponse]


class ExecutionView(BaseModel):
    """An execution as `GET /api/v1/executions/{id}` returns it."""

    id: str
    workflow_id: str
    status: str
    payload: Any = None
    result: Any = None
    error: StoredError | None = None
    output_schema_name: str | None = None
    # The workflow's `ctx.state` as last saved (suspension, failure, completion).
    state: Any = None
    parent_execution_id: str | None = None
    root_execution_id: str
    root_workflow_id: str
    step_key: str | None = None
    batch_index: int | None = None
    queue_name: str
    concurrency_key: str | None = None
    deployment_id: str | None = None
    session_id: str | None = None
    user_id: str | None = None
    attempt: int
    retry_count: int
    worker_id: str | None = None
    run_timeout_seconds: float | None = None
    created_at: str
    started_at: str | None = None
    completed_at: str | None = None


class ExecutionList(BaseModel):
    executions: list[ExecutionView]
    # Pass as `cursor` to get the next (older) page; null on the last page.
    next_cursor: str | None = None


class WorkflowView(BaseModel):
    workflow_id: str
    queue_name: str
    registered_at: str
    last_registered_at: str


class WorkflowList(BaseModel):
    workflows: list[WorkflowView]


class WorkerView(BaseModel):
    id: str
    deployment_id: str | None
    capacity: int
    workflow_ids: list[str]
    registered_at: str
    last_heartbeat_at: str
    # Heard from within the lease window (a silent worker's executions go back to the queue).
    alive: bool = False
    # Executions it holds now (running under its lease).
    in_flight: int = 0


class WorkerList(BaseModel):
    workers: list[WorkerView]


class HealthResponse(BaseModel):
    status: str
    database: str


class CancelResponse(BaseModel):
    execution_id: str
    status: str
    # How many executions (this one and its unfinished descendants) were cancelled.
    cancelled: int
