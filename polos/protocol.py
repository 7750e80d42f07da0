"""Wire models of the HTTP API, shared by the client, the worker and the server.

Imports nothing of ours but its own polos/protocol_*.py parts (design.md, import direction). The
worker protocol carries user values (payloads, results, state) as JSON *text*: the server checks
and stores it without decoding it into Python objects. The public client API carries JSON values.

This module is the entry point: `from polos import protocol`, then `protocol.X`. It keeps the API
prefix and the deterministic execution IDs (`child_execution_id`, `idempotent_execution_id`);
the models live in one module per route group, so that no module grows past a few hundred lines:

- polos/protocol_base.py: request limits (`MAX_*`), the checked text types (`Identifier`,
  `StepKey`, `Limit`, `OptionalKey`, `check_text`), the error bodies and `StoredError`;
- polos/protocol_client.py: submit (one or a batch), execution views and lists, cancel, workflow
  and worker lists, health;
- polos/protocol_workers.py: register, heartbeat, claim (journal entries) and report (steps,
  children, published events, outcomes);
- polos/protocol_events.py: publishing and reading events;
- polos/protocol_schedules.py: schedules and the test clock;
- polos/protocol_observe.py: progress, steps, trees, queues and recent events.

Every name is re-exported here (`__all__`); the class names are the schema names of the OpenAPI
document, so they stay the same wherever a model lives.
"""

from __future__ import annotations

import functools
import ipaddress
import uuid

from polos.protocol_base import (
    MAX_CLAIM,
    MAX_ID_LENGTH,
    MAX_INT32,
    MAX_LONG_POLL_SECONDS,
    MAX_STEP_KEY_LENGTH,
    ErrorBody,
    ErrorDetail,
    Identifier,
    Limit,
    OptionalKey,
    StepKey,
    StoredError,
    check_text,
    describe_validation_error,
)
from polos.protocol_client import (
    BatchSubmitItem,
    BatchSubmitRequest,
    BatchSubmitResponse,
    CancelResponse,
    ExecutionList,
    ExecutionView,
    HealthResponse,
    SubmitRequest,
    SubmitResponse,
    WorkerList,
    WorkerView,
    WorkflowList,
    WorkflowView,
)
from polos.protocol_events import (
    EventList,
    EventView,
    PublishedEvent,
    PublishRequest,
    PublishResponse,
)
from polos.protocol_observe import (
    ExecutionProgress,
    ExecutionSummaryView,
    ExecutionTree,
    QueueList,
    QueueView,
    RecentEventList,
    StatusCounts,
    StepList,
    StepView,
    TreeGroup,
    TreeNode,
)
from polos.protocol_schedules import (
    ClockAdvance,
    ClockAgenda,
    ClockView,
    ScheduleList,
    ScheduleRequest,
    ScheduleResponse,
    ScheduleSlotList,
    ScheduleSlotView,
    ScheduleView,
)
from polos.protocol_workers import (
    ChildSubmission,
    ClaimedExecutionWire,
    ClaimRequest,
    ClaimResponse,
    CompleteOutcome,
    EventPublish,
    FailOutcome,
    HeartbeatRequest,
    HeartbeatResponse,
    ItemStatus,
    JournalEntry,
    Outcome,
    RegisterWorkerRequest,
    RegisterWorkerResponse,
    ReleaseOutcome,
    ReportItem,
    ReportItemResult,
    ReportRequest,
    ReportResponse,
    ScheduleSpec,
    StepReport,
    SuspendOutcome,
    TriggerSpec,
    WorkflowRegistrationWire,
)

__all__ = [
    "API_PREFIX",
    "CHILD_ID_NAMESPACE",
    "IDEMPOTENCY_NAMESPACE",
    "MAX_CLAIM",
    "MAX_ID_LENGTH",
    "MAX_INT32",
    "MAX_LONG_POLL_SECONDS",
    "MAX_STEP_KEY_LENGTH",
    "BatchSubmitItem",
    "BatchSubmitRequest",
    "BatchSubmitResponse",
    "CancelResponse",
    "ChildSubmission",
    "ClaimRequest",
    "ClaimResponse",
    "ClaimedExecutionWire",
    "ClockAdvance",
    "ClockAgenda",
    "ClockView",
    "CompleteOutcome",
    "ErrorBody",
    "ErrorDetail",
    "EventList",
    "EventPublish",
    "EventView",
    "ExecutionList",
    "ExecutionProgress",
    "ExecutionSummaryView",
    "ExecutionTree",
    "ExecutionView",
    "FailOutcome",
    "HealthResponse",
    "HeartbeatRequest",
    "HeartbeatResponse",
    "Identifier",
    "ItemStatus",
    "JournalEntry",
    "Limit",
    "OptionalKey",
    "Outcome",
    "PublishRequest",
    "PublishResponse",
    "PublishedEvent",
    "QueueList",
    "QueueView",
    "RecentEventList",
    "RegisterWorkerRequest",
    "RegisterWorkerResponse",
    "ReleaseOutcome",
    "ReportItem",
    "ReportItemResult",
    "ReportRequest",
    "ReportResponse",
    "ScheduleList",
    "ScheduleRequest",
    "ScheduleResponse",
    "ScheduleSlotList",
    "ScheduleSlotView",
    "ScheduleSpec",
    "ScheduleView",
    "StatusCounts",
    "StepKey",
    "StepList",
    "StepReport",
    "StepView",
    "StoredError",
    "SubmitRequest",
    "SubmitResponse",
    "SuspendOutcome",
    "TreeGroup",
    "TreeNode",
    "TriggerSpec",
    "WorkerList",
    "WorkerView",
    "WorkflowList",
    "WorkflowRegistrationWire",
    "WorkflowView",
    "check_text",
    "child_execution_id",
    "describe_validation_error",
    "idempotent_execution_id",
    "is_loopback_host",
]

API_PREFIX = "/api/v1"

# Namespace of the deterministic child execution IDs (rule 5 of design.md).
CHILD_ID_NAMESPACE = uuid.UUID("6f1c2b8e-3f4a-5d6e-9a0b-1c2d3e4f5a6b")


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
    return f"{_child_id_prefix(parent_execution_id, step_key)}{index:012x}"


@functools.lru_cache(maxsize=256)
def _child_id_prefix(parent_execution_id: str, step_key: str) -> str:
    """The UUID of (parent, step key) up to its last 12 hex digits: computed once per batch,
    not once per child (a version-5 UUID is a SHA-1)."""
    base = uuid.uuid5(CHILD_ID_NAMESPACE, f"{parent_execution_id}\x00{step_key}").int
    return str(uuid.UUID(int=base & ~_NODE_MASK))[:-12]
