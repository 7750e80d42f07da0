"""The server's HTTP cycle (`polos.server.uvicorn_protocol.OneWriteCycle`) sends the head of a
response that declares its length with its body, in one write, and otherwise behaves as
uvicorn's: a streamed answer's head at once, an app that fails between head and body, a
connection that must close.

uvicorn's own cycle runs here on a transport that records its writes (the socket's stand-in);
tests/e2e/test_hot_routes.py checks the same on a real server's socket."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from uvicorn.protocols.http.flow_control import FlowControl
from uvicorn.protocols.http.httptools_impl import RequestResponseCycle

from polos.server.uvicorn_protocol import OneWriteCycle


class RecordingTransport:
    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.closed = False

    def write(self, data: bytes) -> None:
        assert not self.closed, "write after close"
        self.writes.append(bytes(data))

    def close(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


def _cycle(transport: RecordingTransport, keep_alive: bool = True) -> OneWriteCycle:
    cycle = RequestResponseCycle(
        scope={"type": "http", "method": "POST", "path": "/x", "headers": []},  # type: ignore[typeddict-item]
        transport=transport,  # type: ignore[arg-type]
        flow=FlowControl(transport),  # type: ignore[arg-type]
        logger=logging.getLogger("test.uvicorn"),
        access_logger=logging.getLogger("test.uvicorn.access"),
        access_log=False,
        default_headers=[(b"server", b"test")],
        message_event=asyncio.Event(),
        expect_100_continue=False,
        keep_alive=keep_alive,
        on_response=lambda: None,
    )
    cycle.more_body = False
    cycle.__class__ = OneWriteCycle  # as the protocol does before the request's task starts
    return cycle  # type: ignore[return-value]


def _start(status: int = 200, length: int | None = 2) -> dict[str, Any]:
    headers = [(b"content-type", b"application/json")]
    if length is not None:
        headers.append((b"content-length", str(length).encode()))
    return {"type": "http.response.start", "status": status, "headers": headers}


async def test_head_and_body_go_out_in_one_write() -> None:
    transport = RecordingTransport()

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send(_start())
        assert transport.writes == []  # the head waits for the body
        await send({"type": "http.response.body", "body": b"{}"})

    await _cycle(transport).run_asgi(app)

    assert len(transport.writes) == 1
    head, _, body = transport.writes[0].partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 OK\r\n")
    assert b"server: test" in head and b"content-length: 2" in head
    assert body == b"{}"
    assert not transport.closed


async def test_a_streamed_answer_gets_its_head_at_once() -> None:
    """No length declared (an event stream, say): the head must not wait for a first chunk
    that may come much later."""
    transport = RecordingTransport()

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send(_start(length=None))  # no length: chunked, as uvicorn does it
        assert len(transport.writes) == 1  # the head is out before any event
        assert transport.writes[0].startswith(b"HTTP/1.1 200 OK\r\n")
        assert b"transfer-encoding: chunked" in transport.writes[0]
        await send({"type": "http.response.body", "body": b"one", "more_body": True})
        await send({"type": "http.response.body", "body": b"two", "more_body": False})

    await _cycle(transport).run_asgi(app)

    assert transport.writes[1:] == [b"3\r\none\r\n", b"3\r\ntwo\r\n0\r\n\r\n"]


async def test_a_connection_that_must_close_closes_after_the_write() -> None:
    transport = RecordingTransport()

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send(_start())
        await send({"type": "http.response.body", "body": b"{}"})

    await _cycle(transport, keep_alive=False).run_asgi(app)

    assert len(transport.writes) == 1
    assert b"connection: close" in transport.writes[0]
    assert transport.writes[0].endswith(b"{}")
    assert transport.closed


async def test_an_app_that_fails_after_the_head_still_sends_it_then_closes() -> None:
    transport = RecordingTransport()

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send(_start())
        raise RuntimeError("boom")

    await _cycle(transport).run_asgi(app)  # uvicorn logs the error and closes

    assert len(transport.writes) == 1
    assert transport.writes[0].startswith(b"HTTP/1.1 200 OK\r\n")
    assert transport.closed


async def test_an_app_that_fails_before_the_head_gets_uvicorns_500_in_one_write() -> None:
    transport = RecordingTransport()

    async def app(scope: Any, receive: Any, send: Any) -> None:
        raise RuntimeError("boom")

    await _cycle(transport).run_asgi(app)

    assert len(transport.writes) == 1
    assert transport.writes[0].startswith(b"HTTP/1.1 500 Internal Server Error\r\n")
    assert transport.writes[0].endswith(b"Internal Server Error")
    assert transport.closed
