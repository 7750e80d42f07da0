"""Tracing and metrics through real processes (docs/observability.md).

- Tracing: a worker exports over OTLP/HTTP to a small receiver in this test; a parent with
  three children (one failing in a step) is one trace, with a span per execution attempt and
  per step, the children's spans hanging from the parent's batch step, custom spans where
  `ctx.step.trace` opened them, and ERROR on what failed.
- Metrics: `GET /metrics` during and after a fan-out parses as Prometheus text and counts what
  happened (live executions while they wait, finished executions, claims, step durations).
"""

from __future__ import annotations

import gzip
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Status
from prometheus_client.parser import text_string_to_metric_families

import polos
from polos import events
from tests.e2e.apps import observability
from tests.e2e.conftest import (
    HOST,
    ServerFactory,
    WorkerFactory,
    wait_until,
)

APP = "tests.e2e.apps.observability"
TIMEOUT = 90.0


# --------------------------------------------------------------------------- OTLP receiver


@dataclass
class Span:
    name: str
    trace_id: str
    span_id: str
    parent_span_id: str
    attributes: dict[str, Any]
    status_code: int
    status_message: str
    events: list[str]
    service: str


def _value(v: AnyValue) -> Any:
    kind = v.WhichOneof("value")
    return getattr(v, kind) if kind else None


@dataclass
class Receiver:
    """An OTLP/HTTP trace receiver on 127.0.0.1: POST /v1/traces with a protobuf
    ExportTraceServiceRequest (gzip or not)."""

    url: str = ""
    spans: list[Span] = field(default_factory=list)
    requests: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, body: bytes) -> None:
        request = ExportTraceServiceRequest()
        request.ParseFromString(body)
        found = []
        for resource_spans in request.resource_spans:
            resource = {a.key: _value(a.value) for a in resource_spans.resource.attributes}
            for scope_spans in resource_spans.scope_spans:
                for s in scope_spans.spans:
                    found.append(
                        Span(
                            name=s.name,
                            trace_id=s.trace_id.hex(),
                            span_id=s.span_id.hex(),
                            parent_span_id=s.parent_span_id.hex(),
                            attributes={a.key: _value(a.value) for a in s.attributes},
                            status_code=s.status.code,
                            status_message=s.status.message,
                            events=[e.name for e in s.events],
                            service=str(resource.get("service.name")),
                        )
                    )
        with self.lock:
            self.spans.extend(found)
            self.requests += 1

    def named(self, name: str) -> list[Span]:
        with self.lock:
            return [s for s in self.spans if s.name == name]


@pytest.fixture
def otlp() -> Iterator[Receiver]:
    receiver = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            if self.headers.get("Content-Encoding") == "gzip":
                body = gzip.decompress(body)
            if self.path == "/v1/traces":
                receiver.add(body)
                answer = ExportTraceServiceResponse().SerializeToString()
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
            else:
                answer = b""
                self.send_response(404)
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    httpd = ThreadingHTTPServer((HOST, 0), Handler)
    receiver.url = f"http://{HOST}:{httpd.server_address[1]}"
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        httpd.shutdown()
        httpd.server_close()


# --------------------------------------------------------------------------- tracing


async def test_a_fan_out_is_one_trace(
    start_server: ServerFactory, start_worker: WorkerFactory, otlp: Receiver
) -> None:
    server = start_server()
    worker = start_worker(
        server,
        APP,
        env={
            "OTEL_EXPORTER_OTLP_ENDPOINT": otlp.url,
            "OTEL_BSP_SCHEDULE_DELAY": "50",
            "OTEL_SERVICE_NAME": "polos-e2e-worker",
        },
    )
    async with polos.PolosClient(api_url=server.url) as client:
        handle = await observability.obs_parent.invoke(client, {"n": 3, "fail": 1})
        out = await handle.result(client, timeout=TIMEOUT)
    assert out["squares"] == [0, 4]
    assert len(out["failed"]) == 1

    def complete() -> bool:
        parents = otlp.named("workflow.obs_parent")
        return (
            any(s.attributes.get("polos.status") == "completed" for s in parents)
            and len(otlp.named("workflow.obs_child")) == 3
            and len(otlp.named("aggregate")) == 1
        )

    wait_until(complete, 30, "the spans of the fan-out to be exported")
    assert "tracing: exporting spans over OTLP/HTTP" in worker.proc.log()

    trace_id = uuid.UUID(handle.id).hex
    with otlp.lock:
        spans = list(otlp.spans)
    # One trace: the root execution's UUID is its ID.
    assert {s.trace_id for s in spans} == {trace_id}
    assert {s.service for s in spans} == {"polos-e2e-worker"}
    by_id = {s.span_id: s for s in spans}
    assert len(by_id) == len(spans), "span IDs are unique"

    # The parent: one span per attempt (suspended at the batch, then completed), both roots.
    parents = otlp.named("workflow.obs_parent")
    assert sorted(s.attributes["polos.status"] for s in parents) == ["completed", "waiting"]
    for s in parents:
        assert s.parent_span_id == ""
        assert s.attributes["polos.execution_id"] == handle.id
        assert s.attributes["polos.workflow_id"] == "obs_parent"
        assert s.attributes["polos.root_execution_id"] == handle.id
    attempts = {s.attributes["polos.attempt"]: s for s in parents}
    assert set(attempts) == {1, 2}
    first, second = attempts[1], attempts[2]
    assert first.attributes["polos.status"] == "waiting"
    assert second.status_code == Status.STATUS_CODE_OK

    # Steps: spans for the steps each attempt ran (a replayed step gets none).
    [setup] = otlp.named("step.setup")
    assert setup.parent_span_id == first.span_id
    assert setup.attributes["polos.step_kind"] == "run"
    assert setup.attributes["polos.status"] == "completed"
    [batch] = otlp.named("step.children")
    assert batch.parent_span_id == first.span_id
    assert batch.attributes["polos.step_kind"] == "batch_invoke_and_wait"
    assert batch.attributes["polos.status"] == "waiting"
    assert batch.attributes["polos.children"] == 3

    # Custom spans: under the execution's span, or under the step whose body opened them.
    prepares = otlp.named("prepare")
    assert {s.parent_span_id for s in prepares} == {first.span_id, second.span_id}
    for s in prepares:
        assert s.attributes["app.children"] == 3
        assert s.attributes["app.note"] == "before the fan-out"
        assert s.attributes["polos.execution_id"] == handle.id
    [inside] = otlp.named("inside_setup")
    assert inside.parent_span_id == setup.span_id
    assert inside.events == ["setting up"]
    [aggregate] = otlp.named("aggregate")
    assert aggregate.parent_span_id == second.span_id

    # The children hang from the parent's batch step, in the parent's trace.
    children = otlp.named("workflow.obs_child")
    for child in children:
        assert child.parent_span_id == batch.span_id
        assert child.attributes["polos.parent_execution_id"] == handle.id
        assert child.attributes["polos.parent_step_key"] == "children"
    by_execution = {c.attributes["polos.execution_id"]: c for c in children}
    failed = by_execution[out["failed"][0]]
    assert failed.attributes["polos.status"] == "failed"
    assert failed.attributes["polos.error_type"] == "StepExecutionError"
    assert failed.status_code == Status.STATUS_CODE_ERROR
    assert "exploded on purpose" in failed.status_message
    assert "exception" in failed.events
    for execution_id, child in by_execution.items():
        if execution_id != failed.attributes["polos.execution_id"]:
            assert child.attributes["polos.status"] == "completed"
            assert child.status_code == Status.STATUS_CODE_OK

    squares = otlp.named("step.square")
    assert {s.parent_span_id for s in squares} == {c.span_id for c in children}
    [explode] = otlp.named("step.explode")
    assert explode.parent_span_id == failed.span_id
    assert explode.status_code == Status.STATUS_CODE_ERROR
    assert explode.attributes["polos.error_type"] == "ValueError"
    assert "exploded on purpose" in explode.status_message


async def test_tracing_is_off_without_an_endpoint(
    start_server: ServerFactory, start_worker: WorkerFactory, otlp: Receiver
) -> None:
    """Without OTEL_EXPORTER_OTLP_ENDPOINT nothing is exported, and `ctx.step.trace` is a
    no-op that workflows use all the same."""
    server = start_server()
    worker = start_worker(server, APP, env={"OTEL_EXPORTER_OTLP_ENDPOINT": ""})
    async with polos.PolosClient(api_url=server.url) as client:
        out = await observability.obs_parent.run(client, {"n": 2}, timeout=TIMEOUT)
    assert out == {"squares": [0, 1], "failed": []}
    assert "tracing:" not in worker.proc.log()
    assert otlp.requests == 0


# --------------------------------------------------------------------------- metrics


def _scrape(url: str, headers: dict[str, str] | None = None) -> dict[str, dict[tuple, float]]:
    """GET /metrics, parsed: sample name -> {sorted label items: value}."""
    response = httpx.get(f"{url}/metrics", headers=headers, timeout=10)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    samples: dict[str, dict[tuple, float]] = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            key = tuple(sorted(sample.labels.items()))
            samples.setdefault(sample.name, {})[key] = sample.value
    return samples


def _value_of(samples: dict[str, dict[tuple, float]], name: str, **labels: str) -> float:
    wanted = set(labels.items())
    return sum(v for k, v in samples.get(name, {}).items() if wanted <= set(k))


async def test_metrics_of_a_fan_out(
    start_server: ServerFactory, start_worker: WorkerFactory
) -> None:
    n = 25
    server = start_server()
    start_worker(server, APP)
    topic = f"obs/gate/{uuid.uuid4()}"
    async with polos.PolosClient(api_url=server.url) as client:
        handle = await observability.obs_gate_parent.invoke(client, {"n": n, "topic": topic})

        # While every child waits for its event: live counts from the database.
        def all_waiting() -> dict[str, dict[tuple, float]] | None:
            samples = _scrape(server.url)
            child = _value_of(
                samples, "polos_executions", workflow_id="obs_gate_child", status="waiting"
            )
            parent = _value_of(
                samples, "polos_executions", workflow_id="obs_gate_parent", status="waiting"
            )
            return samples if (child, parent) == (n, 1) else None

        samples = wait_until(all_waiting, TIMEOUT, f"{n} children waiting", interval=0.2)
        for status in ("queued", "running"):
            assert _value_of(samples, "polos_executions", status=status) == 0
            assert _value_of(samples, "polos_queue_executions", status=status) == 0
        assert _value_of(samples, "polos_workers", project="default") == 1
        # A queue shows up with its depth even when it is empty.
        assert ("queue", "obs_gate_child") in {
            item for key in samples["polos_queue_executions"] for item in key
        }

        await events.publish(client, topic, {"data": "go"})
        assert await handle.result(client, timeout=TIMEOUT) == sum(range(1, n + 1))

    def settled() -> dict[str, dict[tuple, float]] | None:
        samples = _scrape(server.url)
        live = _value_of(samples, "polos_executions")
        return samples if live == 0 else None

    samples = wait_until(settled, TIMEOUT, "no live executions", interval=0.2)
    finished = "polos_executions_finished_total"
    assert _value_of(samples, finished, workflow_id="obs_gate_child", status="completed") == n
    assert _value_of(samples, finished, workflow_id="obs_gate_parent", status="completed") == 1
    assert _value_of(samples, finished, status="failed") == 0
    assert _value_of(samples, finished, project="default") == n + 1
    # Every execution was claimed twice: to run up to its wait, and once woken.
    dispatch_count = _value_of(samples, "polos_dispatch_latency_seconds_count")
    assert dispatch_count == 2 * (n + 1)
    assert _value_of(samples, "polos_dispatch_latency_seconds_bucket", le="+Inf") == dispatch_count
    assert _value_of(samples, "polos_dispatch_latency_seconds_sum") >= 0
    # One `work` step per child, with its duration from the worker's report.
    steps = {"workflow_id": "obs_gate_child", "kind": "run", "status": "completed"}
    assert _value_of(samples, "polos_step_duration_seconds_count", **steps) == n
    assert _value_of(samples, "polos_step_duration_seconds_bucket", le="+Inf", **steps) == n
    assert 0 < _value_of(samples, "polos_step_duration_seconds_sum", **steps) < 60
    assert _value_of(samples, "polos_worker_requests_total", endpoint="reports", code="200") >= 1
    assert _value_of(samples, "polos_worker_requests_total", endpoint="claim", code="200") >= 2
    assert _value_of(samples, "process_cpu_seconds_total") > 0


async def test_metrics_of_failures(
    start_server: ServerFactory, start_worker: WorkerFactory
) -> None:
    server = start_server()
    start_worker(server, APP)
    async with polos.PolosClient(api_url=server.url) as client:
        out = await observability.obs_parent.run(client, {"n": 4, "fail": 2}, timeout=TIMEOUT)
    assert len(out["failed"]) == 1
    samples = _scrape(server.url)
    finished = "polos_executions_finished_total"
    assert _value_of(samples, finished, workflow_id="obs_child", status="completed") == 3
    assert _value_of(samples, finished, workflow_id="obs_child", status="failed") == 1
    assert _value_of(samples, finished, workflow_id="obs_parent", status="completed") == 1
    failed_steps = {"workflow_id": "obs_child", "kind": "run", "status": "failed"}
    assert _value_of(samples, "polos_step_duration_seconds_count", **failed_steps) == 1


def _create_key(database_url: str) -> str:
    out = subprocess.run(
        [
            str(Path(sys.executable).parent / "polos-server"),
            "keys",
            "create",
            "--project",
            "metrics",
            "--database-url",
            database_url,
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    fields = dict(line.split(":", 1) for line in out.splitlines())
    return fields["key"].strip()


def test_metrics_need_a_key_when_keys_are_required(
    start_server: ServerFactory,
) -> None:
    server = start_server(env={"POLOS_REQUIRE_API_KEYS": "1"})
    response = httpx.get(f"{server.url}/metrics", timeout=10)
    assert response.status_code == 401
    key = _create_key(server.database_url)
    samples = _scrape(server.url, {"Authorization": f"Bearer {key}"})
    assert "process_cpu_seconds_total" in samples
    bad = httpx.get(f"{server.url}/metrics", headers={"Authorization": "Bearer polos_x"})
    assert bad.status_code == 401
    # Not part of the API's description (the fuzz tests walk it).
    spec = httpx.get(f"{server.url}/openapi.json", timeout=10).json()
    assert "/metrics" not in spec["paths"]
