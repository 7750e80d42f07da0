"""Records of the engine and the execution state machine. No I/O, no imports of ours.

Every layer (store, server, SDK, CLI) uses these words; see design.md "Semantics the whole
system shares".
"""

from __future__ import annotations

import enum
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any


class ExecutionStatus(enum.StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    WAITING = "waiting"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def is_final(self) -> bool:
        return self in FINAL_STATUSES


FINAL_STATUSES = frozenset(
    {ExecutionStatus.COMPLETED, ExecutionStatus.FAILED, ExecutionStatus.CANCELLED}
)

# The legal transitions. `running -> queued` covers a retry, an expired lease and a re-queue for
# replay; `waiting -> queued` is a wake-up. Final statuses have no way out.
TRANSITIONS: dict[ExecutionStatus, frozenset[ExecutionStatus]] = {
    ExecutionStatus.QUEUED: frozenset({ExecutionStatus.RUNNING, ExecutionStatus.CANCELLED}),
    ExecutionStatus.RUNNING: frozenset(
        {
            ExecutionStatus.QUEUED,
            ExecutionStatus.WAITING,
            ExecutionStatus.COMPLETED,
            ExecutionStatus.FAILED,
            ExecutionStatus.CANCELLED,
        }
    ),
    ExecutionStatus.WAITING: frozenset({ExecutionStatus.QUEUED, ExecutionStatus.CANCELLED}),
    ExecutionStatus.COMPLETED: frozenset(),
    ExecutionStatus.FAILED: frozenset(),
    ExecutionStatus.CANCELLED: frozenset(),
}


class IllegalTransition(Exception):
    def __init__(self, current: ExecutionStatus, target: ExecutionStatus) -> None:
        super().__init__(f"an execution cannot go from {current.value} to {target.value}")
        self.current = current
        self.target = target


def can_transition(current: ExecutionStatus, target: ExecutionStatus) -> bool:
    return target in TRANSITIONS[current]


def check_transition(current: ExecutionStatus, target: ExecutionStatus) -> None:
    if not can_transition(current, target):
        raise IllegalTransition(current, target)


class StepKind(enum.StrEnum):
    """What a journal entry recorded; replay divergence checks (issue 6) compare these."""

    RUN = "run"
    UUID = "uuid"
    NOW = "now"
    RANDOM = "random"
    INVOKE = "invoke"
    INVOKE_WAIT = "invoke_and_wait"
    BATCH_INVOKE = "batch_invoke"
    BATCH_WAIT = "batch_invoke_and_wait"
    WAIT = "wait"
    WAIT_EVENT = "wait_for_event"
    SUSPEND = "suspend"
    PUBLISH = "publish_event"
    # `ctx.step.patched(change_id)`: a marker outside the call order (no position of its own).
    PATCHED = "patched"


# Steps whose record the server writes when what they wait for happens.
CHILD_WAIT_KINDS = frozenset({StepKind.INVOKE_WAIT, StepKind.BATCH_WAIT})
EVENT_WAIT_KINDS = frozenset({StepKind.WAIT_EVENT, StepKind.SUSPEND})
WAITING_STEP_KINDS = CHILD_WAIT_KINDS | EVENT_WAIT_KINDS | {StepKind.WAIT}


class TimerKind(enum.StrEnum):
    WAKE = "wake"  # a long wait_for / wait_until is over
    WAIT_TIMEOUT = "wait_timeout"  # an event wait or a suspension gave up
    RUN_TIMEOUT = "run_timeout"  # run_timeout_seconds passed: cancel the execution
    TRIGGER_BATCH = "trigger_batch"  # a partial event batch is old enough to fire


class StepStatus(enum.StrEnum):
    COMPLETED = "completed"
    FAILED = "failed"
    PENDING = "pending"


@dataclass(slots=True)
class ErrorInfo:
    """A stored error: the exception's type name and its whole message."""

    type: str
    message: str

    def to_json(self) -> dict[str, str]:
        return {"type": self.type, "message": self.message}

    @classmethod
    def from_json(cls, value: Any) -> ErrorInfo:
        if isinstance(value, dict):
            return cls(type=str(value.get("type") or "Error"), message=str(value.get("message")))
        return cls(type="Error", message=str(value))


@dataclass(slots=True)
class NewExecution:
    """An execution to create: a top-level submission or a child of a step."""

    id: str
    project_id: str
    workflow_id: str
    queue_name: str
    payload_json: str
    concurrency_key: str = ""
    deployment_id: str | None = None
    parent_execution_id: str | None = None
    root_execution_id: str | None = None
    root_workflow_id: str | None = None
    parent_step_key: str | None = None
    batch_index: int | None = None
    # True when the parent waits for this child (invoke_and_wait / batch_invoke_and_wait).
    notify_parent: bool = False
    session_id: str | None = None
    user_id: str | None = None
    initial_state_json: str | None = None
    run_timeout_seconds: float | None = None
    idempotency_key: str | None = None
    # The event sequence reached when the execution was created (see server/events.py); None:
    # the last one at the insert, which the store reads in the insert statement itself.
    event_cursor: int | None = None


@dataclass(slots=True)
class StepRecord:
    """One journal entry of one execution."""

    step_key: str
    kind: StepKind
    status: StepStatus
    position: int = 0
    result_json: str | None = None
    error: ErrorInfo | None = None
    output_schema: str | None = None
    # How long the step's body took, as the worker measured it (None when not reported).
    duration_seconds: float | None = None


@dataclass(slots=True)
class ClaimedExecution:
    """What a worker receives for one claimed execution: everything a replay needs."""

    id: str
    attempt: int
    workflow_id: str
    payload_json: str
    queue_name: str
    concurrency_key: str
    deployment_id: str | None
    parent_execution_id: str | None
    root_execution_id: str
    root_workflow_id: str
    parent_step_key: str | None
    retry_count: int
    created_at: float
    session_id: str | None
    user_id: str | None
    initial_state_json: str | None
    run_timeout_seconds: float | None
    project_id: str = ""
    journal: list[StepRecord] = field(default_factory=list)


@dataclass(slots=True)
class ExecutionRow:
    """An execution as the public API shows it."""

    id: str
    project_id: str
    workflow_id: str
    status: ExecutionStatus
    queue_name: str
    concurrency_key: str
    payload_json: str
    result_json: str | None
    error: ErrorInfo | None
    output_schema: str | None
    parent_execution_id: str | None
    root_execution_id: str
    root_workflow_id: str
    parent_step_key: str | None
    batch_index: int | None
    deployment_id: str | None
    session_id: str | None
    user_id: str | None
    attempt: int
    retry_count: int
    worker_id: str | None
    created_at: float
    started_at: float | None
    completed_at: float | None
    run_timeout_seconds: float | None
    state_json: str | None = None


@dataclass(slots=True)
class TriggerRegistration:
    topic: str
    batch_size: int = 1
    batch_timeout_seconds: float | None = None


@dataclass(slots=True)
class ScheduleRegistration:
    cron: str
    timezone: str = "UTC"
    key: str = "global"
    catch_up_seconds: float = 3600.0


@dataclass(slots=True)
class WorkflowRegistration:
    workflow_id: str
    queue_name: str
    queue_concurrency_limit: int | None = None
    trigger: TriggerRegistration | None = None
    schedule: ScheduleRegistration | None = None


@dataclass(slots=True)
class WorkerInfo:
    id: str
    project_id: str
    deployment_id: str | None
    capacity: int
    workflow_ids: list[str]
    registered_at: float
    last_heartbeat_at: float


@dataclass(slots=True)
class ApiKey:
    """An API key as stored: never the key itself, only its hash and first characters."""

    id: str
    project_id: str
    name: str
    key_hash: str
    prefix: str
    created_at: float
    revoked_at: float | None = None


@dataclass(slots=True)
class RegisteredWorkflow:
    workflow_id: str
    queue_name: str
    registered_at: float
    last_registered_at: float


@dataclass(slots=True)
class ExecutionFilter:
    """What `GET /api/v1/executions` asks for; newest first (by `created_at`, then insertion
    order), strictly before `before` = (created_at, insertion order) (a cursor)."""

    status: ExecutionStatus | None = None
    workflow_id: str | None = None
    parent_execution_id: str | None = None
    root_execution_id: str | None = None
    error_type: str | None = None
    # created_after <= created_at < created_before (unix seconds).
    created_after: float | None = None
    created_before: float | None = None
    before: tuple[float, int] | None = None
    limit: int = 50


@dataclass(slots=True)
class NewEvent:
    project_id: str
    topic: str
    event_type: str | None
    data_json: str
    execution_id: str | None = None
    root_execution_id: str | None = None


@dataclass(slots=True)
class EventRecord:
    seq: int
    id: str
    project_id: str
    topic: str
    event_type: str | None
    data_json: str
    execution_id: str | None
    root_execution_id: str | None
    created_at: float

    def to_json(self) -> str:
        """The event as steps and streams return it (`data` spliced in as stored)."""
        created = datetime.fromtimestamp(self.created_at, UTC).isoformat().replace("+00:00", "Z")
        return '{"id":%s,"sequence_id":%d,"topic":%s,"event_type":%s,"data":%s,"created_at":%s}' % (
            json.dumps(self.id),
            self.seq,
            json.dumps(self.topic),
            json.dumps(self.event_type),
            self.data_json,
            json.dumps(created),
        )


@dataclass(slots=True)
class EventWait:
    """A pending wait_for_event or suspend step: what it waits for."""

    execution_id: str
    step_key: str
    event_type: str | None
    after_seq: int


@dataclass(slots=True)
class Timer:
    id: int
    project_id: str
    kind: TimerKind
    execution_id: str | None
    step_key: str | None
    target: str | None
    fire_at: float


@dataclass(slots=True)
class Schedule:
    id: str
    project_id: str
    workflow_id: str
    key: str
    cron: str
    timezone: str
    catch_up_seconds: float
    next_fire_at: float
    last_fire_at: float | None
    created_at: float
    updated_at: float


@dataclass(slots=True)
class EventTrigger:
    project_id: str
    workflow_id: str
    topic: str
    batch_size: int
    batch_timeout_seconds: float | None
    cursor_seq: int
    queue_name: str


@dataclass(slots=True)
class AttemptSteps:
    """Step records of one attempt of an execution, as a worker reports them."""

    execution_id: str
    attempt: int
    steps: Sequence[StepRecord]


@dataclass(slots=True)
class FenceRow:
    """The columns lifecycle decisions need about an execution."""

    id: str
    project_id: str
    workflow_id: str
    status: ExecutionStatus
    attempt: int
    worker_id: str | None
    queue_name: str
    concurrency_key: str
    parent_execution_id: str | None
    parent_step_key: str | None
    notify_parent: bool
    retry_count: int
    root_execution_id: str
    root_workflow_id: str
    deployment_id: str | None
    session_id: str | None
    user_id: str | None
    # Whether its queue has a concurrency limit (read with the row by `fence_rows` only): a
    # slot it frees there may let a queued execution start.
    queue_limited: bool = False

    def run_by(self, worker_id: str, attempt: int) -> bool:
        """The fence (design.md rule 7): only the running attempt's worker may report."""
        return (
            self.status is ExecutionStatus.RUNNING
            and self.attempt == attempt
            and self.worker_id == worker_id
        )


@dataclass(slots=True)
class FinalUpdate:
    """An execution reaching `completed` or `failed`."""

    id: str
    status: ExecutionStatus
    result_json: str | None
    error: ErrorInfo | None
    output_schema: str | None
    state_json: str | None
    # Set by a caller that fenced the execution as running in this transaction (a worker's
    # report): its (root, parent, parent step), so the status counters need not read the row
    # again (store/status_counts.py).
    running_at: tuple[str, str | None, str | None] | None = None


@dataclass(slots=True)
class ChildOutcome:
    """A finished child as its parent's waiting step sees it."""

    id: str
    workflow_id: str
    status: ExecutionStatus
    result_json: str | None
    error: ErrorInfo | None
    output_schema: str | None
