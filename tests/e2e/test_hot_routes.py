"""The hot routes (claim, reports, heartbeat, run) are answered by `polos.server.hot_routes`
before FastAPI's routing. For every edge case, a server with them answers exactly as a server
without them (POLOS_HOT_ROUTES=off): the validation of query parameters and wrong methods are
left to FastAPI, errors the routes raise go through the app's handlers."""

from __future__ import annotations

from typing import Any

import httpx

from tests.e2e.conftest import ServerFactory

RUN = "/api/v1/workflows/nothing_here/run"
# (method, path, query, body): each request is sent to both servers.
CASES: list[tuple[str, str, list[tuple[str, str]], bytes]] = [
    *[("POST", RUN, [("wait_seconds", v)], b"{}") for v in ("-1", "abc", "nan", "inf", "1e9", "")],
    ("POST", RUN, [("wait_seconds", "0"), ("other", "1")], b"{}"),
    ("POST", RUN, [("wait_seconds", "0"), ("wait_seconds", "x")], b"{}"),
    ("POST", RUN, [], b"{not json"),
    ("POST", RUN, [], b'{"payload": 1, "queue_name": 5}'),
    ("POST", "/api/v1/workflows/%20/run", [], b"{}"),
    ("POST", "/api/v1/workflows/a%2Fb/run", [], b"{}"),
    ("POST", "/api/v1/workers/nobody/reports", [], b'{"items": []}'),
    ("POST", "/api/v1/workers/nobody/reports", [], b'{"items": 3}'),
    ("POST", "/api/v1/workers/nobody/claim", [], b"{not json"),
    ("POST", "/api/v1/workers/nobody/claim", [], b'{"max": 1, "wait_seconds": 0}'),
    ("POST", "/api/v1/workers/nobody/claim", [("extra", "1")], b'{"max": 0}'),
    ("POST", "/api/v1/workers/nobody/heartbeat", [], b'{"execution_ids": []}'),
    ("POST", "/api/v1/workers/nobody/heartbeat", [], b"[]"),
    ("GET", "/api/v1/workers/nobody/claim", [], b""),
    ("PUT", "/api/v1/workers/nobody/reports", [], b"{}"),
    ("POST", "/api/v1/workers/a%2Fb/claim", [], b"{}"),
    ("POST", "/api/v1/workers/nobody/claim/", [], b"{}"),
    ("POST", "/api/v1/workers//claim", [], b"{}"),
]


def _answer(response: httpx.Response) -> dict[str, Any]:
    return {
        "status": response.status_code,
        "content_type": response.headers.get("content-type"),
        "location": response.headers.get("location", "").rpartition(":")[2].partition("/")[2],
        "body": response.content,
    }


async def test_answers_match_fastapis(start_server: ServerFactory) -> None:
    hot = start_server()
    plain = start_server(env={"POLOS_HOT_ROUTES": "off"})
    async with (
        httpx.AsyncClient(base_url=hot.url, timeout=30) as a,
        httpx.AsyncClient(base_url=plain.url, timeout=30) as b,
    ):
        for method, path, query, body in CASES:
            answers = [
                _answer(await c.request(method, path, params=query, content=body)) for c in (a, b)
            ]
            assert answers[0] == answers[1], (method, path, query, body)
        # And a real run through the hot route: the same answer's shape as FastAPI's.
        status = (await a.post(RUN, json={})).status_code
        assert status == (await b.post(RUN, json={})).status_code
