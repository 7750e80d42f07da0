"""The hot routes, answered before FastAPI sees the request.

A worker's claims, reports and heartbeats and a client's `POST .../run` are most of the
requests a busy server answers, and each is one path parameter plus a body the route parses
itself (`http.parse_body`). FastAPI spends ≈ 130-150 µs of CPU per such request finding the
route among the included routers and solving its (empty) dependencies, several times what
the route itself costs for a small report; on a single execution's path (four requests) that
was ≈ 0.5 ms of the server's ≈ 2.8 ms per call (docs/performance.md). Its own middleware
(error catching, telemetry, body limits: the routes enforce their own limits) cost another
≈ 6 µs of an in-process request's ≈ 28, so `app.PolosApp` routes a matched request straight
to a short chain of its own: the request counter, authentication, then `serve`.

The routes themselves are the same functions FastAPI calls (their OpenAPI description is
unchanged). A request `match` does not recognise, including one whose query string it would
have to validate differently, goes on to FastAPI untouched, so 404/405/422 answers keep
FastAPI's wording. Errors are answered by the same handlers as the app's.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

from fastapi import Request
from fastapi.responses import Response

from polos import protocol
from polos.server.auth import Receive, Scope, Send
from polos.server.http import ApiError, error_response
from polos.server.routes import executions, workers
from polos.store.base import StoreUnavailable

log = logging.getLogger("polos.server")

Handler = Callable[..., Awaitable[Response]]


@dataclass(frozen=True)
class HotRoute:
    method: str
    pattern: re.Pattern[str]
    param: str
    handler: Handler
    # Query parameters the route takes (name -> parser returning None when FastAPI would
    # refuse the value); any other parameter sends the request to FastAPI.
    query: dict[str, Callable[[str], Any]]


def _segment(prefix: str, suffix: str) -> re.Pattern[str]:
    # Starlette's `str` convertor: one non-empty path segment.
    return re.compile(re.escape(prefix) + r"([^/]+)" + re.escape(suffix) + r"\Z")


def _wait_seconds(raw: str) -> float | None:
    try:
        value = float(raw)
    except ValueError:
        return None
    if not math.isfinite(value) or not 0 <= value <= protocol.MAX_LONG_POLL_SECONDS:
        return None
    return value


_WORKERS = f"{protocol.API_PREFIX}/workers/"
ROUTES: tuple[HotRoute, ...] = (
    HotRoute("POST", _segment(_WORKERS, "/reports"), "worker_id", workers.report, {}),
    HotRoute("POST", _segment(_WORKERS, "/claim"), "worker_id", workers.claim, {}),
    HotRoute("POST", _segment(_WORKERS, "/heartbeat"), "worker_id", workers.heartbeat, {}),
    HotRoute(
        "POST",
        _segment(f"{protocol.API_PREFIX}/workflows/", "/run"),
        "workflow_id",
        executions.run_workflow,
        {"wait_seconds": _wait_seconds},
    ),
)


def _route_path(scope: Scope) -> str:
    # As Starlette's routing sees it: without the app's root path, when one is set.
    path: str = scope["path"]
    root: str = scope.get("root_path", "")
    if root and path.startswith(root) and path[len(root) : len(root) + 1] == "/":
        return path[len(root) :]
    return path


def match(scope: Scope) -> tuple[HotRoute, dict[str, Any]] | None:
    """The hot route of an HTTP request and its arguments, or None: FastAPI's request."""
    method = scope["method"]
    path = _route_path(scope)
    for route in ROUTES:
        if route.method != method:
            continue
        found = route.pattern.match(path)
        if found is None:
            continue
        args: dict[str, Any] = {route.param: found.group(1)}
        query = scope.get("query_string", b"")
        if query:
            try:
                pairs = parse_qsl(
                    query.decode("latin-1"), keep_blank_values=True, strict_parsing=True
                )
            except ValueError:
                return None
            for name, raw in pairs:
                parse = route.query.get(name)
                if parse is None or name in args:
                    return None  # unknown or repeated: FastAPI's business
                value = parse(raw)
                if value is None:
                    return None  # FastAPI answers with its validation error
                args[name] = value
        return route, args
    return None


MATCHED = "polos.hot_route"  # the scope key `PolosApp` leaves the match of `match` under


async def serve(scope: Scope, receive: Receive, send: Send) -> None:
    """Answer a request `match` recognised (its match under `MATCHED` in the scope)."""
    route, args = scope[MATCHED]
    try:
        response = await route.handler(request=Request(scope, receive), **args)
    except Exception as exc:
        response = error_answer(exc)
    await response(scope, receive, send)


def error_answer(exc: Exception) -> Response:
    """The app's answer to an exception a route raised (also used by `create_app`)."""
    if isinstance(exc, ApiError):
        return error_response(exc.status, exc.code, exc.message)
    if isinstance(exc, StoreUnavailable):
        log.warning("answered 503: %s", exc)
        return error_response(503, "database_unavailable", str(exc))
    log.error("internal error", exc_info=exc)
    return error_response(500, "internal_error", f"internal error: {type(exc).__name__}")
