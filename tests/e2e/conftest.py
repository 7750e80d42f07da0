"""Fixtures of the end-to-end suite: real `polos-server` processes, real worker processes,
talking HTTP on 127.0.0.1.

- `start_server(...)` starts a server on a free port and a temporary SQLite file and waits for
  GET /health; `Server.stop()` sends SIGTERM and waits; `Server.start()` starts it again on the
  same port and database (restart tests).
- `start_worker(server, module, ...)` starts `tests/e2e/apps/run_worker.py` and waits until the
  worker has registered its workflows.
- `shared` is one server with one worker serving every app, shared by the tests that need
  nothing special (starting processes is the slow part of this suite).
- Every process logs to a file; when a test fails, the logs of the processes it used are
  printed (pytest shows them with the failure). Everything started is stopped at the end.

No test sleeps to wait for state: `wait_until` polls a condition against a deadline.
"""

from __future__ import annotations

import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

import polos
from tests import pg
from tests.e2e.processes import (
    HOST,
    REPO,
    WORKER_START_DEADLINE,
    Processes,
    Server,
    ServerFactory,
    Worker,
    WorkerFactory,
    _env,
    async_wait_until,
    check_server_log,
    free_port,
    wait_until,
)

__all__ = [  # what tests import from here; the processes themselves live in processes.py
    "BACKENDS",
    "HOST",
    "MODEL_WORKER_TZ",
    "REPO",
    "Processes",
    "Server",
    "ServerFactory",
    "Worker",
    "WorkerFactory",
    "async_wait_until",
    "check_server_log",
    "free_port",
    "new_database",
    "wait_until",
]

APPS = [
    "tests.e2e.apps.seed",
    "tests.e2e.apps.engine",
    "tests.e2e.apps.errors",
    "tests.e2e.apps.steps",
    "tests.e2e.apps.limits",
]


@pytest.fixture(scope="session")
def procs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Processes]:
    registry = Processes(tmp_path_factory.mktemp("e2e-logs"))
    try:
        yield registry
    finally:
        registry.stop_all()


BACKENDS = ["sqlite", "postgres"]
_pg_databases: list[str] = []


@pytest.fixture(scope="session", params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> Iterator[str]:
    """Every test that starts servers runs once on SQLite and once on PostgreSQL."""
    yield str(request.param)
    while _pg_databases:
        pg.drop_database(_pg_databases.pop())


def new_database(backend: str, tmp: Path) -> str:
    """An empty database of `backend` for one server (or a cluster of replicas)."""
    if backend == "sqlite":
        return f"sqlite:///{tmp / f'polos-{time.monotonic_ns()}.db'}"
    try:
        url = pg.create_database("polos_e2e")
    except RuntimeError as exc:
        pytest.fail(str(exc), pytrace=False)
    _pg_databases.append(url)
    return url


def _make_server(
    procs: Processes,
    database_url: str,
    lease_seconds: float | None = None,
    port: int | None = None,
    env: dict[str, str] | None = None,
) -> Server:
    server = Server(procs, database_url, port or free_port(), lease_seconds, env=dict(env or {}))
    server.start()
    return server


def _make_worker(
    procs: Processes,
    server: Server,
    modules: list[str] | str = APPS,
    workflows: list[str] | None = None,
    capacity: int | None = None,
    wait_ready: bool = True,
    api_url: str | None = None,
    env: dict[str, str] | None = None,
) -> Worker:
    """`api_url` overrides the server's URL (e.g. a failover list of replicas); `env` is
    extra environment of the worker process (e.g. POLOS_WAIT_THRESHOLD_SECONDS)."""
    modules = [modules] if isinstance(modules, str) else modules
    args = [sys.executable, "-m", "tests.e2e.apps.run_worker", "--api-url", api_url or server.url]
    for m in modules:
        args += ["--module", m]
    for w in workflows or []:
        args += ["--workflow", w]
    if capacity is not None:
        args += ["--capacity", str(capacity)]
    proc = procs.new(f"worker-{server.port}", args, {**_env(server.url), **(env or {})})
    proc.spawn()
    worker = Worker(proc, server)
    server.workers.append(worker)
    if wait_ready:
        wait_for_worker(worker)
    return worker


def wait_for_worker(worker: Worker, registrations: int = 1) -> None:
    """Until the worker logged that it registered (`registrations` times in all)."""

    def ready() -> bool:
        if not worker.proc.alive():
            raise AssertionError(f"the worker exited early:\n{worker.proc.log()}")
        return worker.ready_count() >= registrations

    wait_until(ready, WORKER_START_DEADLINE, "the worker to register", interval=0.05)


@pytest.fixture
def start_server(
    procs: Processes, tmp_path: Path, backend: str, request: pytest.FixtureRequest
) -> Iterator[ServerFactory]:
    """Start servers for one test (each on a new database of the run's backend, unless
    `database_url` is given: replicas share one); they are stopped (SIGTERM) when it ends."""
    started: list[Server] = []

    def factory(
        lease_seconds: float | None = None,
        port: int | None = None,
        database_url: str | None = None,
        env: dict[str, str] | None = None,
        test_clock: bool = False,
    ) -> Server:
        """`env`: extra environment of the server (kept for restarts), e.g.
        POLOS_MAX_RETRIES; `test_clock`: POLOS_TEST_CLOCK=1 (POST .../testing/clock/advance)."""
        url = database_url or new_database(backend, tmp_path)
        extra = dict(env or {})
        if test_clock:
            extra["POLOS_TEST_CLOCK"] = "1"
        server = _make_server(procs, url, lease_seconds, port, extra)
        started.append(server)
        _used(request).append(server)
        return server

    yield factory
    for server in started:
        for worker in server.workers:
            if worker.proc.alive():
                worker.stop()
        if server.proc is not None and server.proc.alive():
            server.stop()


@pytest.fixture
def start_worker(procs: Processes) -> WorkerFactory:
    """Start a worker process against a server (stopped with its server)."""

    def factory(server: Server, *args: Any, **kwargs: Any) -> Worker:
        return _make_worker(procs, server, *args, **kwargs)

    return factory


@pytest.fixture(scope="session")
def _shared_server(
    procs: Processes, backend: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    server = _make_server(procs, new_database(backend, tmp_path_factory.mktemp("shared")))
    _make_worker(procs, server, APPS, capacity=200)
    yield server
    for worker in server.workers:
        if worker.proc.alive():
            worker.stop()
    server.stop()


@pytest.fixture
def shared(_shared_server: Server, request: pytest.FixtureRequest) -> Server:
    """A server with one worker serving every app (shared by the tests that use it)."""
    for worker in _shared_server.workers:
        assert worker.proc.alive(), f"the shared worker died:\n{worker.proc.log()}"
    _used(request).append(_shared_server)
    return _shared_server


@pytest.fixture
async def client(shared: Server) -> AsyncIterator[polos.PolosClient]:
    """A client of the shared server."""
    c = polos.PolosClient(api_url=shared.url)
    try:
        yield c
    finally:
        await c.close()


# The workflow-model apps (issue 5) that the shared test-clock server serves. Schedules and
# event triggers whose registration is the subject of a test are served by their own servers.
MODEL_APPS = [
    "tests.e2e.apps.model_waits",
    "tests.e2e.apps.model_events",
    "tests.e2e.apps.model_suspend",
    "tests.e2e.apps.model_state",
    "tests.e2e.apps.model_keys",
    "tests.e2e.apps.model_cancel",
    "tests.e2e.apps.model_retries",
]
# The clock server's worker runs in a timezone far from UTC (POSIX TZ syntax, no zoneinfo
# files needed): a naive datetime taken as local time instead of UTC would show.
MODEL_WORKER_TZ = "XST-5:30"


@pytest.fixture(scope="session")
def _clock_server(
    procs: Processes, backend: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    server = _make_server(
        procs,
        new_database(backend, tmp_path_factory.mktemp("clock")),
        env={"POLOS_TEST_CLOCK": "1"},
    )
    _make_worker(procs, server, MODEL_APPS, capacity=300, env={"TZ": MODEL_WORKER_TZ})
    yield server
    for worker in server.workers:
        if worker.proc.alive():
            worker.stop()
    server.stop()


@pytest.fixture
def clock_server(_clock_server: Server, request: pytest.FixtureRequest) -> Server:
    """A server started with the test clock and one worker serving MODEL_APPS, shared by the
    workflow-model tests. Its clock only moves forward: tests read `polos.testing.server_time`
    rather than assuming where it is."""
    for worker in _clock_server.workers:
        assert worker.proc.alive(), f"the clock server's worker died:\n{worker.proc.log()}"
    _used(request).append(_clock_server)
    return _clock_server


@pytest.fixture
async def clock_client(clock_server: Server) -> AsyncIterator[polos.PolosClient]:
    """A client of the shared test-clock server."""
    c = polos.PolosClient(api_url=clock_server.url)
    try:
        yield c
    finally:
        await c.close()


# --------------------------------------------------------------------------- failure logs


def _used(request: pytest.FixtureRequest) -> list[Server]:
    node: Any = request.node
    if not hasattr(node, "_polos_servers"):
        node._polos_servers = []
    servers: list[Server] = node._polos_servers
    return servers


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()
    if report.failed:
        servers: list[Server] = getattr(item, "_polos_servers", [])
        sections = []
        for server in servers:
            procs = server.history + [w.proc for w in server.workers]
            for proc in procs:
                text = proc.log()
                sections.append(
                    f"===== {proc.name} (pid {proc.popen.pid if proc.popen else '-'})"
                    f" {proc.log_path}\n{text[-20000:]}"
                )
        if sections:
            report.sections.append(("polos process logs", "\n".join(sections)))
