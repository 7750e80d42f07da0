"""Liveness: 200 once the server accepts work (the database is open)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from polos import protocol
from polos.server.http import json_response
from polos.server.state import state_of

router = APIRouter(tags=["health"])


@router.get("/health", response_model=protocol.HealthResponse, summary="Is the server up?")
async def health(request: Request) -> Response:
    state = state_of(request)
    return json_response(protocol.HealthResponse(status="ok", database=state.store.describe()))
