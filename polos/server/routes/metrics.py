"""`GET /metrics`: Prometheus text format (polos/server/metrics.py, docs/observability.md).

Outside `/api/v1` and the OpenAPI description, and not project-scoped: it shows every
project. In local mode it is open like the rest of the API; when the server requires API keys,
a scraper sends one (`Authorization: Bearer <key>`, any project's key)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from polos.server.metrics import CONTENT_TYPE_LATEST
from polos.server.state import state_of

router = APIRouter()


@router.get("/metrics", include_in_schema=False)
async def metrics(request: Request) -> Response:
    body = await state_of(request).metrics.render()
    return Response(body, media_type=CONTENT_TYPE_LATEST)
