"""`ctx.step`: the durable primitives a workflow is made of.

Every primitive takes a step key, unique within the execution. A step whose outcome is in the
journal returns it (or raises its recorded error) without running again; otherwise it runs,
and its outcome is recorded. The first run and a replay return the same value: both go
through the same JSON round trip.

The primitives talk to the attempt that runs the execution through `StepRuntime`
(implemented by polos/worker/attempt.py), so this module has no transport of its own.
"""

from __future__ import annotations

import asyncio
import inspect
import os
import random as _random
import time
import uuid as _uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, NoReturn, Protocol

from pydantic import BaseModel

from polos import codec, protocol
from polos.model import StepKind
from polos.sdk import clock
from polos.sdk.errors import StepExecutionError
from polos.sdk.threads import run_in_thread
from polos.sdk.workflow import Workflow, get_workflow
from polos.types.types import BatchStepResult, BatchWorkflowInput
from polos.worker.tracing import AttemptTracing, TraceScope

if TYPE_CHECKING:
    from polos.sdk.client import ExecutionHandle
    from polos.sdk.context import WorkflowContext
    from polos.sdk.events import EventPayload


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
        report: protocol.StepReport,
        children: Sequence[protocol.ChildSubmission] = (),
        events: Sequence[protocol.EventPublish] = (),
    ) -> None:
        """Send a step outcome (with the children it starts and the events it publishes) to
        the server, in order."""

    def suspend(
        self,
        report: protocol.StepReport,
        children: Sequence[protocol.ChildSubmission],
        events: Sequence[protocol.EventPublish] = (),
    ) -> NoReturn:
        """Send a pending step (with its children and events) and suspend the execution until
        what it waits for happens."""

    def consumed_up_to(self, topic: str) -> int | None:
        """The highest event sequence this execution consumed on `topic` (from its journal)."""


def _error_report(slot: StepSlot, error_type: str, message: str) -> protocol.StepReport:
    return protocol.StepReport(
        key=slot.key,
        kind=slot.kind.value,
        status="failed",
        position=slot.position,
        error=protocol.StoredError(type=error_type, message=message),
        duration_seconds=time.perf_counter() - slot.started if slot.started else None,
    )


def wait_threshold_seconds() -> float:
    """Waits up to this long sleep in place (holding the slot); longer ones suspend."""
    return float(os.environ.get("POLOS_WAIT_THRESHOLD_SECONDS", "10"))


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


def _backoff(attempt: int, base_delay: float, max_delay: float) -> float:
    delay = float(min(base_delay * (2**attempt), max_delay))
    return delay * (0.5 + _random.random() / 2)  # equal jitter: spreads retries of a fan-out


class Step:
    """The durable primitives: `await ctx.step.run(...)`, `invoke_and_wait`, batches..."""

    def __init__(self, runtime: StepRuntime) -> None:
        self._rt = runtime

    @property
    def _ctx(self) -> WorkflowContext:
        return self._rt.context

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
            protocol.StepReport(
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

    # -- children ----------------------------------------------------------------------

    def _submission(
        self,
        slot: StepSlot,
        index: int,
        workflow: str | Workflow,
        payload: Any,
        *,
        initial_state: Any,
        queue: str | None,
        concurrency_key: str | None,
        run_timeout_seconds: float | None,
        wait: bool,
        idempotency_key: str | None = None,
    ) -> protocol.ChildSubmission:
        if isinstance(workflow, Workflow):
            wf: Workflow | None = workflow
            workflow_id = workflow.id
        elif isinstance(workflow, str):
            workflow_id = workflow
            wf = get_workflow(workflow)
        else:
            raise TypeError(
                f"step {slot.key!r}: workflow must be a workflow ID or a Workflow, "
                f"not {type(workflow).__name__}"
            )
        payload_text = self._storable(slot, payload, f"payload for workflow {workflow_id!r}")
        state_text = (
            None
            if initial_state is None
            else self._storable(slot, initial_state, f"initial state for workflow {workflow_id!r}")
        )
        return protocol.ChildSubmission(
            step_key=slot.key,
            index=index,
            workflow_id=workflow_id,
            payload=payload_text,
            queue_name=queue or (wf.queue_name if wf else None),
            queue_concurrency_limit=wf.queue_concurrency_limit if wf else None,
            concurrency_key=concurrency_key,
            initial_state=state_text,
            run_timeout_seconds=run_timeout_seconds,
            wait=wait,
            idempotency_key=idempotency_key,
        )

    def _handle(self, submission: protocol.ChildSubmission) -> ExecutionHandle:
        from polos.sdk.client import ExecutionHandle

        ctx = self._ctx
        if submission.idempotency_key:
            execution_id = protocol.idempotent_execution_id(
                self._rt.project_id, submission.idempotency_key
            )
        else:
            execution_id = protocol.child_execution_id(
                ctx.execution_id, submission.step_key, submission.index
            )
        return ExecutionHandle(
            id=execution_id,
            workflow_id=submission.workflow_id,
            parent_execution_id=ctx.execution_id,
            root_workflow_id=ctx.root_workflow_id,
            root_execution_id=ctx.root_execution_id,
            session_id=ctx.session_id,
            user_id=ctx.user_id,
            step_key=submission.step_key,
        )

    @staticmethod
    def _handles(entry: protocol.JournalEntry) -> list[ExecutionHandle]:
        from polos.sdk.client import ExecutionHandle

        if entry.status == "failed":
            _raise_recorded(entry)
        return [ExecutionHandle.model_validate(h) for h in codec.loads(entry.result) or []]

    def _pending(self, slot: StepSlot) -> protocol.StepReport:
        return protocol.StepReport(
            key=slot.key, kind=slot.kind.value, status="pending", position=slot.position
        )

    async def invoke(
        self,
        step_key: str,
        workflow: str | Workflow,
        payload: Any,
        initial_state: BaseModel | dict[str, Any] | None = None,
        queue: str | None = None,
        concurrency_key: str | None = None,
        run_timeout_seconds: int | None = None,
        idempotency_key: str | None = None,
    ) -> ExecutionHandle:
        """Start a child execution and go on (fire-and-forget); returns its handle.

        The child is submitted at most once whatever happens to this execution. With an
        `idempotency_key`, every start with that key in the project (by any client or step)
        is the same execution: an existing one is returned instead of starting another.
        """
        slot = self._rt.begin(step_key, StepKind.INVOKE)
        if slot.recorded is not None:
            return self._handles(slot.recorded)[0]
        submission = self._submission(
            slot,
            0,
            workflow,
            payload,
            initial_state=initial_state,
            queue=queue,
            concurrency_key=concurrency_key,
            run_timeout_seconds=run_timeout_seconds,
            wait=False,
            idempotency_key=idempotency_key,
        )
        handle = self._handle(submission)
        self._rt.record(
            protocol.StepReport(
                key=slot.key,
                kind=slot.kind.value,
                status="completed",
                position=slot.position,
                result=codec.dumps([handle.model_dump(mode="json")]),
            ),
            [submission],
        )
        return handle

    async def invoke_and_wait(
        self,
        step_key: str,
        workflow: str | Workflow,
        payload: Any,
        initial_state: BaseModel | dict[str, Any] | None = None,
        queue: str | None = None,
        concurrency_key: str | None = None,
        run_timeout_seconds: int | None = None,
    ) -> Any:
        """Start a child execution and return its result (rebuilt into its return type).

        This execution is suspended meanwhile (it holds no worker or queue slot). A child that
        fails raises `StepExecutionError` with the child's error.
        """
        slot = self._rt.begin(step_key, StepKind.INVOKE_WAIT)
        workflow_id = workflow.id if isinstance(workflow, Workflow) else workflow
        if slot.recorded is not None:
            entry = slot.recorded
            if entry.status == "failed":
                error = entry.error
                raise StepExecutionError(
                    f"Step '{step_key}': child workflow {workflow_id!r} failed: "
                    f"{error.type if error else 'Error'}: {error.message if error else ''}",
                    step_key=step_key,
                    error_type=error.type if error else None,
                )
            return _rebuild_child_result(
                workflow_id, codec.loads(entry.result), entry.output_schema
            )
        submission = self._submission(
            slot,
            0,
            workflow,
            payload,
            initial_state=initial_state,
            queue=queue,
            concurrency_key=concurrency_key,
            run_timeout_seconds=run_timeout_seconds,
            wait=True,
        )
        self._rt.suspend(self._pending(slot), [submission])

    def _batch_submissions(
        self, slot: StepSlot, workflows: Sequence[BatchWorkflowInput], wait: bool
    ) -> list[protocol.ChildSubmission]:
        submissions = []
        for index, item in enumerate(workflows):
            if not isinstance(item, BatchWorkflowInput):
                raise TypeError(
                    f"step {slot.key!r}: item {index} is a {type(item).__name__}, "
                    "expected BatchWorkflowInput"
                )
            submissions.append(
                self._submission(
                    slot,
                    index,
                    item.id,
                    item.payload,
                    initial_state=item.initial_state,
                    queue=item.queue,
                    concurrency_key=item.concurrency_key,
                    run_timeout_seconds=item.run_timeout_seconds,
                    wait=wait,
                )
            )
        return submissions

    async def batch_invoke(
        self, step_key: str, workflows: list[BatchWorkflowInput]
    ) -> list[ExecutionHandle]:
        """Start many children at once and go on; returns their handles in input order."""
        slot = self._rt.begin(step_key, StepKind.BATCH_INVOKE)
        if slot.recorded is not None:
            return self._handles(slot.recorded)
        if not workflows:
            return []
        submissions = self._batch_submissions(slot, workflows, wait=False)
        handles = [self._handle(s) for s in submissions]
        self._rt.record(
            protocol.StepReport(
                key=slot.key,
                kind=slot.kind.value,
                status="completed",
                position=slot.position,
                result=codec.dumps([h.model_dump(mode="json") for h in handles]),
            ),
            submissions,
        )
        return handles

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
                protocol.StepReport(
                    key=slot.key,
                    kind=slot.kind.value,
                    status="completed",
                    position=slot.position,
                    result="true" if value else "false",
                )
            )
        return value

    async def batch_invoke_and_wait(
        self,
        step_key: str,
        workflows: list[BatchWorkflowInput],
        fail_fast: bool = False,
        min_success: int | None = None,
    ) -> list[BatchStepResult]:
        """Start many children at once and return every outcome, in input order.

        Failures are values: a failed child is `success=False` with its error; this call does
        not raise for it. This execution is suspended meanwhile (no slot held).

        By default it waits until every child is final (retries included). With
        `fail_fast=True` it returns as soon as one child has failed for good; with
        `min_success=k`, as soon as k children succeeded, or once k can no longer be reached.
        The children not final by then are cancelled (their slots freed at once) and appear
        as `success=False` with an `ExecutionCancelledError`; the others keep their outcomes.
        What was recorded is what every replay returns.
        """
        if not isinstance(fail_fast, bool):
            raise TypeError(f"fail_fast must be a bool, not {fail_fast!r}")
        if min_success is not None and (
            isinstance(min_success, bool)
            or not isinstance(min_success, int)
            or not 1 <= min_success <= len(workflows)
        ):
            raise ValueError(
                f"min_success must be an int from 1 to the number of workflows "
                f"({len(workflows)}), not {min_success!r}"
            )
        slot = self._rt.begin(step_key, StepKind.BATCH_WAIT)
        if slot.recorded is not None:
            entry = slot.recorded
            if entry.status == "failed":
                _raise_recorded(entry)
            return [_batch_result(item) for item in codec.loads(entry.result) or []]
        if not workflows:
            return []
        submissions = self._batch_submissions(slot, workflows, wait=True)
        pending = self._pending(slot)
        pending.fail_fast = fail_fast
        pending.min_success = min_success
        self._rt.suspend(pending, submissions)

    # -- waits -------------------------------------------------------------------------

    def _recorded_none(self, slot: StepSlot) -> None:
        assert slot.recorded is not None
        if slot.recorded.status == "failed":
            _raise_recorded(slot.recorded)

    async def wait_for(
        self,
        step_key: str,
        seconds: float | None = None,
        minutes: float | None = None,
        hours: float | None = None,
        days: float | None = None,
        weeks: float | None = None,
    ) -> None:
        """Wait durably. Short waits (up to POLOS_WAIT_THRESHOLD_SECONDS, 10 s) sleep in
        place; longer ones suspend the execution (no slot held) until a durable timer fires,
        also across restarts. Returns None, on the first run and on replay."""
        slot = self._rt.begin(step_key, StepKind.WAIT)
        if slot.recorded is not None:
            return self._recorded_none(slot)
        total = (
            (seconds or 0)
            + (minutes or 0) * 60
            + (hours or 0) * 3600
            + (days or 0) * 86_400
            + (weeks or 0) * 604_800
        )
        if total <= 0:
            message = f"Step '{step_key}': a wait must be positive, not {total} s"
            self._rt.record(_error_report(slot, "ValueError", message))
            raise StepExecutionError(message, step_key=step_key, error_type="ValueError")
        await self._wait(slot, total, None)

    async def wait_until(self, step_key: str, timestamp: datetime) -> None:
        """Wait durably until `timestamp` (a naive one is UTC). A time in the past fails the
        step with StepExecutionError."""
        slot = self._rt.begin(step_key, StepKind.WAIT)
        if slot.recorded is not None:
            return self._recorded_none(slot)
        if timestamp.tzinfo is None:
            timestamp = timestamp.replace(tzinfo=UTC)
        until = timestamp.timestamp()
        total = until - clock.now()
        if total <= 0:
            message = f"Step '{step_key}': wait date {timestamp.isoformat()} is in the past"
            self._rt.record(_error_report(slot, "ValueError", message))
            raise StepExecutionError(message, step_key=step_key, error_type="ValueError")
        await self._wait(slot, total, until)

    async def _wait(self, slot: StepSlot, total: float, until: float | None) -> None:
        if total <= wait_threshold_seconds():
            await self._rt.durable()
            await asyncio.sleep(total)
            ended = datetime.fromtimestamp(clock.now(), UTC).isoformat()
            self._rt.record(
                protocol.StepReport(
                    key=slot.key,
                    kind=slot.kind.value,
                    status="completed",
                    position=slot.position,
                    result=codec.dumps({"wait_until": ended}),
                )
            )
            return
        pending = self._pending(slot)
        if until is not None:
            pending.wait_until = until
        else:
            pending.wait_seconds = total
        self._rt.suspend(pending, [])

    # -- events ------------------------------------------------------------------------

    def _event_data(self, slot: StepSlot, data: Any) -> str:
        return self._storable(slot, data if data is not None else {}, "event data")

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

    async def publish_event(
        self, step_key: str, topic: str, data: Any, event_type: str | None = None
    ) -> None:
        """Publish an event on `topic`, once (the event is stored with the step's record)."""
        slot = self._rt.begin(step_key, StepKind.PUBLISH)
        if slot.recorded is not None:
            return self._recorded_none(slot)
        event = protocol.EventPublish(
            topic=topic, event_type=event_type, data=self._event_data(slot, data)
        )
        self._rt.record(
            protocol.StepReport(
                key=slot.key,
                kind=slot.kind.value,
                status="completed",
                position=slot.position,
                result="null",
            ),
            events=[event],
        )

    async def publish_workflow_event(
        self, step_key: str, data: Any, event_type: str | None = None
    ) -> None:
        """Publish on this run's topic (the root execution's), which `stream_workflow` reads."""
        ctx = self._ctx
        topic = f"workflow/{ctx.root_workflow_id}/{ctx.root_execution_id}"
        await self.publish_event(step_key, topic, data, event_type)

    async def wait_for_event(
        self, step_key: str, topic: str, timeout: int | None = None
    ) -> EventPayload:
        """Wait (suspended, no slot held) for the next event on `topic`: the first one after
        this execution started, or after the last one it took from this topic. An event that
        arrives before the wait is registered is not lost. After `timeout` seconds the step
        fails with StepExecutionError (EventWaitTimeoutError)."""
        from polos.sdk.events import EventPayload

        slot = self._rt.begin(step_key, StepKind.WAIT_EVENT)
        if slot.recorded is not None:
            if slot.recorded.status == "failed":
                _raise_recorded(slot.recorded)
            return EventPayload.model_validate(codec.loads(slot.recorded.result))
        pending = self._pending(slot)
        pending.wait_topic = topic
        pending.wait_after_seq = self._rt.consumed_up_to(topic)
        pending.wait_timeout_seconds = timeout
        self._rt.suspend(pending, [])

    # -- suspend / resume --------------------------------------------------------------

    async def suspend(
        self,
        step_key: str,
        data: dict[str, Any] | BaseModel | None = None,
        timeout: int | None = None,
    ) -> dict[str, Any]:
        """Pause for a human (or any outside party): publishes `suspend_{step_key}` with
        `data` on this execution's topic and waits, holding no slot, for `resume_{step_key}`
        (`client.resume(...)`). Returns the resume event as a dict: its payload is in
        `["data"]`. A resume sent before the suspension registered is kept. After `timeout`
        seconds the step fails with StepExecutionError (SuspendTimeoutError)."""
        slot = self._rt.begin(step_key, StepKind.SUSPEND)
        if slot.recorded is not None:
            if slot.recorded.status == "failed":
                _raise_recorded(slot.recorded)
            value: dict[str, Any] = codec.loads(slot.recorded.result)
            return value
        ctx = self._ctx
        topic = f"workflow/{ctx.workflow_id}/{ctx.execution_id}"
        announce = protocol.EventPublish(
            topic=topic, event_type=f"suspend_{step_key}", data=self._event_data(slot, data)
        )
        pending = self._pending(slot)
        pending.wait_topic = topic
        pending.wait_event_type = f"resume_{step_key}"
        pending.wait_timeout_seconds = timeout
        self._rt.suspend(pending, [], [announce])

    async def resume(
        self,
        step_key: str,
        suspend_step_key: str,
        suspend_execution_id: str,
        suspend_workflow_id: str,
        data: Any,
    ) -> None:
        """Resume another execution's `suspend(suspend_step_key)`, once."""
        await self.publish_event(
            step_key,
            f"workflow/{suspend_workflow_id}/{suspend_execution_id}",
            data,
            event_type=f"resume_{suspend_step_key}",
        )

    # -- tracing -----------------------------------------------------------------------

    def trace(self, name: str, attributes: dict[str, Any] | None = None) -> TraceScope:
        """A custom OpenTelemetry span around a block: `with ctx.step.trace("parse") as
        span:` (or `async with`). Not durable and takes no step key: a replay that runs the
        block again opens it again. It is a child of the current span (the step whose body
        runs it, else the execution's) and current inside the block; an exception marks it
        ERROR and is re-raised. With tracing off (docs/observability.md) the span is a no-op
        that accepts `set_attribute`, `add_event`, ... and records nothing."""
        return TraceScope(self._rt.tracing, name, attributes)


def _rebuild_child_result(workflow_id: str, value: Any, schema: str | None) -> Any:
    wf = get_workflow(workflow_id)
    if wf is not None:
        return wf.decode_result(value, schema)
    return codec.rebuild(value, None, schema)


def _batch_result(item: dict[str, Any]) -> BatchStepResult:
    error = item.get("error")
    success = bool(item.get("success"))
    return BatchStepResult(
        workflow_id=item["workflow_id"],
        execution_id=item["execution_id"],
        success=success,
        result=_rebuild_child_result(
            item["workflow_id"], item.get("result"), item.get("output_schema")
        )
        if success
        else None,
        error=error.get("message") if isinstance(error, dict) else error,
        error_type=error.get("type") if isinstance(error, dict) else None,
    )
