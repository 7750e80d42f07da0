"""`Worker`: registers workflows, pulls executions (long-poll), runs them, heartbeats.

Pull, not push: the worker needs no open port. One claim request is in flight at a time and
asks for the free slots, at most half the capacity (`CLAIM_COHORTS`); the server answers as soon
as work is ready. A slot is free once its execution's last report is sent, not answered.
Outages of the server are ridden out: every call retries with backoff, and a server that forgot
the worker gets a fresh registration.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import signal
from collections.abc import Sequence
from typing import Any

from polos import gc_tuning, protocol
from polos.sdk.client import ClientLike, PolosClient, api_error, as_client
from polos.sdk.errors import PolosApiError
from polos.sdk.transport import HttpTransport, Response, TransportError
from polos.sdk.workflow import Workflow, get_all_workflows
from polos.worker import reports
from polos.worker.attempt import Attempt
from polos.worker.reporter import DEFAULT_IN_FLIGHT, Reporter
from polos.worker.tracing import Tracing

log = logging.getLogger("polos.worker")

_UNSET: Any = object()
DEFAULT_CAPACITY = 100
CLAIM_WAIT_SECONDS = 30.0
# A claim asks for at most capacity / CLAIM_COHORTS executions. With one claim for every free
# slot, a full worker's executions move in lockstep (all run their steps, then all wait for
# the server's commit) and the two processes take turns; two cohorts keep one running while
# the server commits the other's records: 30-40 % more children/s in a 10,000-child fan-out
# on 2 cores (docs/performance.md). Smaller cohorts make transactions too small to pay off.
CLAIM_COHORTS = 2


class _ServerForgotWorker(Exception):
    pass


def _capacity(value: int | None) -> int:
    if value is None:
        value = int(os.environ.get("POLOS_MAX_CONCURRENT_WORKFLOWS", DEFAULT_CAPACITY))
    if value < 1:
        raise ValueError(f"max_concurrent_workflows must be at least 1, not {value}")
    return value


class Worker:
    """Runs the given workflows (all registered ones by default) for as long as it lives.

    `mode`, `worker_server_url`, `agents`, `tools` and `channels` are accepted for
    compatibility with upstream and ignored: workers pull work, they need no server of their
    own.

    Tracing (docs/observability.md): spans of executions and steps are exported over OTLP
    when `OTEL_EXPORTER_OTLP_ENDPOINT` is set, or go to `tracer_provider` when one is given
    (an OpenTelemetry `TracerProvider`); otherwise tracing is off.
    """

    def __init__(
        self,
        client: ClientLike,
        deployment_id: str | None = None,
        agents: Any = None,
        tools: Any = None,
        workflows: Sequence[Workflow] | None = None,
        max_concurrent_workflows: int | None = None,
        mode: Any = _UNSET,
        worker_server_url: Any = _UNSET,
        log_file: str | None = None,
        channels: Any = None,
        shutdown_grace_seconds: float = 5.0,
        tracer_provider: Any = None,
    ) -> None:
        self.client: PolosClient = as_client(client)
        for name, value in (("mode", mode), ("worker_server_url", worker_server_url)):
            if value is not _UNSET:
                log.warning("Worker(%s=...) is ignored: workers pull work over HTTP", name)
        if agents or tools or channels:
            log.warning("Worker(agents=, tools=, channels=) are not supported and are ignored")
        if log_file:
            _log_to_file(log_file)
        self.deployment_id = deployment_id or self.client.deployment_id
        self.capacity = _capacity(max_concurrent_workflows)
        self._claim_chunk = max(1, -(-self.capacity // _claim_cohorts()))
        self._explicit_workflows = list(workflows) if workflows is not None else None
        for wf in self._explicit_workflows or []:
            if not isinstance(wf, Workflow):
                raise TypeError(f"Worker(workflows=...) takes Workflow objects, not {wf!r}")
        self.workflows: dict[str, Workflow] = {}
        self.shutdown_grace_seconds = shutdown_grace_seconds
        self.worker_id: str | None = None
        self.heartbeat_interval = 2.5
        self.max_value_bytes = 2 * 1024 * 1024
        self._attempts: dict[str, Attempt] = {}
        self._slot_freed = asyncio.Event()
        self._stop_requested = asyncio.Event()
        self._stopping = False
        self._tasks: list[asyncio.Task[None]] = []
        self._reporter = Reporter(self._send_reports, _reports_in_flight())
        self._http: HttpTransport | None = None
        self._tracer_provider = tracer_provider
        self._tracing: Tracing | None = None
        self.started = False

    # -- lifecycle ---------------------------------------------------------------------

    async def start(self) -> None:
        """Register and start pulling work in the background."""
        if self.started:
            return
        self.workflows = {
            wf.id: wf
            for wf in (
                self._explicit_workflows
                if self._explicit_workflows is not None
                else get_all_workflows().values()
            )
        }
        if not self.workflows:
            log.warning("this worker serves no workflows: define them before starting it")
        if self._tracing is None:
            self._tracing = Tracing.create(self._tracer_provider)
        self._http = HttpTransport(
            self.client.api_url,
            self.client.headers(),
            timeout=CLAIM_WAIT_SECONDS + 15.0,
            max_connections=16,
        )
        await self._register()
        self._reporter.start()
        self._tasks = [
            asyncio.create_task(self._claim_loop(), name="polos-claim"),
            asyncio.create_task(self._heartbeat_loop(), name="polos-heartbeat"),
        ]
        self.started = True

    async def run(self) -> None:
        """Run until SIGINT or SIGTERM (or `shutdown()`), then stop cleanly.

        This is a worker process's main loop: it also sets the garbage collector for
        throughput (polos.gc_tuning; POLOS_GC_THRESHOLDS=default leaves it alone)."""
        gc_tuning.tune()
        loop = asyncio.get_running_loop()
        installed = []
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                loop.add_signal_handler(sig, self._stop_requested.set)
                installed.append(sig)
        try:
            await self.start()
            log.info(
                "worker %s serving %d workflow(s) from %s (capacity %d)",
                self.worker_id,
                len(self.workflows),
                self.client.api_url,
                self.capacity,
            )
            await self._stop_requested.wait()
        finally:
            for sig in installed:
                loop.remove_signal_handler(sig)
            await self.shutdown()

    def request_stop(self) -> None:
        self._stop_requested.set()

    async def shutdown(self) -> None:
        """Stop claiming, give running executions a moment, hand the rest back, deregister."""
        if not self.started or self._stopping:
            return
        self._stopping = True
        self._stop_requested.set()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        running = [a.task for a in self._attempts.values() if a.task is not None]
        if running:
            await asyncio.wait(running, timeout=self.shutdown_grace_seconds)
        for attempt in list(self._attempts.values()):
            attempt.abandon("worker shutting down")
        # Records of what ran are still worth keeping: send them before leaving.
        with contextlib.suppress(Exception):
            async with asyncio.timeout(5.0):
                await self._reporter.drain()
        await self._reporter.stop()
        if self.worker_id is not None:
            with contextlib.suppress(Exception):
                async with asyncio.timeout(5.0):
                    await self._call_once("DELETE", f"/{self.worker_id}")
        if self._http is not None:
            await self._http.close()
        if self._tracing is not None:
            with contextlib.suppress(Exception):
                await self._tracing.flush()
        self.started = False
        log.info("worker %s stopped", self.worker_id)

    # -- transport ---------------------------------------------------------------------

    async def _call_once(
        self, method: str, path: str, body: Any = None, timeout: float | None = None
    ) -> Response:
        """`body` is a request model, or a body already encoded (bytes)."""
        assert self._http is not None
        if body is None or isinstance(body, bytes):
            content = body
        else:
            content = body.model_dump_json().encode()
        response = await self._http.request(
            method, f"{protocol.API_PREFIX}/workers{path}", content=content, timeout=timeout
        )
        if response.status_code == 404 and b"worker_not_found" in response.content:
            raise _ServerForgotWorker()
        if response.status_code >= 400:
            raise api_error(response)
        return response

    async def _call(
        self, method: str, path: str, body: Any = None, timeout: float | None = None
    ) -> Response:
        """Like `_call_once`, but rides out outages and server errors with backoff."""
        delay = 0.05
        while True:
            try:
                return await self._call_once(method, path, body, timeout)
            except (TransportError, PolosApiError) as exc:
                if isinstance(exc, PolosApiError) and exc.status < 500:
                    raise
                log.warning("server unreachable (%s); retrying in %.2f s", exc, delay)
            await asyncio.sleep(delay * (0.5 + random.random()))
            delay = min(delay * 2, 2.0)

    async def _register(self) -> None:
        body = protocol.RegisterWorkerRequest(
            deployment_id=self.deployment_id,
            capacity=self.capacity,
            worker_id=self.worker_id,
            workflows=[
                protocol.WorkflowRegistrationWire(
                    workflow_id=wf.id,
                    queue_name=wf.queue_name,
                    queue_concurrency_limit=wf.queue_concurrency_limit,
                    trigger=protocol.TriggerSpec(
                        topic=wf.trigger_on_event,
                        batch_size=wf.batch_size,
                        batch_timeout_seconds=wf.batch_timeout_seconds,
                    )
                    if wf.trigger_on_event
                    else None,
                    schedule=protocol.ScheduleSpec(**wf.schedule_spec)
                    if wf.schedule_spec
                    else None,
                )
                for wf in self.workflows.values()
            ],
        )
        response = await self._call("POST", "", body)
        data = protocol.RegisterWorkerResponse.model_validate_json(response.content)
        self.worker_id = data.worker_id
        self.heartbeat_interval = data.heartbeat_interval_seconds
        self.max_value_bytes = data.max_value_bytes

    async def _send_reports(
        self, items: Sequence[reports.ReportItem]
    ) -> list[protocol.ReportItemResult]:
        # Written from the worker's records (no pydantic models on the way): the server
        # validates the body as a protocol.ReportRequest.
        body = reports.encode_request(items)
        while True:
            try:
                response = await self._call("POST", f"/{self.worker_id}/reports", body)
                return protocol.ReportResponse.model_validate_json(response.content).results
            except _ServerForgotWorker:
                # Our leases are gone with our registration; these reports would be refused.
                await self._register()

    # -- loops -------------------------------------------------------------------------

    async def _claim_loop(self) -> None:
        while not self._stopping:
            free = self.capacity - len(self._attempts)
            if free <= 0:
                self._slot_freed.clear()
                await self._slot_freed.wait()
                continue
            body = protocol.ClaimRequest(
                max=min(free, self._claim_chunk, protocol.MAX_CLAIM),
                wait_seconds=CLAIM_WAIT_SECONDS,
            )
            try:
                response = await self._call(
                    "POST", f"/{self.worker_id}/claim", body, timeout=CLAIM_WAIT_SECONDS + 15.0
                )
            except _ServerForgotWorker:
                await self._register()
                continue
            except PolosApiError as exc:
                log.error("claim refused: %s", exc)
                await asyncio.sleep(1.0)
                continue
            if response.status_code == 204:
                continue
            claimed = protocol.ClaimResponse.model_validate_json(response.content)
            for execution in claimed.executions:
                self._start(execution)

    def _start(self, execution: protocol.ClaimedExecutionWire) -> None:
        wf = self.workflows.get(execution.workflow_id)
        if wf is None:  # the server only hands out what we registered
            log.error(
                "claimed execution %s of unknown workflow %r", execution.id, execution.workflow_id
            )
            return
        attempt = Attempt(
            execution,
            wf,
            self._reporter,
            self.deployment_id,
            self._finished,
            self._released,
            max_value_bytes=self.max_value_bytes,
            tracing=self._tracing,
        )
        self._attempts[execution.id] = attempt
        attempt.start()

    def _released(self, attempt: Attempt) -> None:
        # User code is over and the last report is on its way: the slot may run another
        # execution meanwhile (the reporter keeps the order of this attempt's records).
        if self._attempts.get(attempt.id) is attempt:
            del self._attempts[attempt.id]
        self._slot_freed.set()

    def _finished(self, attempt: Attempt) -> None:
        self._released(attempt)  # if it ended without a last report (abandoned, crashed)
        task = attempt.task
        if task is not None and not task.cancelled() and task.exception() is not None:
            log.error("execution %s crashed in the worker", attempt.id, exc_info=task.exception())

    async def _heartbeat_loop(self) -> None:
        while not self._stopping:
            await asyncio.sleep(self.heartbeat_interval)
            body = protocol.HeartbeatRequest(execution_ids=list(self._attempts))
            try:
                response = await self._call("POST", f"/{self.worker_id}/heartbeat", body)
            except _ServerForgotWorker:
                await self._register()
                continue
            except PolosApiError as exc:
                log.error("heartbeat refused: %s", exc)
                continue
            answer = protocol.HeartbeatResponse.model_validate_json(response.content)
            if answer.re_register:
                log.warning("the server forgot this worker; registering again")
                await self._register()
            for execution_id in answer.lost:
                attempt = self._attempts.get(execution_id)
                if attempt is not None:
                    attempt.abandon("no longer this worker's (cancelled, or its lease ran out)")

    # -- introspection -----------------------------------------------------------------

    @property
    def running(self) -> int:
        return len(self._attempts)


def _reports_in_flight() -> int:
    """POLOS_REPORTS_IN_FLIGHT (for benchmarks): report requests a worker keeps in flight."""
    value = int(os.environ.get("POLOS_REPORTS_IN_FLIGHT", DEFAULT_IN_FLIGHT))
    if value < 1:
        raise ValueError(f"POLOS_REPORTS_IN_FLIGHT must be at least 1, not {value}")
    return value


def _claim_cohorts() -> int:
    """POLOS_CLAIM_COHORTS (for benchmarks): into how many claims a worker splits its slots."""
    value = int(os.environ.get("POLOS_CLAIM_COHORTS", CLAIM_COHORTS))
    if value < 1:
        raise ValueError(f"POLOS_CLAIM_COHORTS must be at least 1, not {value}")
    return value


def _log_to_file(path: str) -> None:
    handler = logging.FileHandler(path)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    if root.level > logging.INFO or root.level == logging.NOTSET:
        root.setLevel(logging.INFO)
