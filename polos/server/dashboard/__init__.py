"""The web dashboard: static files (HTML, JavaScript, CSS; no build step) served at `/` and
`/ui/`. The page reads only the public HTTP API, from the same origin; nothing here touches the
store. The routes are left out of the OpenAPI schema (they are not part of the API).

Layout: design.md puts `dashboard/` beside `server/`; it lives under `server/` because the
server app mounts it and ships its files (package data), and nothing else imports it."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import FileResponse, Response
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

STATIC = Path(__file__).resolve().parent / "static"
UI_PREFIX = "/ui"

# The page loads its own scripts and styles only, and talks to this origin only: a payload
# that contains markup can do nothing even if a bug ever rendered it as HTML.
_PAGE_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}


class _Assets(StaticFiles):
    """Static files revalidated on every load (ETag), so an upgraded server's page never runs
    with a stale script."""

    async def get_response(self, path: str, scope: Scope) -> Response:
        response = await super().get_response(path, scope)
        response.headers["Cache-Control"] = "no-cache"
        response.headers["X-Content-Type-Options"] = "nosniff"
        return response


def mount(app: FastAPI) -> None:
    """Serve the dashboard at `/` and its assets under `/ui/`."""

    @app.get("/", include_in_schema=False)
    async def dashboard() -> Response:
        return FileResponse(STATIC / "index.html", headers=_PAGE_HEADERS)

    app.mount(UI_PREFIX, _Assets(directory=STATIC), name="ui")
