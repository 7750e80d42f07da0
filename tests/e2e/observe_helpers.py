"""Helpers of the observability tests (the API of the CLI and the dashboard, and the CLI):
a server with one worker serving tests/e2e/apps/observe.py per test module and backend, and
plain HTTP reads of the API.

    from tests.e2e.observe_helpers import observe_server_fixture as observe_server_fixture
    from tests.e2e.observe_helpers import observe_server_module as observe_server_module
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from polos import protocol
from tests.e2e.conftest import Processes, Server, _make_server, _make_worker, _used, new_database

OBSERVE_APP = "tests.e2e.apps.observe"
TIMEOUT = 60.0


@pytest.fixture(scope="module", name="_observe_server")
def observe_server_module(
    procs: Processes, backend: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    server = _make_server(procs, new_database(backend, tmp_path_factory.mktemp("observe")))
    _make_worker(procs, server, OBSERVE_APP, capacity=100)
    yield server
    for worker in server.workers:
        if worker.proc.alive():
            worker.stop()
    server.stop()


@pytest.fixture(name="observe_server")
def observe_server_fixture(_observe_server: Server, request: pytest.FixtureRequest) -> Server:
    """A server with one worker (capacity 100) serving the observe app, shared by the tests
    of one module. A test module uses it by importing `observe_server_module` and
    `observe_server_fixture` (as themselves)."""
    for worker in _observe_server.workers:
        assert worker.proc.alive(), f"the observe worker died:\n{worker.proc.log()}"
    _used(request).append(_observe_server)
    return _observe_server


def api_get(server: Server, path: str, project: str | None = None, **params: Any) -> httpx.Response:
    headers = {"X-Project-ID": project} if project else {}
    return httpx.get(
        f"{server.url}{protocol.API_PREFIX}{path}", params=params, headers=headers, timeout=30
    )


def get_json(server: Server, path: str, **params: Any) -> Any:
    response = api_get(server, path, **params)
    assert response.status_code == 200, f"GET {path} {params}: {response.text}"
    return response.json()


def counts(**given: int) -> dict[str, int]:
    """A StatusCounts body: the given statuses, zeros elsewhere, and the total."""
    statuses = ("queued", "running", "waiting", "completed", "failed", "cancelled")
    out = {s: given.get(s, 0) for s in statuses}
    out["total"] = sum(out.values())
    return out
