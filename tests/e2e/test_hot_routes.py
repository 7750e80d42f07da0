"""The hot routes (claim, reports, heartbeat, run) are answered by `polos.server.hot_routes`
before FastAPI's routing. For every edge case, a server with them answers exactly as a server
without them (POLOS_HOT_ROUTES=off): the validation of query parameters and wrong methods are
left to FastAPI, errors the routes raise go through the app's handlers."""

from __future__ import annotations

import socket
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


def _first_read(port: int, request: bytes) -> bytes:
    """What one `recv` gets after sending `request`: the whole answer only if the server wrote
    it at once (on loopback a write arrives whole; two writes are read apart whenever the
    reader wakes between them)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(request)
        return sock.recv(65536)


def _complete(answer: bytes) -> bool:
    head, sep, body = answer.partition(b"\r\n\r\n")
    length = [
        line.split(b":")[1]
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    ]
    return bool(sep) and len(length) == 1 and len(body) == int(length[0])


def test_an_answer_goes_out_in_one_write(start_server: ServerFactory) -> None:
    server = start_server()
    body = b'{"execution_ids": []}'
    requests = [
        # a hot route, answered by the route; one refused by it; one of FastAPI's
        b"POST /api/v1/workers/nobody/heartbeat HTTP/1.1\r\nhost: t\r\ncontent-type: "
        b"application/json\r\ncontent-length: %d\r\n\r\n%s" % (len(body), body),
        b"POST /api/v1/workers/nobody/claim HTTP/1.1\r\nhost: t\r\ncontent-length: 2\r\n\r\n{}",
        b"GET /health HTTP/1.1\r\nhost: t\r\n\r\n",
    ]
    for request in requests:
        for _ in range(50):  # a race each time if head and body were written apart
            answer = _first_read(server.port, request)
            assert _complete(answer), answer


def test_a_stream_without_events_gets_its_head_at_once(start_server: ServerFactory) -> None:
    """Only answers that declare their length wait to go out whole: an event stream's head
    comes before its first event, however late that is."""
    server = start_server()
    request = b"GET /api/v1/events/stream?topic=nothing-yet HTTP/1.1\r\nhost: t\r\n\r\n"
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(request)
        head = sock.recv(65536)
    assert head.startswith(b"HTTP/1.1 200 OK\r\n"), head
    assert b"text/event-stream" in head
