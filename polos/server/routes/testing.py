"""The test clock (only with `--test-clock`): move the server's time forward so that timers,
schedules and timeouts due by then fire now. Leases and heartbeats move along with it, so a
jump expires nothing by itself."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from polos import protocol
from polos.server.http import ApiError, body_schema, json_response, parse_body
from polos.server.state import state_of
from polos.store.base import StoreTx

router = APIRouter(prefix=f"{protocol.API_PREFIX}/testing", tags=["testing"])


def _require(request: Request) -> None:
    if not state_of(request).settings.test_clock:
        raise ApiError(404, "not_found", "the test clock is off (start with --test-clock)")


@router.get("/clock", response_model=protocol.ClockView, summary="The server's time")
async def read_clock(request: Request) -> Response:
    _require(request)
    clock = state_of(request).clock
    return json_response(protocol.ClockView(now=clock.now(), offset=clock.offset))


@router.post(
    "/clock/advance",
    response_model=protocol.ClockView,
    openapi_extra=body_schema(protocol.ClockAdvance),
    summary="Move the server's time forward",
)
async def advance_clock(request: Request) -> Response:
    _require(request)
    state = state_of(request)
    body = await parse_body(request, protocol.ClockAdvance, 4096)

    async def shift(tx: StoreTx) -> None:
        now = state.clock.now() + body.seconds
        await tx.touch_all_workers(now)
        await tx.shift_leases(body.seconds)

    await state.store.run(shift)
    state.clock.advance(body.seconds)
    return json_response(protocol.ClockView(now=state.clock.now(), offset=state.clock.offset))
