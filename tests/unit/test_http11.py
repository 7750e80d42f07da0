"""The lean HTTP/1.1 client (polos.sdk.http11) against real sockets: a scripted asyncio
server on 127.0.0.1 answers each request the way a test needs (normally, chunked, with
`Connection: close`, by hanging up, with garbage, too late). The end-to-end suites use the
same client against the real polos server for everything else."""

from __future__ import annotations

import asyncio
import os
import socket
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path

import pytest

from polos import protocol_socket
from polos.sdk.http11 import ConnectFailed, ExchangeFailed, Http11Pool
from polos.sdk.transport import HttpTransport, TransportError

# A handler reads one request (head and body) and writes whatever it likes.
Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter, bytes, bytes], Awaitable[None]]


async def _read_request(reader: asyncio.StreamReader) -> tuple[bytes, bytes] | None:
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except (asyncio.IncompleteReadError, ConnectionError):
        return None
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    body = await reader.readexactly(length) if length else b""
    return head, body


class ScriptedServer:
    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.connections = 0
        self.hangups = 0  # connections the client closed
        self.requests: list[tuple[bytes, bytes]] = []
        self.server: asyncio.Server | None = None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while not writer.is_closing():
                request = await _read_request(reader)
                if request is None:
                    self.hangups += 1
                    break
                self.requests.append(request)
                await self.handler(reader, writer, *request)
        finally:
            writer.close()

    async def start(self) -> str:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        port = self.server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"

    async def start_unix(self, path: str) -> None:
        self.server = await asyncio.start_unix_server(self._serve, path)

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()


def _answer(status: int, body: bytes, extra: bytes = b"") -> bytes:
    return (
        b"HTTP/1.1 %d X\r\ncontent-type: application/json\r\ncontent-length: %d\r\n%s\r\n"
        % (status, len(body), extra)
        + body
    )


async def _echo(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, head: bytes, body: bytes
) -> None:
    first = head.split(b"\r\n", 1)[0]
    writer.write(_answer(200, first + b"|" + body))
    await writer.drain()


@pytest.fixture
async def echo_server() -> AsyncIterator[tuple[ScriptedServer, str]]:
    server = ScriptedServer(_echo)
    url = await server.start()
    yield server, url
    await server.stop()


async def test_requests_reuse_one_keep_alive_connection(
    echo_server: tuple[ScriptedServer, str],
) -> None:
    server, url = echo_server
    pool = Http11Pool(url + "/prefix/", {"Authorization": "Bearer k"}, max_connections=4)
    status, body = await pool.request("POST", "/api/x", b'{"a":1}', {"q": "a b", "n": "1"})
    assert status == 200
    assert body == b'POST /prefix/api/x?q=a+b&n=1 HTTP/1.1|{"a":1}'
    status, body = await pool.request("GET", "/api/y", None, None)
    assert (status, body) == (200, b"GET /prefix/api/y HTTP/1.1|")
    assert server.connections == 1
    head = server.requests[0][0]
    assert b"\r\nAuthorization: Bearer k\r\n" in head
    assert b"\r\nHost: 127.0.0.1:" in head
    assert b"\r\nContent-Length: 7\r\n" in head
    assert b"Content-Length" not in server.requests[1][0]  # a GET without a body
    pool.close()


async def test_paths_are_percent_encoded(echo_server: tuple[ScriptedServer, str]) -> None:
    """IDs in paths come from callers: what a request line cannot carry is encoded (no header
    injection through an ID, no request the server cannot parse)."""
    _server, url = echo_server
    pool = Http11Pool(url, {}, max_connections=1)
    _, body = await pool.request("GET", "/executions/a b/é?#\r\nX: y/%41", None, {"k": "v w"})
    assert body == b"GET /executions/a%20b/%C3%A9%3F%23%0D%0AX:%20y/%41?k=v+w HTTP/1.1|"
    pool.close()


async def test_concurrent_requests_open_connections_up_to_the_limit(
    echo_server: tuple[ScriptedServer, str],
) -> None:
    server, url = echo_server
    pool = Http11Pool(url, {}, max_connections=3)
    answers = await asyncio.gather(
        *(pool.request("POST", f"/{i}", str(i).encode(), None) for i in range(12))
    )
    assert [b for _, b in answers] == [f"POST /{i} HTTP/1.1|{i}".encode() for i in range(12)]
    assert server.connections <= 3
    pool.close()


async def test_chunked_answer_and_connection_close() -> None:
    async def chunked_then_close(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, head: bytes, body: bytes
    ) -> None:
        if b" /chunked " in head:
            writer.write(
                b"HTTP/1.1 201 Created\r\ntransfer-encoding: chunked\r\n\r\n"
                b"3\r\nabc\r\n4\r\ndefg\r\n0\r\n\r\n"
            )
        else:
            # Announced, but the socket stays open (a slow or sloppy server): the client
            # must not send another request on it.
            writer.write(_answer(200, b"bye", b"connection: close\r\n"))
            await writer.drain()

    server = ScriptedServer(chunked_then_close)
    url = await server.start()
    pool = Http11Pool(url, {}, max_connections=2)
    assert await pool.request("GET", "/chunked", None, None) == (201, b"abcdefg")
    assert await pool.request("GET", "/close", None, None) == (200, b"bye")
    assert server.connections == 1
    # The server said it closes: the next request opens a new connection.
    assert await pool.request("GET", "/chunked", None, None) == (201, b"abcdefg")
    assert server.connections == 2
    pool.close()
    await server.stop()


async def test_a_hang_up_before_the_answer_is_an_exchange_failure() -> None:
    async def hang_up(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, head: bytes, body: bytes
    ) -> None:
        writer.close()

    server = ScriptedServer(hang_up)
    url = await server.start()
    pool = Http11Pool(url, {}, max_connections=2)
    with pytest.raises(ExchangeFailed):
        await pool.request("POST", "/x", b"{}", None)
    pool.close()
    await server.stop()


async def test_garbage_is_an_exchange_failure_and_the_connection_is_dropped() -> None:
    async def garbage(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, head: bytes, body: bytes
    ) -> None:
        writer.write(b"NOT HTTP AT ALL\r\n\r\n")
        await writer.drain()

    server = ScriptedServer(garbage)
    url = await server.start()
    pool = Http11Pool(url, {}, max_connections=2)
    for _ in range(2):
        with pytest.raises(ExchangeFailed):
            await pool.request("GET", "/x", None, None)
    assert server.connections == 2  # the broken connection was not reused
    pool.close()
    await server.stop()


async def test_a_timed_out_exchange_closes_its_connection() -> None:
    async def slow_first(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, head: bytes, body: bytes
    ) -> None:
        if b" /slow " in head:
            await asyncio.sleep(0.5)
        writer.write(_answer(200, b"late" if b" /slow " in head else b"ok"))
        await writer.drain()

    server = ScriptedServer(slow_first)
    url = await server.start()
    pool = Http11Pool(url, {}, max_connections=2)
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.1):
            await pool.request("GET", "/slow", None, None)
    # The late answer must not be taken for the next request's: a new connection is used,
    # and the old one is closed, not left open.
    assert await pool.request("GET", "/fast", None, None) == (200, b"ok")
    assert server.connections == 2
    for _ in range(100):
        if server.hangups:
            break
        await asyncio.sleep(0.02)
    assert server.hangups == 1
    pool.close()
    await server.stop()


async def test_refused_connection_is_connect_failed() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nobody listens once the socket is closed
    pool = Http11Pool(f"http://127.0.0.1:{port}", {}, max_connections=1)
    with pytest.raises(ConnectFailed):
        await pool.request("GET", "/", None, None)


def test_bad_urls_and_headers_are_refused() -> None:
    async def make(url: str, headers: dict[str, str]) -> None:
        Http11Pool(url, headers, max_connections=1)

    with pytest.raises(ValueError, match="plain http"):
        asyncio.run(make("https://example.invalid", {}))
    with pytest.raises(ValueError, match="invalid HTTP header"):
        asyncio.run(make("http://127.0.0.1:1", {"X-Key": "a\r\nInjected: yes"}))


async def test_transport_moves_to_the_next_server_when_one_refuses_connections(
    echo_server: tuple[ScriptedServer, str],
) -> None:
    _server, url = echo_server
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}"
    transport = HttpTransport(f"{dead},{url}", {}, timeout=5.0)
    response = await transport.request("POST", "/api/z", content='{"k": 1}')
    assert response.status_code == 200
    assert response.content == b'POST /api/z HTTP/1.1|{"k": 1}'
    assert transport.base_url == url
    await transport.close()

    only_dead = HttpTransport(dead, {}, timeout=5.0)
    with pytest.raises(TransportError):
        await only_dead.request("GET", "/api/z")
    await only_dead.close()


def test_a_transport_never_closed_is_closed_when_its_loop_shuts_down() -> None:
    """`client = PolosClient(...)` in a script that never closes it: `asyncio.run` ends the
    loop, and the connection is closed with it (no 'unclosed transport' warning)."""
    import threading

    ready = threading.Event()
    box: dict[str, object] = {}

    def serve() -> None:
        async def main() -> None:
            server = ScriptedServer(_echo)
            box["url"], box["server"] = await server.start(), server
            stop = asyncio.Event()
            box["stop"] = (asyncio.get_running_loop(), stop)
            ready.set()
            await stop.wait()
            await server.stop()

        asyncio.run(main())

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    assert ready.wait(5)
    server = box["server"]
    assert isinstance(server, ScriptedServer)
    transport = HttpTransport(str(box["url"]), {}, timeout=5.0)

    async def use() -> int:
        return (await transport.request("GET", "/x")).status_code

    assert asyncio.run(use()) == 200
    try:
        for _ in range(100):
            if server.hangups == 1:
                break
            threading.Event().wait(0.02)
        assert server.hangups == 1
    finally:
        stopper = box["stop"]
        assert isinstance(stopper, tuple)
        stopper[0].call_soon_threadsafe(stopper[1].set)
        thread.join(5)


# -- the Unix socket beside a loopback server (polos.protocol_socket) ------------------------


@pytest.fixture
def runtime(monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A short private XDG_RUNTIME_DIR (a socket's path has at most ≈ 100 bytes)."""
    with tempfile.TemporaryDirectory(prefix="pls") as d:
        os.chmod(d, 0o700)
        monkeypatch.setenv("XDG_RUNTIME_DIR", d)
        monkeypatch.delenv(protocol_socket.ENV, raising=False)
        yield Path(d)


async def _beside(url: str) -> tuple[ScriptedServer, str]:
    """An echo server on the Unix socket that belongs to `url`'s address and port."""
    port = int(url.rsplit(":", 1)[1])
    path = protocol_socket.socket_path("127.0.0.1", port, create_dir=True)
    assert path is not None
    unix = ScriptedServer(_echo)
    await unix.start_unix(path)
    return unix, path


async def test_a_socket_that_appears_later_is_used_by_the_next_connection(
    runtime: Path, echo_server: tuple[ScriptedServer, str]
) -> None:
    """A client (a worker) started before its server finds the socket once it is there."""
    tcp, url = echo_server
    pool = Http11Pool(url, {}, max_connections=4)
    assert (await pool.request("GET", "/a", None, None))[0] == 200
    assert tcp.connections == 1
    unix, _ = await _beside(url)
    pool.close()  # drop the kept-alive TCP connection
    status, body = await pool.request("GET", "/b", None, None)
    assert (status, body) == (200, b"GET /b HTTP/1.1|")
    assert (tcp.connections, unix.connections) == (1, 1)
    assert unix.requests[0][0].startswith(b"GET /b ")
    pool.close()
    await unix.stop()


async def test_a_socket_nobody_listens_on_falls_back_to_tcp(
    runtime: Path, echo_server: tuple[ScriptedServer, str]
) -> None:
    tcp, url = echo_server
    path = protocol_socket.socket_path("127.0.0.1", int(url.rsplit(":", 1)[1]), create_dir=True)
    assert path is not None
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as dead:
        dead.bind(path)  # a killed server's file: connecting to it is refused
    pool = Http11Pool(url, {}, max_connections=4)
    assert (await pool.request("GET", "/c", None, None)) == (200, b"GET /c HTTP/1.1|")
    assert tcp.connections == 1
    pool.close()


async def test_the_environment_keeps_a_client_on_tcp(
    runtime: Path, echo_server: tuple[ScriptedServer, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    tcp, url = echo_server
    unix, _ = await _beside(url)
    monkeypatch.setenv(protocol_socket.ENV, "0")
    pool = Http11Pool(url, {}, max_connections=4)
    assert (await pool.request("GET", "/d", None, None))[0] == 200
    assert (tcp.connections, unix.connections) == (1, 0)
    pool.close()
    await unix.stop()
