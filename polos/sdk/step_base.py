"""What every group of `ctx.step` primitives shares: the step slot, the runtime interface to the
attempt, and the base class holding that runtime.

`Step` (polos/sdk/step.py) is assembled from one mixin per group of primitives (children,
waits, events); each mixin derives from `_StepBase` below, so the groups see the same runtime
and helpers without importing each other. `StepSlot`, `StepRuntime` and `oversize` are
re-exported by polos/sdk/step.py, where the rest of the code imports them from.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NoReturn, Protocol

from pydantic import ValidationError

from polos import codec, protocol
from polos.model import StepKind
from polos.sdk.errors import StepExecutionError
from polos.worker import reports
from polos.worker.tracing import AttemptTracing

if TYPE_CHECKING:
    from polos.sdk.context import WorkflowContext


@dataclass(slots=True)
class StepSlot:
    """A step key taken by a call: its position in the execution and its record, if any."""

    key: str
    kind: StepKind
    position: int
    recorded: protocol.JournalEntry | None
    # When the step's body started (time.perf_counter()), for its duration; 0: not yet.
    started: float = 0.0


class StepRuntime(Protocol):
    """What the step primitives need from the attempt running the execution."""

    @property
    def context(self) -> WorkflowContext: ...

    @property
    def max_value_bytes(self) -> int:
        """The largest value (bytes of JSON) the server stores."""

    @property
    def project_id(self) -> str: ...

    @property
    def tracing(self) -> AttemptTracing | None:
        """The spans of this attempt; None when tracing is off."""

    def begin(self, step_key: str, kind: StepKind) -> StepSlot:
        """Take a step key (DuplicateStepKeyError if taken) and return its record, if any."""

    def patched(self, change_id: str) -> tuple[StepSlot, bool, bool]:
        """The `patched` marker of `change_id`: (slot, new path?, must be recorded?)."""

    async def durable(self) -> None:
        """Wait until every earlier record of this execution is stored."""

    def record(
        self,
        report: reports.StepReport,
        children: Sequence[protocol.ChildSubmission] = (),
        events: Sequence[protocol.EventPublish] = (),
    ) -> None:
        """Send a step outcome (with the children it starts and the events it publishes) to
        the server, in order."""

    def suspend(
        self,
        report: reports.StepReport,
        children: Sequence[protocol.ChildSubmission],
        events: Sequence[protocol.EventPublish] = (),
    ) -> NoReturn:
        """Send a pending step (with its children and events) and suspend the execution until
        what it waits for happens."""

    def consumed_up_to(self, topic: str) -> int | None:
        """The highest event sequence this execution consumed on `topic` (from its journal)."""


def _error_report(slot: StepSlot, error_type: str, message: str) -> reports.StepReport:
    return reports.StepReport(
        key=slot.key,
        kind=slot.kind.value,
        status="failed",
        position=slot.position,
        error=reports.StoredError(error_type, message),
        duration_seconds=time.perf_counter() - slot.started if slot.started else None,
    )


def oversize(text: str, limit: int) -> int | None:
    """The size in bytes of `text` when it is over `limit`, else None (cheap when small)."""
    if len(text) * 4 <= limit:
        return None
    size = len(text.encode("utf-8"))
    return size if size > limit else None


def _raise_recorded(entry: protocol.JournalEntry) -> NoReturn:
    error = entry.error
    message = error.message if error else f"step {entry.key!r} failed"
    raise StepExecutionError(message, step_key=entry.key, error_type=error.type if error else None)


class _StepBase:
    """The runtime and the helpers the groups of primitives share (not public: use `Step`)."""

    def __init__(self, runtime: StepRuntime) -> None:
        self._rt = runtime

    @property
    def _ctx(self) -> WorkflowContext:
        return self._rt.context

    def _pending(self, slot: StepSlot) -> reports.StepReport:
        return reports.StepReport(
            key=slot.key, kind=slot.kind.value, status="pending", position=slot.position
        )

    def _suspend(
        self,
        slot: StepSlot,
        pending: reports.StepReport,
        children: Sequence[protocol.ChildSubmission] = (),
        events: Sequence[protocol.EventPublish] = (),
    ) -> NoReturn:
        self._check_pending(slot, pending)
        self._rt.suspend(pending, children, events)

    @staticmethod
    def _check_pending(slot: StepSlot, pending: reports.StepReport) -> None:
        """What the user gave a pending step (a topic, a timeout, a date) checked with the
        server's rules: a bad value fails this call with StepExecutionError (ValueError),
        where a refused report would fail the request and other executions' records in it."""
        try:
            # The fields the report will carry, validated as the server will.
            protocol.StepReport.model_validate(reports.step_fields(pending))
        except ValidationError as exc:
            raise StepExecutionError(
                f"Step '{slot.key}': {protocol.describe_validation_error(exc)}",
                step_key=slot.key,
                error_type="ValueError",
            ) from None

    def _recorded_none(self, slot: StepSlot) -> None:
        assert slot.recorded is not None
        if slot.recorded.status == "failed":
            _raise_recorded(slot.recorded)

    def _storable(self, slot: StepSlot, value: Any, what: str) -> str:
        """`value` as JSON text the server stores, or StepExecutionError naming the step:
        EncodeError for what JSON cannot carry, ValueTooLargeError over the size limit."""
        try:
            text = codec.dumps(value)
        except codec.EncodeError as exc:
            raise StepExecutionError(
                f"Step '{slot.key}': the {what} cannot be stored: {exc}",
                step_key=slot.key,
                error_type="EncodeError",
            ) from exc
        size = oversize(text, self._rt.max_value_bytes)
        if size is not None:
            raise StepExecutionError(
                f"Step '{slot.key}': the {what} is {size} bytes of JSON; the limit is "
                f"{self._rt.max_value_bytes}",
                step_key=slot.key,
                error_type="ValueTooLargeError",
            )
        return text
