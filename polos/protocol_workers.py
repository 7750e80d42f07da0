"""Wire models of the worker API: register, heartbeat, claim (with the journal a replay needs)
and report (steps, children, events and the attempt's outcome, many executions per request).

User values (payloads, results, state) cross it as JSON *text*: the server checks and stores
them without decoding them into Python objects.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, Field

from polos.protocol_base import (
    MAX_CLAIM,
    MAX_INT32,
    MAX_LONG_POLL_SECONDS,
    Identifier,
    Limit,
    OptionalKey,
    StepKey,
    StoredError,
    _Strict,
)


class TriggerSpec(_Strict):
    topic: Identifier
    batch_size: Annotated[int, Field(ge=1, le=10_000)] = 1
    batch_timeout_seconds: Annotated[float, Field(gt=0, le=86_400 * 365)] | None = None


class ScheduleSpec(_Strict):
    cron: Annotated[str, Field(min_length=1, max_length=200)]
    timezone: Identifier = "UTC"
    key: Identifier = "global"
    catch_up_seconds: Annotated[float, Field(ge=0, le=86_400 * 366)] = 3600.0


class WorkflowRegistrationWire(_Strict):
    workflow_id: Identifier
    queue_name: Identifier
    queue_concurrency_limit: Limit | None = None
    trigger: TriggerSpec | None = None
    schedule: ScheduleSpec | None = None


class RegisterWorkerRequest(_Strict):
    deployment_id: Identifier | None = None
    capacity: Annotated[int, Field(ge=1, le=100_000)] = 100
    workflows: list[WorkflowRegistrationWire]
    # Set when a worker registers again (the server forgot it): it keeps its live leases.
    worker_id: Identifier | None = None


class RegisterWorkerResponse(BaseModel):
    worker_id: str
    heartbeat_interval_seconds: float
    lease_seconds: float
    # The largest payload, result or state the server stores (bytes of JSON text): workers
    # fail an oversize step or result with a typed error before sending it.
    max_value_bytes: int = 2 * 1024 * 1024


class HeartbeatRequest(_Strict):
    # The executions the worker is running now; their leases are extended.
    execution_ids: list[Identifier] = Field(default_factory=list)


class HeartbeatResponse(BaseModel):
    # True when the server does not know this worker (it was declared dead): register again.
    re_register: bool
    # Executions named in the heartbeat that this worker no longer holds (cancelled, lease
    # lost): stop them.
    lost: list[str] = Field(default_factory=list)


class ClaimRequest(_Strict):
    max: Annotated[int, Field(ge=1, le=MAX_CLAIM)] = 1
    wait_seconds: Annotated[float, Field(ge=0, le=MAX_LONG_POLL_SECONDS)] = 30.0


class JournalEntry(BaseModel):
    key: str
    kind: str
    # The step's place in its execution's call order (replays must ask for the same steps in
    # the same order: WorkflowDivergenceError otherwise).
    position: int = 0
    status: Literal["completed", "failed", "pending"]
    result: str | None = None  # JSON text
    error: StoredError | None = None
    output_schema: str | None = None


class ClaimedExecutionWire(BaseModel):
    id: str
    project_id: str
    attempt: int
    workflow_id: str
    payload: str  # JSON text
    queue_name: str
    concurrency_key: str
    deployment_id: str | None
    parent_execution_id: str | None
    root_execution_id: str
    root_workflow_id: str
    step_key: str | None
    retry_count: int
    created_at: float
    session_id: str | None
    user_id: str | None
    initial_state: str | None  # JSON text
    run_timeout_seconds: float | None
    journal: list[JournalEntry]


class ClaimResponse(BaseModel):
    executions: list[ClaimedExecutionWire]


class StepReport(_Strict):
    key: StepKey
    kind: Identifier
    status: Literal["completed", "failed", "pending"]
    position: Annotated[int, Field(ge=0, le=MAX_INT32)] = 0
    result: str | None = None  # JSON text
    error: StoredError | None = None
    output_schema: str | None = None
    # What a pending wait step waits for: a time (`wait_seconds` from now on the server's
    # clock, or `wait_until` in unix seconds), or an event on `wait_topic` (of
    # `wait_event_type` when set) after `wait_after_seq` (default: the execution's start),
    # giving up after `wait_timeout_seconds`.
    wait_seconds: Annotated[float, Field(ge=0, le=86_400 * 3650)] | None = None
    wait_until: Annotated[float, Field(ge=0, le=1e11)] | None = None
    wait_topic: Identifier | None = None
    wait_event_type: Identifier | None = None
    wait_after_seq: Annotated[int, Field(ge=0, le=2**62)] | None = None
    wait_timeout_seconds: Annotated[float, Field(gt=0, le=86_400 * 3650)] | None = None
    # The failure policy of a pending batch wait (see polos.server.batch_policies).
    fail_fast: bool = False
    min_success: Annotated[int, Field(ge=1, le=MAX_INT32)] | None = None
    # Seconds the body of a `run` step took on the worker (its retries included): stored with
    # the step, and the server's step duration metrics (GET /metrics).
    duration_seconds: Annotated[float, Field(ge=0, le=86_400 * 3650)] | None = None


class EventPublish(_Strict):
    topic: Identifier
    event_type: Identifier | None = None
    data: str  # JSON text


class ChildSubmission(_Strict):
    step_key: StepKey
    index: Annotated[int, Field(ge=0, le=MAX_INT32)]
    workflow_id: Identifier
    payload: str  # JSON text
    queue_name: Identifier | None = None
    queue_concurrency_limit: Limit | None = None
    concurrency_key: OptionalKey | None = None
    initial_state: str | None = None  # JSON text
    run_timeout_seconds: Annotated[float, Field(gt=0)] | None = None
    # True when the parent suspends until this child is final.
    wait: bool = False
    # Fire-and-forget only: every start with this key in the project is one execution.
    idempotency_key: Identifier | None = None


class CompleteOutcome(_Strict):
    type: Literal["complete"] = "complete"
    result: str  # JSON text
    output_schema: str | None = None
    final_state: str | None = None


class FailOutcome(_Strict):
    type: Literal["fail"] = "fail"
    error: StoredError
    retryable: bool = True
    final_state: str | None = None


class SuspendOutcome(_Strict):
    type: Literal["suspend"] = "suspend"
    step_key: StepKey
    final_state: str | None = None


class ReleaseOutcome(_Strict):
    """The worker gives the execution back unfinished (graceful shutdown)."""

    type: Literal["release"] = "release"


Outcome = Annotated[
    CompleteOutcome | FailOutcome | SuspendOutcome | ReleaseOutcome, Field(discriminator="type")
]


class ReportItem(_Strict):
    execution_id: Identifier
    attempt: Annotated[int, Field(ge=1)]
    steps: list[StepReport] = Field(default_factory=list)
    children: list[ChildSubmission] = Field(default_factory=list)
    # Events published by the steps of this item (recorded with them: published once).
    events: list[EventPublish] = Field(default_factory=list)
    outcome: Outcome | None = None


class ReportRequest(_Strict):
    items: list[ReportItem]


ItemStatus = Literal["ok", "stale", "requeued"]


class ReportItemResult(BaseModel):
    execution_id: str
    # ok: applied. stale: refused, the attempt no longer owns the execution (drop it).
    # requeued: the server recorded a step outcome itself (e.g. an unknown child workflow) and
    # re-queued the execution for a replay; drop this attempt.
    status: ItemStatus
    detail: str | None = None


class ReportResponse(BaseModel):
    results: list[ReportItemResult]
