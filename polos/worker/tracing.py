"""OpenTelemetry tracing of executions and steps (docs/observability.md).

Off unless `OTEL_EXPORTER_OTLP_ENDPOINT` (or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`) is set, or
a tracer provider is given to the `Worker`; then the worker exports, over OTLP (HTTP/protobuf),
one span per execution attempt (`workflow.{workflow_id}`) and one per step it runs
(`step.{step_key}`), plus the custom spans of `ctx.step.trace(name)`. OpenTelemetry is an
optional dependency (`pip install 'polos[otel]'`): this module imports it only when tracing is
on, so a worker without it pays nothing.

One fan-out is one trace, without anything stored or sent: the trace ID of every execution is
its root execution's UUID (128 bits, as the upstream SDK has it), and the span ID of a step is
derived from (execution ID, step key). A child knows its parent execution and the step that
started it, so it can name its parent span (the step's) itself, in whatever worker it runs.
Deterministic IDs need the provider's ID generator to take them: the worker wraps it (a plain
delegate unless one of its own spans is being started).
"""

from __future__ import annotations

import asyncio
import contextvars
import hashlib
import logging
import os
import uuid
from collections.abc import Mapping, Sequence
from importlib import metadata
from types import TracebackType
from typing import TYPE_CHECKING, Any

from polos import protocol
from polos.worker import reports

if TYPE_CHECKING:
    from opentelemetry.context import Context
    from opentelemetry.sdk.trace.id_generator import IdGenerator, RandomIdGenerator
    from opentelemetry.trace import Span, Tracer, TracerProvider

    from polos.sdk.step import StepSlot

log = logging.getLogger("polos.worker.tracing")

ENDPOINT_VARIABLES = ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT")
DEFAULT_SERVICE_NAME = "polos-worker"
# Step and custom span messages are cut to this length (a stored error can be megabytes).
_MAX_MESSAGE = 4096

# The IDs the next span started on this context must take (set around one start_span call).
_forced_trace_id: contextvars.ContextVar[int] = contextvars.ContextVar(
    "polos_forced_trace_id", default=0
)
_forced_span_id: contextvars.ContextVar[int] = contextvars.ContextVar(
    "polos_forced_span_id", default=0
)


def trace_id_of(root_execution_id: str) -> int:
    """The trace ID of every execution of a tree: its root execution's UUID."""
    try:
        value = uuid.UUID(root_execution_id).int
    except ValueError:
        value = int.from_bytes(hashlib.blake2b(root_execution_id.encode(), digest_size=16).digest())
    return value or 1


def step_span_id(execution_id: str, step_key: str) -> int:
    """The span ID of the step `step_key` of an execution (the parent span of its children)."""
    digest = hashlib.blake2b(f"{execution_id}\x00{step_key}".encode(), digest_size=8).digest()
    return int.from_bytes(digest) or 1


def traceparent(trace_id: int, span_id: int) -> str:
    """A W3C `traceparent` header value (sampled)."""
    return f"00-{trace_id:032x}-{span_id:016x}-01"


def _version() -> str | None:
    try:
        return metadata.version("polos")
    except metadata.PackageNotFoundError:
        return None


def _short(text: str) -> str:
    return text if len(text) <= _MAX_MESSAGE else text[:_MAX_MESSAGE] + "..."


class NoopSpan:
    """What `ctx.step.trace()` yields when tracing is off: takes everything, records nothing."""

    def set_attribute(self, key: str, value: Any) -> None:
        pass

    def set_attributes(self, attributes: Mapping[str, Any]) -> None:
        pass

    def add_event(self, name: str, attributes: Mapping[str, Any] | None = None) -> None:
        pass

    def record_exception(self, exception: BaseException, **kwargs: Any) -> None:
        pass

    def set_status(self, status: Any, description: str | None = None) -> None:
        pass

    def update_name(self, name: str) -> None:
        pass

    def is_recording(self) -> bool:
        return False


class _Api:
    """The parts of the OpenTelemetry API the spans use, imported once (tracing is on)."""

    def __init__(self) -> None:
        from opentelemetry import context, trace
        from opentelemetry.trace import (
            INVALID_SPAN,
            NonRecordingSpan,
            SpanContext,
            Status,
            StatusCode,
            TraceFlags,
        )

        self.attach = context.attach
        self.detach = context.detach
        self.in_context = trace.set_span_in_context
        self.invalid_span = INVALID_SPAN
        self.NonRecordingSpan = NonRecordingSpan
        self.SpanContext = SpanContext
        self.Status = Status
        self.ERROR = StatusCode.ERROR
        self.ok = Status(StatusCode.OK)
        self.sampled = TraceFlags(TraceFlags.SAMPLED)

    def error(self, message: str) -> Any:
        return self.Status(self.ERROR, _short(message))


class TraceScope:
    """`with ctx.step.trace(name) as span:` or `async with ...`: a span around a block.

    The span is a child of the current span (the step whose body runs the block, or the
    execution's span) and becomes the current one inside the block, so spans the block's own
    instrumentation opens nest under it. An exception marks it ERROR (and is re-raised)."""

    __slots__ = ("_attributes", "_name", "_span", "_token", "_tracing")

    def __init__(
        self, tracing: AttemptTracing | None, name: str, attributes: Mapping[str, Any] | None
    ) -> None:
        self._tracing = tracing
        self._name = name
        self._attributes = attributes
        self._span: Any = None
        self._token: Any = None

    def __enter__(self) -> Any:
        tracing = self._tracing
        if tracing is None:
            return NoopSpan()
        self._span = tracing.tracer.start_span(
            str(self._name),
            attributes={**tracing.custom_attributes, **(self._attributes or {})},
        )
        self._token = tracing.api.attach(tracing.api.in_context(self._span))
        return self._span

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        span = self._span
        if span is None or self._tracing is None:
            return
        api = self._tracing.api
        self._span = None
        try:
            if exc is not None:
                span.record_exception(exc)
                span.set_status(api.error(f"{type(exc).__name__}: {exc}"))
            else:
                span.set_status(api.ok)
            span.end()
        finally:
            api.detach(self._token)

    async def __aenter__(self) -> Any:
        return self.__enter__()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.__exit__(exc_type, exc, tb)


def _forcing_id_generator(inner: IdGenerator) -> RandomIdGenerator:
    from opentelemetry.sdk.trace.id_generator import RandomIdGenerator

    class ForcingIdGenerator(RandomIdGenerator):
        """Delegates to `inner`, except for the IDs polos asks its own spans to take."""

        polos_inner = inner

        def generate_span_id(self) -> int:
            return _forced_span_id.get() or inner.generate_span_id()

        def generate_trace_id(self) -> int:
            return _forced_trace_id.get() or inner.generate_trace_id()

        def is_trace_id_random(self) -> bool:
            return False

    return ForcingIdGenerator()


class Tracing:
    """The tracer of one worker process: `Tracing.create()` is None when tracing is off."""

    def __init__(self, provider: TracerProvider) -> None:
        from opentelemetry.sdk.trace import TracerProvider as SdkTracerProvider

        self.provider = provider
        if isinstance(provider, SdkTracerProvider) and not hasattr(
            provider.id_generator, "polos_inner"
        ):
            provider.id_generator = _forcing_id_generator(provider.id_generator)
        self.tracer: Tracer = provider.get_tracer("polos", _version())
        self.api = _Api()

    @classmethod
    def create(cls, provider: Any = None) -> Tracing | None:
        """Tracing with `provider`, or as the environment says (None: off)."""
        if provider is not None:
            return cls(provider)
        endpoint = next((os.environ[v] for v in ENDPOINT_VARIABLES if os.environ.get(v)), None)
        if endpoint is None or os.environ.get("OTEL_SDK_DISABLED", "").lower() == "true":
            return None
        try:
            from opentelemetry import trace
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
            from opentelemetry.sdk.resources import Resource
            from opentelemetry.sdk.trace import TracerProvider as SdkTracerProvider
            from opentelemetry.sdk.trace.export import BatchSpanProcessor
        except ImportError as exc:
            log.warning(
                "%s is set but OpenTelemetry is not installed (%s): tracing is off; "
                "install it with: pip install 'polos[otel]'",
                ENDPOINT_VARIABLES[1],
                exc,
            )
            return None
        current = trace.get_tracer_provider()
        if isinstance(current, SdkTracerProvider):
            # The application configured OpenTelemetry itself: its spans and ours go together.
            log.info("tracing: spans go to the application's tracer provider")
            return cls(current)
        named = os.environ.get("OTEL_SERVICE_NAME") or "service.name=" in os.environ.get(
            "OTEL_RESOURCE_ATTRIBUTES", ""
        )
        resource = Resource.create({} if named else {"service.name": DEFAULT_SERVICE_NAME})
        sdk_provider = SdkTracerProvider(resource=resource)
        sdk_provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
        # Global, so that the instrumentation of code run in steps nests under their spans.
        trace.set_tracer_provider(sdk_provider)
        log.info("tracing: exporting spans over OTLP/HTTP to %s", endpoint)
        return cls(sdk_provider)

    def attempt(self, execution: protocol.ClaimedExecutionWire, workflow_id: str) -> AttemptTracing:
        return AttemptTracing(self.tracer, self.api, execution, workflow_id)

    async def flush(self, timeout_seconds: float = 5.0) -> None:
        """Send what is buffered now (a worker stopping). The provider itself stays up (it
        shuts down when the process exits), for a worker started again in this process."""
        provider: Any = self.provider
        if hasattr(provider, "force_flush"):
            await asyncio.to_thread(provider.force_flush, int(timeout_seconds * 1000))


class AttemptTracing:
    """The spans of one attempt: the attempt's own, and one per step it runs (not replays)."""

    def __init__(
        self,
        tracer: Tracer,
        api: _Api,
        execution: protocol.ClaimedExecutionWire,
        workflow_id: str,
    ) -> None:
        self.tracer = tracer
        self.api = api
        self._execution = execution
        self._workflow_id = workflow_id
        self.trace_id = trace_id_of(execution.root_execution_id)
        self._span: Span | None = None
        self._token: Any = None
        # Open step spans by key, and the context tokens of the `run` steps made current.
        self._steps: dict[str, Span] = {}
        self._tokens: dict[str, Any] = {}
        self.custom_attributes = {
            "polos.workflow_id": workflow_id,
            "polos.execution_id": execution.id,
        }

    @property
    def parent_traceparent(self) -> str | None:
        """The W3C traceparent of the span this execution's spans hang from (its parent's
        step), or None for a root."""
        e = self._execution
        if e.parent_execution_id is None or e.step_key is None:
            return None
        return traceparent(self.trace_id, step_span_id(e.parent_execution_id, e.step_key))

    def _parent_context(self) -> Context | None:
        api = self.api
        e = self._execution
        if e.parent_execution_id is None or e.step_key is None:
            return None
        parent = api.SpanContext(
            trace_id=self.trace_id,
            span_id=step_span_id(e.parent_execution_id, e.step_key),
            is_remote=True,
            trace_flags=api.sampled,
        )
        context: Context = api.in_context(api.NonRecordingSpan(parent))
        return context

    def start(self) -> str:
        """Open the attempt's span and make it current (on the attempt's task); returns its
        span ID (hex)."""
        e = self._execution
        attributes: dict[str, Any] = {
            "polos.workflow_id": self._workflow_id,
            "polos.execution_id": e.id,
            "polos.root_execution_id": e.root_execution_id,
            "polos.project_id": e.project_id,
            "polos.queue": e.queue_name,
            "polos.attempt": e.attempt,
            "polos.retry_count": e.retry_count,
        }
        if e.parent_execution_id is not None:
            attributes["polos.parent_execution_id"] = e.parent_execution_id
        if e.step_key is not None:
            attributes["polos.parent_step_key"] = e.step_key
        if e.deployment_id:
            attributes["polos.deployment_id"] = e.deployment_id
        parent = self._parent_context()
        token = _forced_trace_id.set(self.trace_id) if parent is None else None
        try:
            self._span = span = self.tracer.start_span(
                f"workflow.{self._workflow_id}", context=parent, attributes=attributes
            )
        finally:
            if token is not None:
                _forced_trace_id.reset(token)
        self._token = self.api.attach(self.api.in_context(span))
        return f"{span.get_span_context().span_id:016x}"

    # -- steps -----------------------------------------------------------------------

    def step_begun(self, slot: StepSlot) -> None:
        api = self.api
        parent = api.in_context(self._span or api.invalid_span)
        token = _forced_span_id.set(step_span_id(self._execution.id, slot.key))
        try:
            span = self.tracer.start_span(
                f"step.{slot.key}",
                context=parent,
                attributes={
                    "polos.workflow_id": self._workflow_id,
                    "polos.execution_id": self._execution.id,
                    "polos.step_key": slot.key,
                    "polos.step_kind": slot.kind.value,
                    "polos.step_position": slot.position,
                },
            )
        finally:
            _forced_span_id.reset(token)
        previous = self._steps.pop(slot.key, None)
        if previous is not None:  # not reachable: keys are unique per attempt
            previous.end()
        self._steps[slot.key] = span
        if slot.kind.value == "run":
            # The body runs inside the step's span (and so do the spans it opens).
            self._tokens[slot.key] = api.attach(api.in_context(span))

    def step_recorded(
        self, report: reports.StepReport, children: Sequence[protocol.ChildSubmission] = ()
    ) -> None:
        api = self.api
        token = self._tokens.pop(report.key, None)
        if token is not None:
            api.detach(token)
        span = self._steps.pop(report.key, None)
        if span is None:
            return
        attributes: dict[str, Any] = {}
        if children:
            attributes["polos.children"] = len(children)
        if report.status == "failed":
            error_type = report.error.type if report.error else "Error"
            attributes["polos.status"] = "failed"
            attributes["polos.error_type"] = attributes["error.type"] = error_type
            span.set_attributes(attributes)
            span.set_status(api.error(report.error.message if report.error else ""))
        elif report.status == "pending":
            attributes["polos.status"] = "waiting"
            span.set_attributes(attributes)
        else:
            attributes["polos.status"] = "completed"
            span.set_attributes(attributes)
            span.set_status(api.ok)
        span.end()

    # -- the end ---------------------------------------------------------------------

    def finish(
        self, outcome: reports.Outcome | None, error: BaseException | None, abandoned: bool
    ) -> None:
        """Close the attempt's span (and any step span left open) with the outcome."""
        api = self.api
        span, self._span = self._span, None
        if span is None:
            return
        attributes: dict[str, Any] = {}
        error_type = message = None
        if abandoned or outcome is None:
            status = "abandoned"
        elif isinstance(outcome, reports.CompleteOutcome):
            status = "completed"
        elif isinstance(outcome, reports.SuspendOutcome):
            status = "waiting"
        elif isinstance(outcome, reports.FailOutcome):
            status, error_type, message = "failed", outcome.error.type, outcome.error.message
            attributes["polos.retryable"] = outcome.retryable
        else:
            status = "released"
        for step in self._steps.values():
            # A step that recorded no outcome in this attempt (it raised before, or the
            # attempt ended while it ran).
            step.set_attribute(
                "polos.status", status if status in ("abandoned", "failed") else "interrupted"
            )
            if error_type is not None:
                step.set_status(api.error(message or ""))
            step.end()
        self._steps.clear()
        self._tokens.clear()
        attributes["polos.status"] = status
        if error_type is not None:
            attributes["polos.error_type"] = attributes["error.type"] = error_type
            span.set_attributes(attributes)
            if error is not None:
                span.record_exception(error)
            span.set_status(api.error(message or ""))
        else:
            span.set_attributes(attributes)
            if status == "completed":
                span.set_status(api.ok)
        span.end()
        if self._token is not None:
            api.detach(self._token)
            self._token = None
