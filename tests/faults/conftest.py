"""Fixtures of the fault tests (issue 4): the end-to-end suite's real `polos-server` and worker
processes (tests/e2e/conftest.py). What fault injection needs besides is in harness.py.

`backend` and `start_server` are defined again here rather than shared with tests/e2e: the
e2e `backend` fixture drops every PostgreSQL database of its list when it is torn down, and a
second instance of it (one per directory) would drop the other suite's databases under its
session-scoped server. These keep their own list.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests import pg
from tests.e2e import conftest as e2e
from tests.e2e.conftest import BACKENDS, Processes, Server, ServerFactory, _make_server, _used

# Re-exported: pytest finds fixtures and hooks by name in a conftest module (the hook prints
# the logs of the processes a failed test used).
procs = e2e.procs
start_worker = e2e.start_worker
pytest_runtest_makereport = e2e.pytest_runtest_makereport

_pg_databases: list[str] = []


@pytest.fixture(scope="session", params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> Iterator[str]:
    """Every fault test runs once on SQLite and once on PostgreSQL."""
    yield str(request.param)
    while _pg_databases:
        pg.drop_database(_pg_databases.pop())


def new_database(backend: str, tmp: Path) -> str:
    if backend == "sqlite":
        return f"sqlite:///{tmp / f'polos-{time.monotonic_ns()}.db'}"
    try:
        url = pg.create_database("polos_faults")
    except RuntimeError as exc:
        pytest.fail(str(exc), pytrace=False)
    _pg_databases.append(url)
    return url


@pytest.fixture
def start_server(
    procs: Processes, tmp_path: Path, backend: str, request: pytest.FixtureRequest
) -> Iterator[ServerFactory]:
    """Start a server on a new database of the run's backend; stopped with its workers when the
    test ends (SIGTERM; the server must exit cleanly, with no traceback in its log)."""
    started: list[Server] = []

    def factory(lease_seconds: float | None = None) -> Server:
        server = _make_server(procs, new_database(backend, tmp_path), lease_seconds)
        started.append(server)
        _used(request).append(server)
        return server

    yield factory
    for server in started:
        for worker in server.workers:
            if worker.proc.alive():
                # A test that failed may have left a worker frozen (SIGSTOP): it could not
                # handle SIGTERM.
                os.kill(worker.proc.pid, signal.SIGCONT)
                worker.stop()
        if server.proc is not None and server.proc.alive():
            server.stop()
