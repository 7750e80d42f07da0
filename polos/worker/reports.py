"""What a worker reports about its attempts, as plain records, and the one encoder that writes a
report request's JSON body from them.

The records mirror the report models of polos/protocol_workers.py field for field (same names,
same meanings): `StepReport`, `ReportItem` and the four outcomes. Those pydantic models stay the
server's contract: it validates every report body into `protocol.ReportRequest`. The worker
builds its records many times per execution (a record per step, an item per record, a merge
per batch), and building and dumping them as pydantic models was ~17 % of a worker's CPU in a
fan-out: here they are slotted dataclasses, checked once, by the server.

What users pass in is still checked where they pass it, so that a bad value fails their call
rather than the whole report request (with other executions' items in it): step keys by the
journal (polos/worker/journal.py), child submissions and published events by being built as
`protocol.ChildSubmission` / `protocol.EventPublish`, which records carry as they are. The rest
of a record is written by the worker itself.

`encode_request` leaves out every field that holds its default (None, 0 for a position, False
for `wait` or `fail_fast`, True for `retryable`): the server fills the same defaults in.
tests/unit/test_reports.py checks that a body validates into the request the pydantic
models would have made, and that these records have the models' fields.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

import orjson

from polos import protocol

StepStatus = Literal["completed", "failed", "pending"]


@dataclass(slots=True)
class StoredError:
    """An error as stored: the exception's type name and its whole message."""

    type: str
    message: str


@dataclass(slots=True, kw_only=True)
class StepReport:
    """A step's outcome (or, when pending, what it waits for): `protocol.StepReport`."""

    key: str
    kind: str
    status: StepStatus
    position: int = 0
    result: str | None = None  # JSON text
    error: StoredError | None = None
    output_schema: str | None = None
    wait_seconds: float | None = None
    wait_until: float | None = None
    wait_topic: str | None = None
    wait_event_type: str | None = None
    wait_after_seq: int | None = None
    wait_timeout_seconds: float | None = None
    fail_fast: bool = False
    min_success: int | None = None
    duration_seconds: float | None = None


# The outcomes' `type` is their class's (a ClassVar, not a field): it cannot disagree with it.


@dataclass(slots=True, kw_only=True)
class CompleteOutcome:
    type: ClassVar[str] = "complete"
    result: str  # JSON text
    output_schema: str | None = None
    final_state: str | None = None


@dataclass(slots=True, kw_only=True)
class FailOutcome:
    type: ClassVar[str] = "fail"
    error: StoredError
    retryable: bool = True
    final_state: str | None = None


@dataclass(slots=True, kw_only=True)
class SuspendOutcome:
    type: ClassVar[str] = "suspend"
    step_key: str
    final_state: str | None = None


@dataclass(slots=True)
class ReleaseOutcome:
    """The worker gives the execution back unfinished (graceful shutdown)."""

    type: ClassVar[str] = "release"


Outcome = CompleteOutcome | FailOutcome | SuspendOutcome | ReleaseOutcome


@dataclass(slots=True)
class ReportItem:
    """What one attempt of one execution reports in one request: `protocol.ReportItem`."""

    execution_id: str
    attempt: int
    steps: list[StepReport] = field(default_factory=list)
    children: list[protocol.ChildSubmission] = field(default_factory=list)
    # Events published by the steps of this item (recorded with them: published once).
    events: list[protocol.EventPublish] = field(default_factory=list)
    outcome: Outcome | None = None


# --------------------------------------------------------------------------- the encoder


def encode_request(items: Sequence[ReportItem]) -> bytes:
    """The JSON body of a report request (`protocol.ReportRequest`) carrying `items`."""
    return orjson.dumps({"items": [_item(item) for item in items]})


def _item(item: ReportItem) -> dict[str, Any]:
    out: dict[str, Any] = {"execution_id": item.execution_id, "attempt": item.attempt}
    if item.steps:
        out["steps"] = [step_fields(s) for s in item.steps]
    if item.children:
        out["children"] = [_child(c) for c in item.children]
    if item.events:
        out["events"] = [_event(e) for e in item.events]
    if item.outcome is not None:
        out["outcome"] = _outcome(item.outcome)
    return out


def step_fields(s: StepReport) -> dict[str, Any]:
    """`s` as its wire fields (those at their default left out)."""
    out: dict[str, Any] = {"key": s.key, "kind": s.kind, "status": s.status}
    if s.position:
        out["position"] = s.position
    if s.result is not None:
        out["result"] = s.result
    if s.error is not None:
        out["error"] = s.error  # orjson writes a dataclass as its fields
    if s.output_schema is not None:
        out["output_schema"] = s.output_schema
    if s.wait_seconds is not None:
        out["wait_seconds"] = s.wait_seconds
    if s.wait_until is not None:
        out["wait_until"] = s.wait_until
    if s.wait_topic is not None:
        out["wait_topic"] = s.wait_topic
    if s.wait_event_type is not None:
        out["wait_event_type"] = s.wait_event_type
    if s.wait_after_seq is not None:
        out["wait_after_seq"] = s.wait_after_seq
    if s.wait_timeout_seconds is not None:
        out["wait_timeout_seconds"] = s.wait_timeout_seconds
    if s.fail_fast:
        out["fail_fast"] = True
    if s.min_success is not None:
        out["min_success"] = s.min_success
    if s.duration_seconds is not None:
        out["duration_seconds"] = s.duration_seconds
    return out


def _child(c: protocol.ChildSubmission) -> dict[str, Any]:
    # Read field by field (validated when the user's call built it): a model_dump costs more.
    out: dict[str, Any] = {
        "step_key": c.step_key,
        "index": c.index,
        "workflow_id": c.workflow_id,
        "payload": c.payload,
    }
    if c.queue_name is not None:
        out["queue_name"] = c.queue_name
    if c.queue_concurrency_limit is not None:
        out["queue_concurrency_limit"] = c.queue_concurrency_limit
    if c.concurrency_key is not None:
        out["concurrency_key"] = c.concurrency_key
    if c.initial_state is not None:
        out["initial_state"] = c.initial_state
    if c.run_timeout_seconds is not None:
        out["run_timeout_seconds"] = c.run_timeout_seconds
    if c.wait:
        out["wait"] = True
    if c.idempotency_key is not None:
        out["idempotency_key"] = c.idempotency_key
    return out


def _event(e: protocol.EventPublish) -> dict[str, Any]:
    out: dict[str, Any] = {"topic": e.topic, "data": e.data}
    if e.event_type is not None:
        out["event_type"] = e.event_type
    return out


def _outcome(o: Outcome) -> dict[str, Any]:
    out: dict[str, Any] = {"type": o.type}
    if isinstance(o, CompleteOutcome):
        out["result"] = o.result
        if o.output_schema is not None:
            out["output_schema"] = o.output_schema
    elif isinstance(o, FailOutcome):
        out["error"] = o.error
        if not o.retryable:
            out["retryable"] = False
    elif isinstance(o, SuspendOutcome):
        out["step_key"] = o.step_key
    if not isinstance(o, ReleaseOutcome) and o.final_state is not None:
        out["final_state"] = o.final_state
    return out
