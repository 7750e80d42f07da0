"""One run of one claimed execution: replay from the journal, run new steps, report.

The attempt implements `StepRuntime` for `ctx.step`. Records go to the reporter at once; a
new step body first waits until the earlier records of this attempt are acknowledged
(`durable`), so no side effect is ever based on a result the server did not store. Waiting
steps (children) suspend the attempt: the pending step, its children and the suspension travel
in one report, which the server applies in one transaction (design.md rules 4 and 5).

Records are the worker's plain dataclasses (polos/worker/reports.py); the server validates
them as the pydantic report models when the request arrives.

If the server refuses a report (the attempt lost its lease, or the server re-queued the
execution to replay a step it resolved itself), the attempt is abandoned without a word: some
other attempt owns the execution now.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from typing import Any, NoReturn, cast

from polos import codec, protocol
from polos.model import StepKind
from polos.sdk.context import WorkflowContext, set_current_attempt
from polos.sdk.errors import (
    ClientCallInWorkflowError,
    DuplicateStepKeyError,
    InvalidStepKeyError,
    PayloadValidationError,
    StepExecutionError,
    ValueTooLargeError,
    WorkflowDivergenceError,
)
from polos.sdk.hooks import HookAction, HookContext, HookResult
from polos.sdk.step import Step, StepSlot, oversize
from polos.sdk.step_base import StepRuntime
from polos.sdk.workflow import Workflow
from polos.worker import reports
from polos.worker.journal import Journal
from polos.worker.reporter import Reporter
from polos.worker.tracing import AttemptTracing, Tracing

log = logging.getLogger("polos.worker.attempt")

# Failures a retry of the whole workflow cannot fix.
_NOT_RETRYABLE = (
    ValueTooLargeError,
    StepExecutionError,
    PayloadValidationError,
    DuplicateStepKeyError,
    InvalidStepKeyError,
    ClientCallInWorkflowError,
    WorkflowDivergenceError,
)


class _Suspended(BaseException):
    """Unwinds the workflow function when it must wait. A BaseException, so that user code's
    `except Exception` does not swallow it."""

    def __init__(self, step_key: str) -> None:
        super().__init__(step_key)
        self.step_key = step_key


class AttemptOver(BaseException):
    """Raised by a step called after its attempt ended (e.g. from a task the workflow left
    running behind it)."""


class _EndedRuntime:
    """`ctx.step`'s runtime once its attempt is over: every use raises AttemptOver."""

    def __init__(self, execution_id: str) -> None:
        self._execution_id = execution_id

    def __getattr__(self, name: str) -> NoReturn:
        raise AttemptOver(f"execution {self._execution_id}: step used after the attempt ended")


class Attempt:
    def __init__(
        self,
        execution: protocol.ClaimedExecutionWire,
        workflow: Workflow,
        reporter: Reporter,
        deployment_id: str | None,
        on_done: Callable[[Attempt], None],
        on_released: Callable[[Attempt], None],
        max_value_bytes: int = 2 * 1024 * 1024,
        tracing: Tracing | None = None,
    ) -> None:
        self._on_released = on_released
        self.execution = execution
        self._max_value_bytes = max_value_bytes
        self.workflow = workflow
        self._reporter = reporter
        self._on_done = on_done
        self._journal = Journal(workflow.id, execution.id, execution.journal)
        self._acks: list[asyncio.Future[protocol.ReportItemResult]] = []
        self._suspension: (
            tuple[reports.StepReport, list[protocol.ChildSubmission], list[protocol.EventPublish]]
            | None
        ) = None
        self._over = False
        self._abandoned = False
        self.task: asyncio.Task[None] | None = None
        self._failure_cause: BaseException | None = None
        # None when tracing is off: then nothing below does any tracing work.
        self.tracing: AttemptTracing | None = (
            tracing.attempt(execution, workflow.id) if tracing is not None else None
        )
        initial_state = codec.loads(execution.initial_state) if execution.initial_state else None
        self._context = WorkflowContext(
            workflow_id=workflow.id,
            execution_id=execution.id,
            deployment_id=execution.deployment_id or deployment_id,
            session_id=execution.session_id,
            user_id=execution.user_id,
            parent_execution_id=execution.parent_execution_id,
            root_execution_id=execution.root_execution_id,
            root_workflow_id=execution.root_workflow_id,
            retry_count=execution.retry_count,
            created_at=execution.created_at,
            state_schema=workflow.state_schema,
            initial_state=initial_state,
        )
        self._context.step = Step(self)

    @property
    def id(self) -> str:
        return self.execution.id

    def start(self) -> None:
        self.task = asyncio.create_task(self._run(), name=f"polos-execution-{self.id}")
        self.task.add_done_callback(self._task_done)

    def _task_done(self, _task: asyncio.Task[None]) -> None:
        self._on_done(self)
        # The context's `step` refers back to this attempt: a reference cycle, which only
        # the cyclic collector frees, and which the worker's collector settings (gc_tuning)
        # visit rarely. Broken here, the attempt goes as soon as the worker drops it, with
        # its payload, journal and (for a parent) the children it submitted: a 100,000-child
        # fan-out kept ~300 MiB of finished attempts otherwise (docs/performance.md). A step
        # called later (from a task the workflow left behind) still raises AttemptOver.
        self._context.step = Step(cast(StepRuntime, _EndedRuntime(self.id)))

    def abandon(self, reason: str) -> None:
        """Stop this attempt without reporting anything more."""
        if self._abandoned:
            return
        self._abandoned = True
        self._over = True
        log.info("abandoning execution %s attempt %d: %s", self.id, self.execution.attempt, reason)
        if self.task is not None and not self.task.done():
            self.task.cancel()

    # -- StepRuntime -------------------------------------------------------------------

    @property
    def context(self) -> WorkflowContext:
        return self._context

    @property
    def max_value_bytes(self) -> int:
        return self._max_value_bytes

    @property
    def project_id(self) -> str:
        return self.execution.project_id

    def begin(self, step_key: str, kind: StepKind) -> StepSlot:
        if self._over:
            raise AttemptOver(
                f"execution {self.id}: step {step_key!r} called after the attempt ended"
            )
        slot = self._journal.take(step_key, kind)
        if self.tracing is not None and slot.recorded is None:
            self.tracing.step_begun(slot)
        return slot

    def patched(self, change_id: str) -> tuple[StepSlot, bool, bool]:
        if self._over:
            raise AttemptOver(f"execution {self.id}: patched called after the attempt ended")
        return self._journal.patched(change_id)

    async def durable(self) -> None:
        while self._acks:
            pending = self._acks
            self._acks = []
            await asyncio.gather(*pending, return_exceptions=True)
        if self._abandoned:
            raise AttemptOver(f"execution {self.id}: attempt abandoned")

    def record(
        self,
        report: reports.StepReport,
        children: Sequence[protocol.ChildSubmission] = (),
        events: Sequence[protocol.EventPublish] = (),
    ) -> None:
        if self.tracing is not None:
            self.tracing.step_recorded(report, children)
        self._send(
            reports.ReportItem(
                self.id, self.execution.attempt, [report], list(children), list(events)
            )
        )

    def suspend(
        self,
        report: reports.StepReport,
        children: Sequence[protocol.ChildSubmission],
        events: Sequence[protocol.EventPublish] = (),
    ) -> NoReturn:
        if self.tracing is not None:
            self.tracing.step_recorded(report, children)
        self._suspension = (report, list(children), list(events))
        raise _Suspended(report.key)

    def consumed_up_to(self, topic: str) -> int | None:
        return self._journal.consumed_up_to(topic)

    # -- running -----------------------------------------------------------------------

    def _send(self, item: reports.ReportItem) -> asyncio.Future[protocol.ReportItemResult]:
        fut = self._reporter.submit(item)
        fut.add_done_callback(self._check_ack)
        self._acks.append(fut)
        return fut

    def _check_ack(self, fut: asyncio.Future[protocol.ReportItemResult]) -> None:
        if fut.cancelled():
            return
        exc = fut.exception()
        if exc is not None:
            self.abandon(f"report failed: {exc}")
            return
        result = fut.result()
        if result.status != "ok":
            self.abandon(f"server answered {result.status}: {result.detail or ''}")

    async def _run(self) -> None:
        token = set_current_attempt(self)
        if self.tracing is not None:
            self._context.otel_traceparent = self.tracing.parent_traceparent
            self._context.otel_span_id = self.tracing.start()
        outcome: reports.Outcome | None = None
        try:
            outcome = await self._execute()
        finally:
            set_current_attempt(None)
            del token
            if self.tracing is not None:
                self.tracing.finish(outcome, self._failure_cause, self._abandoned)
        self._over = True
        if outcome is None or self._abandoned:
            return
        steps: list[reports.StepReport] = []
        children: list[protocol.ChildSubmission] = []
        events: list[protocol.EventPublish] = []
        if self._suspension is not None and isinstance(outcome, reports.SuspendOutcome):
            steps.append(self._suspension[0])
            children, events = self._suspension[1], self._suspension[2]
        self._send(
            reports.ReportItem(self.id, self.execution.attempt, steps, children, events, outcome)
        )
        self._on_released(self)  # user code is over: the worker may use the slot again
        # The task ends with the acknowledgement: a refusal is still logged against it.
        pending, self._acks = self._acks, []
        await asyncio.gather(*pending, return_exceptions=True)

    def _state_text(self) -> str | None:
        state = self._context.state
        if state is None:
            return None
        try:
            text = codec.dumps(state)
        except codec.EncodeError:
            log.exception("state of execution %s cannot be stored", self.id)
            return None
        if oversize(text, self._max_value_bytes) is not None:
            log.error("state of execution %s is over the size limit; not saved", self.id)
            return None
        return text

    async def _execute(self) -> reports.Outcome | None:
        wf = self.workflow
        try:
            payload = wf.decode_payload(codec.loads(self.execution.payload))
            if wf.on_start:
                payload = await self._run_hooks("on_start", wf.on_start, payload, None)
            if wf.has_payload_param:
                result = await wf.func(self._context, payload)
            else:
                result = await wf.func(self._context)
            if wf.on_end:
                result = await self._run_hooks("on_end", wf.on_end, payload, result)
        except _Suspended as suspended:
            if self._journal.divergence is not None:
                return self._failure(self._journal.divergence, retryable=False)
            return reports.SuspendOutcome(
                step_key=suspended.step_key, final_state=self._state_text()
            )
        except (asyncio.CancelledError, AttemptOver):
            if self._abandoned:
                return None
            raise
        except Exception as exc:
            # A divergence fails the execution even when user code caught it.
            failure = self._journal.divergence or exc
            return self._failure(failure, retryable=not isinstance(failure, _NOT_RETRYABLE))
        if self._journal.divergence is not None:
            return self._failure(self._journal.divergence, retryable=False)
        try:
            encoded = codec.encode(result)
        except codec.EncodeError as exc:
            return self._failure(
                codec.EncodeError(f"the result of workflow {wf.id!r} cannot be stored: {exc}"),
                retryable=False,
            )
        size = oversize(encoded.text, self._max_value_bytes)
        if size is not None:
            return self._failure(
                ValueTooLargeError(
                    f"the result of workflow {wf.id!r} is {size} bytes of JSON; the limit is "
                    f"{self._max_value_bytes}"
                ),
                retryable=False,
            )
        return reports.CompleteOutcome(
            result=encoded.text, output_schema=encoded.schema, final_state=self._state_text()
        )

    async def _run_hooks(
        self, phase: str, hooks: list[Callable[..., Any]], payload: Any, output: Any
    ) -> Any:
        """Run hooks as durable steps; return the payload (on_start) or the result (on_end),
        replaced only where a hook returned a modification."""
        for i, fn in enumerate(hooks):
            name = getattr(fn, "__name__", f"hook_{i}")
            hook_context = HookContext(
                workflow_id=self.workflow.id,
                session_id=self._context.session_id,
                user_id=self._context.user_id,
                current_payload=codec.to_json_value(payload),
                current_output=codec.to_json_value(output),
            )
            answer = await self._context.step.run(
                f"{phase}.{name}.{i}", fn, self._context, hook_context
            )
            if not isinstance(answer, HookResult):
                raise StepExecutionError(
                    f"{phase} hook {name!r} returned {type(answer).__name__}, not a HookResult",
                    step_key=f"{phase}.{name}.{i}",
                )
            if answer.action is HookAction.FAIL:
                raise StepExecutionError(
                    answer.error_message or f"{phase} hook {name!r} failed",
                    step_key=f"{phase}.{name}.{i}",
                )
            if phase == "on_start" and answer.modified_payload is not None:
                payload = self.workflow.decode_payload(answer.modified_payload)
            if phase == "on_end" and answer.modified_output is not None:
                output = answer.modified_output
        return payload if phase == "on_start" else output

    def _failure(self, exc: BaseException, retryable: bool) -> reports.FailOutcome:
        self._failure_cause = exc
        info = codec.error_info(exc)
        if retryable:
            log.warning(
                "execution %s of %r failed (will be retried if retries remain): %s: %s",
                self.id,
                self.workflow.id,
                info["type"],
                info["message"],
                exc_info=exc,
            )
        elif isinstance(exc, WorkflowDivergenceError):
            log.error("execution %s of %r failed: %s", self.id, self.workflow.id, exc)
        return reports.FailOutcome(
            error=reports.StoredError(info["type"], info["message"]),
            retryable=retryable,
            final_state=self._state_text(),
        )
