"""Wire models of the HTTP API, shared by the client, the worker and the server.

Imports nothing of ours (design.md, import direction). The worker protocol carries user values
(payloads, results, state) as JSON *text*: the server checks and stores it without decoding it
into Python objects. The public client API carries JSON values.
"""

from __future__ import annotations

import ipaddress
import uuid
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

API_PREFIX = "/api/v1"

# Namespace of the deterministic child execution IDs (rule 5 of design.md).
CHILD_ID_NAMESPACE = uuid.UUID("6f1c2b8e-3f4a-5d6e-9a0b-1c2d3e4f5a6b")

# Limits that keep one request bounded; the server also enforces byte sizes.
MAX_CLAIM = 1000
MAX_LONG_POLL_SECONDS = 60.0
MAX_STEP_KEY_LENGTH = 512
MAX_ID_LENGTH = 255
# Integers stored in 32-bit columns (positions, batch indexes, limits).
MAX_INT32 = 2**31 - 1


def check_text(value: str) -> str:
    """Identifiers and keys are stored as text: NUL bytes (which PostgreSQL cannot store) and
    lone surrogates (which UTF-8 cannot encode) are refused."""
    if "\x00" in value:
        raise ValueError("must not contain NUL bytes")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("must be valid Unicode (no lone surrogates)") from None
    return value


StepKey = Annotated[
    str, Field(min_length=1, max_length=MAX_STEP_KEY_LENGTH), AfterValidator(check_text)
]
Identifier = Annotated[
    str, Field(min_length=1, max_length=MAX_ID_LENGTH), AfterValidator(check_text)
]
Limit = Annotated[int, Field(ge=1, le=MAX_INT32)]
OptionalKey = Annotated[str, Field(max_length=MAX_ID_LENGTH), AfterValidator(check_text)]


def is_loopback_host(host: str) -> bool:
    """True for names and addresses that only this machine can reach."""
    if host in ("localhost", "localhost.localdomain"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


IDEMPOTENCY_NAMESPACE = uuid.UUID("0c7d2f3e-8a41-5b6c-9d0e-1f2a3b4c5d6e")


def idempotent_execution_id(project_id: str, idempotency_key: str) -> str:
    """The execution ID of a start with an idempotency key: every start with the same key in
    the same project (from a client or from a step) names the same execution."""
    return str(uuid.uuid5(IDEMPOTENCY_NAMESPACE, f"{project_id}\x00{idempotency_key}"))


# The low 48 bits of a UUID (its "node" field); the version and variant bits lie above them.
_NODE_BITS = 48
_NODE_MASK = (1 << _NODE_BITS) - 1


def child_execution_id(parent_execution_id: str, step_key: str, index: int) -> str:
    """The execution ID of child `index` of step `step_key`: the same on every replay.

    A version-5 UUID of (parent, step key) whose last 12 hex digits are the index: the
    children of one step share a prefix and sort by index, so every B-tree keyed by execution
    ID (the executions' primary key, the journal) keeps a batch on a few adjacent pages instead
    of one random page per child. That halved the bytes SQLite writes in a 10,000-child
    fan-out (docs/performance.md)."""
    if not 0 <= index <= _NODE_MASK:
        raise ValueError(f"child index {index} is out of range")
    base = uuid.uuid5(CHILD_ID_NAMESPACE, f"{parent_execution_id}\x00{step_key}").int
    return str(uuid.UUID(int=(base & ~_NODE_MASK) | index))


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ErrorDetail(BaseModel):
    code: str
    message: str


class ErrorBody(BaseModel):
    """Every 4xx/5xx answer of the API has this body."""

    error: ErrorDetail


class StoredError(BaseModel):
    """An error as stored: the exception's type name and its whole message."""

    type: str
    message: str


# --------------------------------------------------------------------------- client API


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


# --------------------------------------------------------------------------- worker API


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


# --------------------------------------------------------------------------- events


class PublishedEvent(_Strict):
    event_type: Identifier | None = None
    data: Any = None


class PublishRequest(_Strict):
    topic: Identifier
    events: list[PublishedEvent]
    execution_id: Identifier | None = None
    root_execution_id: Identifier | None = None


class PublishResponse(BaseModel):
    sequence_ids: list[int]
    created_at: str


class EventView(BaseModel):
    id: str
    sequence_id: int
    topic: str
    event_type: str | None = None
    data: Any = None
    created_at: str


class EventList(BaseModel):
    events: list[EventView]
    next_sequence_id: int


class CancelResponse(BaseModel):
    execution_id: str
    status: str
    # How many executions (this one and its unfinished descendants) were cancelled.
    cancelled: int


# --------------------------------------------------------------------------- schedules


class ScheduleRequest(_Strict):
    workflow_id: Identifier
    cron: Annotated[str, Field(min_length=1, max_length=200)]
    timezone: Identifier = "UTC"
    key: Identifier = "global"
    catch_up_seconds: Annotated[float, Field(ge=0, le=86_400 * 366)] = 3600.0


class ScheduleView(BaseModel):
    id: str
    workflow_id: str
    key: str
    cron: str
    timezone: str
    catch_up_seconds: float
    next_fire_at: str
    last_fire_at: str | None = None


class ScheduleResponse(BaseModel):
    schedule_id: str
    schedule: ScheduleView


class ScheduleList(BaseModel):
    schedules: list[ScheduleView]


class ScheduleSlotView(BaseModel):
    slot_at: str
    status: Literal["fired", "skipped"]
    execution_id: str | None = None


class ScheduleSlotList(BaseModel):
    slots: list[ScheduleSlotView]


class ClockAdvance(_Strict):
    seconds: Annotated[float, Field(ge=0, le=86_400 * 3650)]


class ClockView(BaseModel):
    now: float
    offset: float


class ClockAgenda(BaseModel):
    """The test clock's view of the work (`GET /api/v1/testing/agenda`; `polos.testing`).

    `settled`: nothing is running, no queued execution is due for a workflow a live worker
    serves, and no timer or schedule slot is due (`running == runnable == due == 0`).
    `next_due_at` is the earliest moment something falls due by itself: a durable timer (a
    wait, a wait or suspend timeout, a run timeout, a partial event batch), a schedule slot or
    a delayed retry; `next_due_kind` says which."""

    now: float
    offset: float
    settled: bool
    running: int
    # Queued, due, and served by a live worker: a worker will take them.
    runnable: int
    # Queued and due, but no live worker serves their workflow: they wait for one.
    unserved: int
    # Timers and schedule slots due by `now` and not fired yet.
    due: int
    next_due_at: float | None = None
    next_due_kind: str | None = None
    # Some of the executions that keep it from being settled ("workflow_id execution_id status").
    busy: list[str] = []


# --------------------------------------------------------------------------- observability
# What the CLI and the dashboard read: journals with timings, progress of fan-outs, trees,
# queues, recent events (docs/cli.md).


class StatusCounts(BaseModel):
    """Executions by status; `total` is their sum."""

    queued: int = 0
    running: int = 0
    waiting: int = 0
    completed: int = 0
    failed: int = 0
    cancelled: int = 0
    total: int = 0


class StepView(BaseModel):
    """One journal entry. `created_at`: when the server recorded it (for a waiting step: when
    the wait began); `completed_at`: when its outcome was recorded; `duration_seconds`: the
    body's duration as the worker measured it when reported, else completed_at - created_at
    (a wait's length), else null (still pending)."""

    key: str
    kind: str
    status: str
    position: int
    created_at: str
    completed_at: str | None = None
    duration_seconds: float | None = None
    error: StoredError | None = None
    output_schema: str | None = None
    # Only with `include_results=true`.
    result: Any = None


class StepList(BaseModel):
    execution_id: str
    steps: list[StepView]
    # Pass as `cursor` for the next page (later steps); null on the last page.
    next_cursor: str | None = None


class ExecutionProgress(BaseModel):
    """Status counts of an execution's direct children and of all its descendants (itself
    excluded)."""

    execution_id: str
    workflow_id: str
    status: str
    children: StatusCounts
    descendants: StatusCounts


class ExecutionSummaryView(BaseModel):
    """An execution as a tree shows it."""

    id: str
    workflow_id: str
    status: str
    parent_execution_id: str | None = None
    step_key: str | None = None
    batch_index: int | None = None
    error: StoredError | None = None
    created_at: str
    started_at: str | None = None
    completed_at: str | None = None


class TreeGroup(BaseModel):
    """The children one step of the parent started (`step_key`), with their counts; at most
    `limit_per_group` of them are listed, in input order, and `more` says how many are not."""

    step_key: str | None = None
    counts: StatusCounts
    executions: list[TreeNode]
    more: int = 0


class TreeNode(BaseModel):
    execution: ExecutionSummaryView
    # Its direct children by status (all groups).
    children: StatusCounts
    # False when the node's children are not listed (the depth asked for is reached, or the
    # response's node budget ran out); `children` still counts them.
    expanded: bool = False
    groups: list[TreeGroup] = Field(default_factory=list)
    # Groups not listed (a node shows at most MAX_TREE_GROUPS).
    more_groups: int = 0


class ExecutionTree(BaseModel):
    """`GET /executions/{id}/tree`: the fan-out below an execution."""

    root: TreeNode
    # Descendants by level (levels[0]: children, levels[1]: grandchildren, ...), down to
    # `depth` levels.
    levels: list[StatusCounts]
    depth: int
    limit_per_group: int
    # True when the node budget (MAX_TREE_NODES) stopped the listing before `depth`.
    truncated: bool = False


TreeGroup.model_rebuild()


class QueueView(BaseModel):
    name: str
    # None: no limit.
    concurrency_limit: int | None = None
    running: int
    queued: int
    waiting: int


class QueueList(BaseModel):
    queues: list[QueueView]


class RecentEventList(BaseModel):
    """The project's latest events (across topics, or of one), newest first."""

    events: list[EventView]
    # Pass as `before_sequence_id` for older events; null when there are none.
    next_before_sequence_id: int | None = None
