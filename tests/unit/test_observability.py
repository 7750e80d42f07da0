"""Tracing spans and metrics, without processes: the span tree of one attempt (into an
in-memory exporter), the deterministic IDs that make a fan-out one trace, the no-op
`ctx.step.trace` when tracing is off, and the exposition of the in-memory metrics."""

from __future__ import annotations

import uuid
from collections import Counter

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from polos import protocol
from polos.model import StepKind
from polos.sdk.step import StepSlot
from polos.server.clocks import Clock
from polos.server.metrics import Metrics
from polos.store.metrics_ops import Observations
from polos.store.sqlite import SqliteStore
from polos.worker import reports, tracing
from polos.worker.tracing import NoopSpan, TraceScope, Tracing
from tests.unit.wire import claimed_execution


def _execution(
    execution_id: str, root: str, parent: str | None = None
) -> protocol.ClaimedExecutionWire:
    return claimed_execution(
        execution_id,
        root_execution_id=root,
        root_workflow_id="root_wf",
        parent_execution_id=parent,
        step_key="fan" if parent else None,
    )


@pytest.fixture
def exported() -> tuple[Tracing, InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    t = Tracing.create(provider)
    assert t is not None
    return t, exporter


def test_off_without_an_endpoint(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in tracing.ENDPOINT_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    assert Tracing.create() is None
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:1")
    monkeypatch.setenv("OTEL_SDK_DISABLED", "true")
    assert Tracing.create() is None


async def test_noop_trace_scope() -> None:
    with TraceScope(None, "x", {"a": 1}) as span:
        assert isinstance(span, NoopSpan)
        span.set_attribute("k", "v")
        span.add_event("e")
        assert not span.is_recording()
    async with TraceScope(None, "y", None) as span:
        span.set_attributes({"k": 1})
    with pytest.raises(ValueError), TraceScope(None, "z", None):
        raise ValueError("kept")


def test_a_root_attempt_and_its_steps(exported: tuple[Tracing, InMemorySpanExporter]) -> None:
    t, exporter = exported
    root = str(uuid.uuid4())
    attempt = t.attempt(_execution(root, root), "wf")
    attempt.start()
    ok = StepSlot("compute", StepKind.RUN, 0, None)
    attempt.step_begun(ok)
    with TraceScope(attempt, "custom", {"n": 2}) as span:
        span.set_attribute("m", 3)
    attempt.step_recorded(
        reports.StepReport(key="compute", kind="run", status="completed", result="1")
    )
    bad = StepSlot("boom", StepKind.RUN, 1, None)
    attempt.step_begun(bad)
    attempt.step_recorded(
        reports.StepReport(
            key="boom",
            kind="run",
            status="failed",
            error=reports.StoredError(type="ValueError", message="no"),
        )
    )
    fan = StepSlot("fan", StepKind.BATCH_WAIT, 2, None)
    attempt.step_begun(fan)
    attempt.step_recorded(
        reports.StepReport(key="fan", kind="batch_invoke_and_wait", status="pending"),
        [
            protocol.ChildSubmission(step_key="fan", index=i, workflow_id="c", payload="1")
            for i in range(3)
        ],
    )
    attempt.finish(reports.SuspendOutcome(step_key="fan"), None, abandoned=False)

    spans = {s.name: s for s in exporter.get_finished_spans()}
    assert set(spans) == {"workflow.wf", "step.compute", "custom", "step.boom", "step.fan"}
    trace_id = uuid.UUID(root).int
    assert {s.context.trace_id for s in spans.values()} == {trace_id}
    execution_span = spans["workflow.wf"]
    assert execution_span.parent is None
    assert execution_span.attributes["polos.status"] == "waiting"
    for key in ("compute", "boom", "fan"):
        step = spans[f"step.{key}"]
        assert step.parent.span_id == execution_span.context.span_id
        assert step.context.span_id == tracing.step_span_id(root, key)
    assert spans["custom"].parent.span_id == spans["step.compute"].context.span_id
    assert spans["custom"].attributes["n"] == 2
    assert spans["step.boom"].status.status_code is StatusCode.ERROR
    assert spans["step.boom"].attributes["polos.error_type"] == "ValueError"
    assert spans["step.fan"].attributes["polos.children"] == 3
    assert spans["step.compute"].status.status_code is StatusCode.OK


def test_a_child_hangs_from_its_parents_step(
    exported: tuple[Tracing, InMemorySpanExporter],
) -> None:
    t, exporter = exported
    root = str(uuid.uuid4())
    child_id = protocol.child_execution_id(root, "fan", 0)
    attempt = t.attempt(_execution(child_id, root, parent=root), "child")
    attempt.start()
    attempt.finish(
        reports.FailOutcome(error=reports.StoredError(type="KeyError", message="'x'")),
        KeyError("x"),
        abandoned=False,
    )
    [span] = exporter.get_finished_spans()
    assert span.context.trace_id == uuid.UUID(root).int
    assert span.parent is not None and span.parent.is_remote
    assert span.parent.span_id == tracing.step_span_id(root, "fan")
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes["polos.error_type"] == "KeyError"
    assert [e.name for e in span.events] == ["exception"]
    assert attempt.parent_traceparent == tracing.traceparent(
        uuid.UUID(root).int, tracing.step_span_id(root, "fan")
    )


def test_ids_of_other_spans_stay_random(exported: tuple[Tracing, InMemorySpanExporter]) -> None:
    t, exporter = exported
    tracer = t.provider.get_tracer("app")
    with tracer.start_as_current_span("a"), tracer.start_as_current_span("b"):
        pass
    a, b = sorted(exporter.get_finished_spans(), key=lambda s: s.name)
    assert a.context.trace_id == b.context.trace_id
    assert a.context.span_id != b.context.span_id


def test_metrics_exposition() -> None:
    metrics = Metrics(SqliteStore(":memory:"), Clock(), 10.0)
    metrics.observe(
        Observations(
            finished=Counter({("p", "wf", "completed"): 3, ("p", "wf", "failed"): 1}),
            dispatch_latencies=[0.002, 0.02, 7.0, -0.001],
            step_durations=[("wf", "run", "completed", 0.3), ("wf", "run", "completed", 45.0)],
        )
    )
    metrics.request("claim", 200)
    metrics.request("claim", 200)
    text = generate_latest(metrics.registry).decode()
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }
    finished = "polos_executions_finished_total"
    labels = (("project", "p"), ("status", "completed"), ("workflow_id", "wf"))
    assert samples[(finished, labels)] == 3
    assert samples[("polos_dispatch_latency_seconds_count", ())] == 4
    assert samples[("polos_dispatch_latency_seconds_bucket", (("le", "0.0025"),))] == 2
    assert samples[("polos_dispatch_latency_seconds_bucket", (("le", "5.0"),))] == 3
    assert samples[("polos_dispatch_latency_seconds_bucket", (("le", "+Inf"),))] == 4
    step = (("kind", "run"), ("status", "completed"), ("workflow_id", "wf"))
    assert samples[("polos_step_duration_seconds_count", step)] == 2
    assert samples[("polos_step_duration_seconds_sum", step)] == pytest.approx(45.3)
    assert samples[("polos_worker_requests_total", (("code", "200"), ("endpoint", "claim")))] == 2
