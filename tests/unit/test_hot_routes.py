"""Which requests `polos.server.hot_routes` answers itself, and with which arguments; the
answers themselves are compared with FastAPI's in tests/e2e/test_hot_routes.py."""

from __future__ import annotations

from typing import Any

import pytest

from polos.server import hot_routes
from polos.server.routes import executions, workers


def scope(method: str, path: str, query: bytes = b"", root_path: str = "") -> dict[str, Any]:
    return {
        "type": "http",
        "method": method,
        "path": path,
        "query_string": query,
        "root_path": root_path,
    }


def test_the_worker_protocol_and_run_are_matched_with_their_path_parameter() -> None:
    cases = {
        "/api/v1/workers/w-1/reports": (workers.report, {"worker_id": "w-1"}),
        "/api/v1/workers/w-1/claim": (workers.claim, {"worker_id": "w-1"}),
        "/api/v1/workers/w 1/heartbeat": (workers.heartbeat, {"worker_id": "w 1"}),
        "/api/v1/workflows/review/run": (executions.run_workflow, {"workflow_id": "review"}),
    }
    for path, (handler, args) in cases.items():
        found = hot_routes.match(scope("POST", path))
        assert found is not None, path
        assert found[0].handler is handler
        assert found[1] == args


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/v1/workers/w/claim"),
        ("POST", "/api/v1/workers//claim"),
        ("POST", "/api/v1/workers/a/b/claim"),
        ("POST", "/api/v1/workers/w/claim/"),
        ("POST", "/api/v1/workers/w/claimx"),
        ("POST", "/api/v1/workers/w"),
        ("POST", "/api/v1/workflows/batch_run"),
        ("POST", "/x/api/v1/workers/w/claim"),
    ],
)
def test_anything_else_goes_to_fastapi(method: str, path: str) -> None:
    assert hot_routes.match(scope(method, path)) is None


def test_wait_seconds_is_parsed_and_anything_doubtful_goes_to_fastapi() -> None:
    run = "/api/v1/workflows/review/run"
    found = hot_routes.match(scope("POST", run, b"wait_seconds=1.5"))
    assert found is not None and found[1]["wait_seconds"] == 1.5
    for query in (
        b"wait_seconds=-1",
        b"wait_seconds=abc",
        b"wait_seconds=nan",
        b"wait_seconds=",
        b"wait_seconds=1&wait_seconds=2",
        b"other=1",
        b"a=%zz&&",
    ):
        assert hot_routes.match(scope("POST", run, query)) is None, query
    # Parameters a route does not take are FastAPI's business (it ignores them): not matched.
    assert hot_routes.match(scope("POST", "/api/v1/workers/w/claim", b"x=1")) is None


def test_a_root_path_is_left_out_as_starlette_does() -> None:
    found = hot_routes.match(scope("POST", "/polos/api/v1/workers/w/claim", root_path="/polos"))
    assert found is not None and found[1] == {"worker_id": "w"}
    assert (
        hot_routes.match(scope("POST", "/polosx/api/v1/workers/w/claim", root_path="/polos"))
        is None
    )
