"""uvicorn's HTTP protocol with two changes.

- A request its parser rejects (a NUL or a control character in a header, say) gets the API's
  JSON error body instead of plain text. The parser is right to refuse such requests; the answer
  should still look like every other 4xx.
- A response's head and its first body chunk go out in one write. uvicorn writes the head as
  soon as the app sends `http.response.start`, then the body: two `send` syscalls, and on
  loopback the first wakes the client for a head it cannot use without the body. Every answer
  of the hot routes is one head and one body, four of them on a single `Workflow.run`'s path.
  uvicorn still formats and checks both (the cycle writes into `_Held` in the meantime); only
  the moment of the write changes. Only an answer that declares its length is held: a
  streamed one (an event stream, whose first event may come much later) gets its head at
  once, as before.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol, RequestResponseCycle

from polos.protocol import ErrorBody, ErrorDetail


class JsonErrorHttpToolsProtocol(HttpToolsProtocol):
    def send_400_response(self, msg: str) -> None:
        body = ErrorBody(error=ErrorDetail(code="invalid_http", message=msg)).model_dump_json()
        content = body.encode()
        head = [
            b"HTTP/1.1 400 Bad Request\r\n",
            b"content-type: application/json\r\n",
            b"content-length: " + str(len(content)).encode("ascii") + b"\r\n",
            b"connection: close\r\n",
            b"\r\n",
        ]
        self.transport.write(b"".join(head) + content)
        self.transport.close()

    def _start_asgi_task(self, cycle: RequestResponseCycle, app: Any) -> None:
        # Every request's cycle (the first and pipelined ones) starts here, before its task
        # runs: the cycle becomes one that holds its head until the body.
        if type(cycle) is RequestResponseCycle:
            cycle.__class__ = OneWriteCycle
        super()._start_asgi_task(cycle, app)


def _declares_length(start: Any) -> bool:
    return any(name.lower() == b"content-length" for name, _ in start.get("headers", ()))


class _Held:
    """Stands in for the connection's transport between a response's head and its first body
    chunk: keeps what uvicorn writes, and whether it asked to close."""

    __slots__ = ("chunks", "close_requested", "real")

    def __init__(self, real: asyncio.Transport) -> None:
        self.real = real
        self.chunks: list[bytes] = []
        self.close_requested = False

    def write(self, data: bytes) -> None:
        self.chunks.append(data)

    def close(self) -> None:
        self.close_requested = True

    def is_closing(self) -> bool:
        return self.real.is_closing()

    def release(self) -> None:
        """Write what was kept in one go, then close if uvicorn asked to."""
        if self.chunks and not self.real.is_closing():
            self.real.write(b"".join(self.chunks))
        self.chunks = []
        if self.close_requested:
            self.real.close()


class OneWriteCycle(RequestResponseCycle):
    _held: _Held | None = None

    async def send(self, message: Any) -> None:
        held = self._held
        if held is None:
            if (
                self.response_started
                or message.get("type") != "http.response.start"
                or not _declares_length(message)
            ):
                await super().send(message)
                return
            held = self._held = _Held(self.transport)
            self.transport = held  # type: ignore[assignment]
            try:
                await super().send(message)
            except BaseException:
                self._release()
                raise
            return
        try:
            await super().send(message)
        finally:
            self._release()

    async def run_asgi(self, app: Any) -> None:
        try:
            await super().run_asgi(app)
        finally:
            # The app ended between the head and the body (uvicorn then closes): the head
            # goes out as it would have.
            self._release()

    def _release(self) -> None:
        held = self._held
        if held is not None:
            self._held = None
            self.transport = held.real
            held.release()
