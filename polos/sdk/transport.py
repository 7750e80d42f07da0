"""HTTP transport of the client and the worker: keep-alive connections, through the lean
HTTP/1.1 client of `polos.sdk.http11` for plain http:// servers and aiohttp for https:// and
for streams.

Why aiohttp and not httpx: on the hot path (submit, claim, report, wait) a request costs
~0.25 ms of client CPU with aiohttp against ~0.8 ms with httpx (measured on this project's
machine; docs/decisions.md), and a single execution makes four or five of them.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp
import orjson

from polos.sdk.http11 import ConnectFailed, ExchangeFailed, Http11Pool


class TransportError(Exception):
    """The server could not be reached, or the connection broke (retry later)."""


class StreamRefused(Exception):
    """A streaming request was answered with an error status."""

    def __init__(self, response: Response) -> None:
        super().__init__(f"HTTP {response.status_code}")
        self.response = response


@dataclass(slots=True)
class Response:
    status_code: int
    content: bytes
    path: str

    def json(self) -> Any:
        return orjson.loads(self.content)

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", "replace")


def split_urls(urls: str) -> list[str]:
    """`http://a:8080,http://b:8080` -> the server URLs, in order of preference."""
    found = [u.strip().rstrip("/") for u in urls.split(",") if u.strip()]
    if not found:
        raise ValueError(f"no server URL in {urls!r}")
    return found


class HttpTransport:
    """One keep-alive connection pool per event loop (aiohttp sessions are bound to one).

    Given several server URLs (replicas on one database), it uses one at a time and moves to
    the next when a server cannot be reached: a request that could not connect is sent to
    the next server at once (it never reached the first); one that broke midway raises
    `TransportError`, and the caller's retry goes to the next server.
    """

    def __init__(
        self,
        base_url: str,
        headers: Mapping[str, str],
        timeout: float,
        max_connections: int = 64,
    ) -> None:
        self.base_urls = split_urls(base_url)
        self._current = 0
        self._headers = dict(headers)
        self._timeout = timeout
        self._max_connections = max_connections
        self._session: aiohttp.ClientSession | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closer: AsyncGenerator[None, None] | None = None
        # Per server (index in base_urls): the lean HTTP/1.1 client of plain http:// URLs.
        self._pools: dict[int, Http11Pool] = {}
        self._pool_closers: dict[int, AsyncGenerator[None, None]] = {}

    @property
    def base_url(self) -> str:
        return self.base_urls[self._current]

    def _next_server(self) -> None:
        self._current = (self._current + 1) % len(self.base_urls)

    async def _current_session(self) -> aiohttp.ClientSession:
        loop = asyncio.get_running_loop()
        if self._session is None or self._loop is not loop or self._session.closed:
            session = aiohttp.ClientSession(
                headers=self._headers,
                connector=aiohttp.TCPConnector(
                    limit=self._max_connections, keepalive_timeout=60, ttl_dns_cache=300
                ),
                timeout=aiohttp.ClientTimeout(total=self._timeout, connect=5.0),
                json_serialize=lambda v: orjson.dumps(v).decode(),
            )
            # Clients are often never closed (`client = PolosClient()` in a script). An
            # async generator started on this loop is closed by the loop's shutdown
            # (asyncio.run calls shutdown_asyncgens), which closes the session cleanly.
            self._closer = _close_at_loop_shutdown(session)
            await self._closer.__anext__()
            self._session, self._loop = session, loop
        return self._session

    async def request(
        self,
        method: str,
        path: str,
        *,
        content: str | bytes | None = None,
        params: Mapping[str, str] | None = None,
        timeout: float | None = None,
    ) -> Response:
        if isinstance(content, str):
            content = content.encode()
        if all(u.startswith("http://") for u in self.base_urls):
            return await self._request_plain(method, path, content, params, timeout)
        session = await self._current_session()
        kwargs: dict[str, Any] = {}
        if timeout is not None:
            kwargs["timeout"] = aiohttp.ClientTimeout(total=timeout, connect=5.0)
        for tried in range(len(self.base_urls)):
            url = self.base_url + path
            try:
                async with session.request(
                    method, url, data=content, params=params, **kwargs
                ) as response:
                    body = await response.read()
                    return Response(response.status, body, path)
            except aiohttp.ClientConnectorError as exc:
                # Not connected: the request never reached this server; try the next one.
                self._next_server()
                if tried == len(self.base_urls) - 1:
                    raise TransportError(f"{method} {url}: {exc}") from exc
            except (aiohttp.ClientError, TimeoutError, OSError) as exc:
                self._next_server()
                raise TransportError(f"{method} {url}: {type(exc).__name__}: {exc}") from exc
        raise AssertionError("unreachable")

    async def _request_plain(
        self,
        method: str,
        path: str,
        content: bytes | None,
        params: Mapping[str, str] | None,
        timeout: float | None,
    ) -> Response:
        """`request` through the lean HTTP/1.1 pools (plain http:// servers only)."""
        limit = self._timeout if timeout is None else timeout
        for tried in range(len(self.base_urls)):
            pool = await self._plain_pool()
            url = self.base_url + path
            try:
                async with asyncio.timeout(limit):
                    status, body = await pool.request(method, path, content, params)
                return Response(status, body, path)
            except ConnectFailed as exc:
                # Not connected: the request never reached this server; try the next one.
                self._next_server()
                if tried == len(self.base_urls) - 1:
                    raise TransportError(f"{method} {url}: {exc}") from exc
            except (ExchangeFailed, TimeoutError, OSError) as exc:
                self._next_server()
                raise TransportError(f"{method} {url}: {type(exc).__name__}: {exc}") from exc
        raise AssertionError("unreachable")

    async def _plain_pool(self) -> Http11Pool:
        loop = asyncio.get_running_loop()
        pool = self._pools.get(self._current)
        if pool is None or pool.loop is not loop:
            pool = self._pools[self._current] = Http11Pool(
                self.base_url, self._headers, self._max_connections
            )
            # As for the aiohttp session: a pool never closed is closed by its loop's shutdown.
            closer = self._pool_closers[self._current] = _close_at_loop_shutdown(pool)
            await closer.__anext__()
        return pool

    async def stream_lines(
        self, path: str, params: Mapping[str, str] | None = None
    ) -> AsyncIterator[str]:
        """The lines of a long response (server-sent events), as they arrive."""
        session = await self._current_session()
        url = self.base_url + path
        try:
            async with session.get(
                url, params=params, timeout=aiohttp.ClientTimeout(total=None, connect=5.0)
            ) as response:
                if response.status >= 400:
                    body = await response.read()
                    raise StreamRefused(Response(response.status, body, path))
                async for raw in response.content:
                    yield raw.decode("utf-8").rstrip("\r\n")
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            self._next_server()
            raise TransportError(f"GET {url}: {type(exc).__name__}: {exc}") from exc

    async def close(self) -> None:
        pools, self._pools = self._pools, {}
        for pool in pools.values():
            pool.close()
        session, self._session = self._session, None
        if session is not None and not session.closed:
            try:
                await session.close()
            except RuntimeError:  # its event loop is gone
                pass


async def _close_at_loop_shutdown(
    resource: aiohttp.ClientSession | Http11Pool,
) -> AsyncGenerator[None, None]:
    try:
        yield
    finally:
        if isinstance(resource, Http11Pool):
            resource.close()
        elif not resource.closed:
            await resource.close()
