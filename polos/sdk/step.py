"""`ctx.step`: the durable primitives a workflow is made of.

Every primitive takes a step key, unique within the execution. A step whose outcome is in the
journal returns it (or raises its recorded error) without running again; otherwise it runs,
and its outcome is recorded. The first run and a replay return the same value: both go
through the same JSON round trip.

The primitives talk to the attempt that runs the execution through `StepRuntime`
(implemented by polos/worker/attempt.py), so this module has no transport of its own.

This module is the public entry point: `Step` and the core primitives (`run`, `uuid`, `now`,
`random`, `patched`, `trace`). The other groups are mixins `Step` inherits, one module each,
so that no module grows past a few hundred lines:

- polos/sdk/step_base.py: `StepSlot`, `StepRuntime` and the helpers every group shares;
- polos/sdk/step_children.py: `invoke`, `invoke_and_wait`, `batch_invoke`,
  `batch_invoke_and_wait`;
- polos/sdk/step_waits.py: `wait_for`, `wait_until`;
- polos/sdk/step_events.py: `publish_event`, `publish_workflow_event`, `wait_for_event`,
  `suspend`, `resume`.

The names the rest of the code imports from here (`StepSlot`, `StepRuntime`, `oversize`,
`wait_threshold_seconds`) are re-exported, so `from polos.sdk.step import ...` is unchanged.
"""

from __future__ import annotations

import asyncio
import inspect
import random as _random
import time
import uuid as _uuid
from collections.abc import Callable
from typing import Any

from pydantic import BaseModel

from polos import codec, protocol
from polos.model import StepKind
from polos.sdk import clock
from polos.sdk.errors import StepExecutionError
from polos.sdk.step_base import (
    StepRuntime,
    StepSlot,
    _error_report,
    _raise_recorded,
    oversize,
)
from polos.sdk.step_children import _ChildSteps
from polos.sdk.step_events import _EventSteps
from polos.sdk.step_waits import _WaitSteps, wait_threshold_seconds
from polos.sdk.threads import run_in_thread
from polos.worker import reports
from polos.worker.tracing import TraceScope

# Re-exported: the worker, the context and the tests import these from polos.sdk.step.
__all__ = ["Step", "StepRuntime", "StepSlot", "oversize", "wait_threshold_seconds"]


def _backoff(attempt: int, base_delay: float, max_delay: float) -> float:
    delay = float(min(base_delay * (2**attempt), max_delay))
    return delay * (0.5 + _random.random() / 2)  # equal jitter: spreads retries of a fan-out


class Step(_ChildSteps, _WaitSteps, _EventSteps):
    """The durable primitives: `await ctx.step.run(...)`, `invoke_and_wait`, batches..."""

    # __init__ (the runtime) and _ctx are _StepBase's, shared with the mixins.

    # -- run ---------------------------------------------------------------------------

    async def run(
        self,
        step_key: str,
        func: Callable[..., Any],
        *args: Any,
        max_retries: int = 2,
        base_delay: float = 1.0,
        max_delay: float = 10.0,
        **kwargs: Any,
    ) -> Any:
        """Run `func(*args, **kwargs)` once and record its result.

        A coroutine function is awaited; a plain function runs in a thread. A failure is
        retried `max_retries` times with exponential backoff and jitter (no sleep after the
        last attempt); then the step is recorded as failed and `StepExecutionError` is raised,
        on this run and on every replay.
        """
        slot = self._rt.begin(step_key, StepKind.RUN)
        if slot.recorded is not None:
            return self._replay_value(slot.recorded)
        await self._rt.durable()
        slot.started = time.perf_counter()
        attempts = max(0, int(max_retries)) + 1
        for attempt in range(attempts):
            try:
                if inspect.iscoroutinefunction(func):
                    value = await func(*args, **kwargs)
                else:
                    value = await run_in_thread(func, *args, **kwargs)
                    if inspect.isawaitable(value):
                        value = await value
                break
            except Exception as exc:
                if attempt == attempts - 1:
                    message = (
                        f"Step '{step_key}' failed after {attempts} attempt(s): "
                        f"{type(exc).__name__}: {exc}"
                    )
                    self._rt.record(_error_report(slot, type(exc).__name__, message))
                    raise StepExecutionError(
                        message, step_key=step_key, error_type=type(exc).__name__
                    ) from exc
                await asyncio.sleep(_backoff(attempt, base_delay, max_delay))
        return self._record_value(slot, value)

    def _record_value(self, slot: StepSlot, value: Any) -> Any:
        try:
            encoded = codec.encode(value)
        except codec.EncodeError as exc:
            message = f"Step '{slot.key}' returned a value that cannot be stored: {exc}"
            self._rt.record(_error_report(slot, "EncodeError", message))
            raise StepExecutionError(message, step_key=slot.key, error_type="EncodeError") from exc
        size = oversize(encoded.text, self._rt.max_value_bytes)
        if size is not None:
            message = (
                f"Step '{slot.key}' returned {size} bytes of JSON; the limit is "
                f"{self._rt.max_value_bytes}"
            )
            self._rt.record(_error_report(slot, "ValueTooLargeError", message))
            raise StepExecutionError(message, step_key=slot.key, error_type="ValueTooLargeError")
        self._rt.record(
            reports.StepReport(
                key=slot.key,
                kind=slot.kind.value,
                status="completed",
                position=slot.position,
                result=encoded.text,
                output_schema=encoded.schema,
                duration_seconds=time.perf_counter() - slot.started if slot.started else None,
            )
        )
        # Return what a replay will return: the value after its JSON round trip, rebuilt into
        # the model it was (by its own class, which a replay finds by name).
        known = type(value) if isinstance(value, BaseModel) else None
        return codec.decode(encoded.text, known, encoded.schema)

    @staticmethod
    def _replay_value(entry: protocol.JournalEntry) -> Any:
        if entry.status == "failed":
            _raise_recorded(entry)
        return codec.decode(entry.result, None, entry.output_schema)

    # -- recorded values ---------------------------------------------------------------

    async def uuid(self, step_key: str) -> str:
        """A random UUID (string), the same on every replay."""
        slot = self._rt.begin(step_key, StepKind.UUID)
        if slot.recorded is not None:
            return str(self._replay_value(slot.recorded))
        return str(self._record_value(slot, str(_uuid.uuid4())))

    async def now(self, step_key: str) -> int:
        """Milliseconds since the epoch, the same on every replay."""
        slot = self._rt.begin(step_key, StepKind.NOW)
        if slot.recorded is not None:
            return int(self._replay_value(slot.recorded))
        return int(self._record_value(slot, int(clock.now() * 1000)))

    async def random(self, step_key: str) -> float:
        """A float in [0, 1), the same on every replay."""
        slot = self._rt.begin(step_key, StepKind.RANDOM)
        if slot.recorded is not None:
            return float(self._replay_value(slot.recorded))
        return float(self._record_value(slot, _random.random()))

    # -- code changes ------------------------------------------------------------------

    async def patched(self, change_id: str) -> bool:
        """Whether this execution takes the new path of a code change.

        True for executions that reach this call for the first time with the new code, False
        for executions recorded by the older code past this point (they replay the old path).
        The answer is recorded, so it stays the same on every replay. Typical use, when
        inserting a step into a workflow that has executions in flight:

            if await ctx.step.patched("add-fraud-check"):
                await ctx.step.run("fraud_check", check, order)

        The marker takes no place in the step order, so the old executions' replays still
        match their journals.
        """
        slot, value, new = self._rt.patched(change_id)
        if new:
            self._rt.record(
                reports.StepReport(
                    key=slot.key,
                    kind=slot.kind.value,
                    status="completed",
                    position=slot.position,
                    result="true" if value else "false",
                )
            )
        return value

    # -- tracing -----------------------------------------------------------------------

    def trace(self, name: str, attributes: dict[str, Any] | None = None) -> TraceScope:
        """A custom OpenTelemetry span around a block: `with ctx.step.trace("parse") as
        span:` (or `async with`). Not durable and takes no step key: a replay that runs the
        block again opens it again. It is a child of the current span (the step whose body
        runs it, else the execution's) and current inside the block; an exception marks it
        ERROR and is re-raised. With tracing off (docs/observability.md) the span is a no-op
        that accepts `set_attribute`, `add_event`, ... and records nothing."""
        return TraceScope(self._rt.tracing, name, attributes)
