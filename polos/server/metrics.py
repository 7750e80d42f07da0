"""`GET /metrics`: the server's metrics in Prometheus text format (docs/observability.md).

Two sources:

- Counts of live executions, queues and workers, read from the database (one index range per
  count, store/metrics_ops.py) at most every `CACHE_SECONDS`, so a scraper (or ten) costs the
  server one small read every couple of seconds, even during a 10,000-child fan-out.
- Counters and histograms kept in memory: executions that reached a final status, dispatch
  latency (due -> claimed), step durations (as workers report them) and worker requests.
  Units of work hand them over once committed (`tx.observe()`), so they count what this
  server did: with several replicas, sum them across replicas. They start from zero when the
  server starts, as Prometheus counters do.

Not project-scoped: one scrape shows every project (a `project` label). When the server
requires API keys, the scraper must send one (any project's).
"""

from __future__ import annotations

import asyncio
import math
import time
from bisect import bisect_left
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.process_collector import ProcessCollector

from polos.server.clocks import Clock
from polos.store.base import Store, StoreTx
from polos.store.metrics_ops import LIVE_STATUSES, MetricsSnapshot, Observations

__all__ = ["CONTENT_TYPE_LATEST", "Metrics", "RequestCounter"]

# How long a database read of the counts serves scrapes.
CACHE_SECONDS = 2.0
DISPATCH_BUCKETS = (
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
    60.0,
    300.0,
)
STEP_BUCKETS = (
    0.001,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
    60.0,
    300.0,
    1800.0,
)
# The worker protocol's requests counted by endpoint (the last part of their paths).
WORKER_ENDPOINTS = frozenset({"claim", "reports", "heartbeat"})
_WORKERS_PATH = "/api/v1/workers/"


class _Histogram:
    """One histogram series. The event loop is its only writer: no locks, one bisect."""

    __slots__ = ("bounds", "counts", "sum")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)  # the last one: above every bound (+Inf)
        self.sum = 0.0

    def observe(self, value: float) -> None:
        self.counts[bisect_left(self.bounds, value)] += 1
        self.sum += value

    def buckets(self) -> list[tuple[str, float]]:
        out: list[tuple[str, float]] = []
        total = 0
        for bound, count in zip((*self.bounds, math.inf), self.counts, strict=True):
            total += count
            out.append(("+Inf" if bound == math.inf else repr(float(bound)), total))
        return out


class Metrics:
    """The metrics of one server process. `observe` takes what committed units did;
    `render()` answers a scrape."""

    def __init__(self, store: Store, clock: Clock, lease_seconds: float) -> None:
        self._store = store
        self._clock = clock
        self._lease_seconds = lease_seconds
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(_Collector(self))
        ProcessCollector(registry=self.registry)
        self.finished: dict[tuple[str, str, str], int] = {}
        self.dispatch = _Histogram(DISPATCH_BUCKETS)
        self.steps: dict[tuple[str, str, str], _Histogram] = {}
        self.requests: dict[tuple[str, str], int] = {}
        self.snapshot = MetricsSnapshot()
        # Every (project, workflow, queue) seen live: shown at 0 once it has no live execution,
        # rather than vanishing.
        self._seen: set[tuple[str, str, str]] = set()
        self._read_at = -math.inf
        self._reading: asyncio.Lock | None = None

    # -- what units did --------------------------------------------------------------------

    def observe(self, observations: Observations) -> None:
        finished = self.finished
        for key, count in observations.finished.items():
            finished[key] = finished.get(key, 0) + count
        observe = self.dispatch.observe
        for latency in observations.dispatch_latencies:
            observe(latency if latency > 0 else 0.0)
        steps = self.steps
        for workflow_id, kind, status, seconds in observations.step_durations:
            series = steps.get((workflow_id, kind, status))
            if series is None:
                series = steps[(workflow_id, kind, status)] = _Histogram(STEP_BUCKETS)
            series.observe(seconds)

    def request(self, endpoint: str, status: int) -> None:
        key = (endpoint, str(status))
        self.requests[key] = self.requests.get(key, 0) + 1

    # -- scrapes -----------------------------------------------------------------------------

    async def refresh(self) -> None:
        """Read the counts again when the last read is older than CACHE_SECONDS (concurrent
        scrapes share one read)."""
        if self._reading is None:
            self._reading = asyncio.Lock()
        async with self._reading:
            if time.monotonic() - self._read_at < CACHE_SECONDS:
                return
            heard_after = self._clock.now() - self._lease_seconds

            async def read(tx: StoreTx) -> MetricsSnapshot:
                return await tx.metrics_snapshot(heard_after)

            self.snapshot = await self._store.read(read)
            self._seen.update((p, w, q) for p, w, q, _ in self.snapshot.live)
            self._read_at = time.monotonic()

    async def render(self) -> bytes:
        await self.refresh()
        return generate_latest(self.registry)

    def collect(self) -> Iterable[Metric]:
        snapshot = self.snapshot
        live = GaugeMetricFamily(
            "polos_executions",
            "Live executions by status (queued, running, waiting), read from the database",
            labels=["project", "workflow_id", "queue", "status"],
        )
        depth: dict[tuple[str, str, str], int] = {}
        for project, queue in snapshot.queues:
            for status in ("queued", "running"):
                depth[(project, queue, status)] = 0
        for project, workflow_id, queue in sorted(self._seen):
            for status in LIVE_STATUSES:
                count = snapshot.live.get((project, workflow_id, queue, status), 0)
                live.add_metric([project, workflow_id, queue, status], count)
                if status != "waiting":
                    depth[(project, queue, status)] = depth.get((project, queue, status), 0) + count
        yield live
        queues = GaugeMetricFamily(
            "polos_queue_executions",
            "Executions of each queue by status: queued (the queue's depth) and running (its "
            "slots in use)",
            labels=["project", "queue", "status"],
        )
        for (project, queue, status), count in sorted(depth.items()):
            queues.add_metric([project, queue, status], count)
        yield queues
        limits = GaugeMetricFamily(
            "polos_queue_concurrency_limit",
            "The concurrency limit of each limited queue",
            labels=["project", "queue"],
        )
        for (project, queue), limit in sorted(snapshot.queues.items()):
            if limit is not None:
                limits.add_metric([project, queue], limit)
        yield limits
        workers = GaugeMetricFamily(
            "polos_workers",
            "Workers heard from within a lease period",
            labels=["project"],
        )
        for project, count in sorted(snapshot.workers.items()):
            workers.add_metric([project], count)
        yield workers
        finished = CounterMetricFamily(
            "polos_executions_finished",
            "Executions that reached a final status (completed, failed, cancelled) on this "
            "server since it started",
            labels=["project", "workflow_id", "status"],
        )
        for (project, workflow_id, status), count in sorted(self.finished.items()):
            finished.add_metric([project, workflow_id, status], count)
        yield finished
        dispatch = HistogramMetricFamily(
            "polos_dispatch_latency_seconds",
            "From an execution being due (queued, woken, or its retry delay over) to a worker "
            "claiming it",
        )
        dispatch.add_metric([], self.dispatch.buckets(), self.dispatch.sum)
        yield dispatch
        steps = HistogramMetricFamily(
            "polos_step_duration_seconds",
            "How long the bodies of run steps took on workers (retries included), as their "
            "reports say",
            labels=["workflow_id", "kind", "status"],
        )
        for (workflow_id, kind, status), series in sorted(self.steps.items()):
            steps.add_metric([workflow_id, kind, status], series.buckets(), series.sum)
        yield steps
        requests = CounterMetricFamily(
            "polos_worker_requests",
            "Worker protocol requests (claim, reports, heartbeat) answered, by HTTP status",
            labels=["endpoint", "code"],
        )
        for (endpoint, code), count in sorted(self.requests.items()):
            requests.add_metric([endpoint, code], count)
        yield requests


class _Collector:
    def __init__(self, metrics: Metrics) -> None:
        self._metrics = metrics

    def collect(self) -> Iterable[Metric]:
        return self._metrics.collect()

    def describe(self) -> Iterable[Metric]:
        return []


Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class RequestCounter:
    """Counts the worker protocol's requests by endpoint and status (pure ASGI: other
    requests pay one string comparison)."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope.get("path", "")
        endpoint = path.rpartition("/")[2]
        if (
            scope["type"] != "http"
            or endpoint not in WORKER_ENDPOINTS
            or not path.startswith(_WORKERS_PATH)
        ):
            await self.app(scope, receive, send)
            return
        status = 500

        async def counting_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, counting_send)
        finally:
            self.metrics.request(endpoint, status)
