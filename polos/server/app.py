"""The server's ASGI app: `create_app(store, settings)`."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import AsyncIterator
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import Response
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

from polos import protocol
from polos.server import hot_routes
from polos.server.auth import ApiKeyMiddleware, ASGIApp, KeyCache, Receive, Scope, Send
from polos.server.clock import grant_restart_grace, run_clock
from polos.server.clocks import Clock
from polos.server.dashboard import mount as mount_dashboard
from polos.server.hot_routes import error_answer
from polos.server.http import ApiError, error_response
from polos.server.metrics import Metrics, RequestCounter
from polos.server.routes import (
    events,
    executions,
    health,
    metrics,
    observe,
    schedules,
    testing,
    workers,
    workflows,
)
from polos.server.settings import Settings
from polos.server.signals import Signals
from polos.server.state import ServerState
from polos.store.base import Store, StoreUnavailable

log = logging.getLogger("polos.server")

# Bodies parsed by the routes themselves (see http.parse_body): their schemas are added here.
_BODY_MODELS: list[type[BaseModel]] = [
    protocol.SubmitRequest,
    protocol.BatchSubmitRequest,
    protocol.RegisterWorkerRequest,
    protocol.HeartbeatRequest,
    protocol.ClaimRequest,
    protocol.ReportRequest,
    protocol.PublishRequest,
    protocol.ScheduleRequest,
    protocol.ClockAdvance,
]


class PolosApp(FastAPI):
    """FastAPI, except that a hot route (`hot_routes.match`) skips FastAPI's own layers and
    goes to `fast`: the request counter, authentication and the route (`hot_routes.serve`),
    the same chain a request through FastAPI passes, minus routing and middleware that only
    cost time there."""

    fast: ASGIApp | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        fast = self.fast
        if fast is not None and scope["type"] == "http":
            found = hot_routes.match(scope)
            if found is not None:
                scope["app"] = self  # what `Request.app` reads, as Starlette would set it
                scope[hot_routes.MATCHED] = found
                await fast(scope, receive, send)
                return
        await super().__call__(scope, receive, send)


def create_app(store: Store, settings: Settings) -> PolosApp:
    clock = Clock()
    state = ServerState(
        store=store,
        signals=Signals(clock),
        settings=settings,
        clock=clock,
        metrics=Metrics(store, clock, settings.lease_seconds),
    )
    state.signals.observer = state.metrics.observe
    store.attach(state.signals)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await store.open()
        await grant_restart_grace(store, settings, state.clock)
        sweeper = asyncio.create_task(run_clock(state), name="clock")
        try:
            yield
        finally:
            sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sweeper
            await store.close()

    app = PolosApp(
        title="Polos",
        version="0.1.0",
        description="A durable workflow engine: executions, steps, workers.",
        lifespan=lifespan,
    )
    app.state.polos = state
    keys = KeyCache(store)
    # POLOS_HOT_ROUTES=off sends every request through FastAPI (a diagnostic; the tests
    # compare both).
    if os.environ.get("POLOS_HOT_ROUTES", "on").lower() != "off":
        app.fast = RequestCounter(
            ApiKeyMiddleware(hot_routes.serve, keys=keys, required=settings.auth_required),
            metrics=state.metrics,
        )
    app.add_middleware(ApiKeyMiddleware, keys=keys, required=settings.auth_required)
    app.add_middleware(RequestCounter, metrics=state.metrics)
    app.include_router(health.router)
    app.include_router(metrics.router)
    app.include_router(executions.router)
    app.include_router(observe.router)
    app.include_router(workers.router)
    app.include_router(workflows.router)
    app.include_router(events.router)
    app.include_router(schedules.router)
    app.include_router(testing.router)
    mount_dashboard(app)

    @app.exception_handler(ApiError)
    async def api_error(_: Request, exc: ApiError) -> Response:
        return error_answer(exc)

    @app.exception_handler(RequestValidationError)
    async def validation_error(_: Request, exc: RequestValidationError) -> Response:
        parts = []
        for err in exc.errors():
            where = ".".join(str(p) for p in err.get("loc", ()))
            parts.append(f"{where}: {err.get('msg')}")
        return error_response(422, "invalid_request", "; ".join(parts))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException) -> Response:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return error_response(exc.status_code, code, str(exc.detail))

    @app.exception_handler(StoreUnavailable)
    async def store_unavailable(_: Request, exc: StoreUnavailable) -> Response:
        return error_answer(exc)

    @app.exception_handler(Exception)
    async def unexpected(_: Request, exc: Exception) -> Response:
        return error_answer(exc)

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(
                title=app.title,
                version=app.version,
                description=app.description,
                routes=app.routes,
            )
            components = schema.setdefault("components", {}).setdefault("schemas", {})
            for model in _BODY_MODELS:
                model_schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
                for name, definition in model_schema.pop("$defs", {}).items():
                    components.setdefault(name, definition)
                components[model.__name__] = model_schema
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app
