"""The test clock (only with `--test-clock`): move the server's time forward so that timers,
schedules and timeouts due by then fire now. Leases and heartbeats move along with it, so a
jump expires nothing by itself.

`polos.testing` drives time with three calls: `GET .../agenda` (is anything running or due,
and when does the next thing fall due), `POST .../sweep` (fire what is due now, without waiting
for the clock loop's next tick) and `POST .../clock/advance`."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from polos import protocol
from polos.server.clock import sweep as sweep_due
from polos.server.http import ApiError, body_schema, json_response, parse_body
from polos.server.state import ServerState, state_of
from polos.store.agenda_ops import SAMPLE, AgendaRows
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


async def _agenda(state: ServerState) -> tuple[protocol.ClockAgenda, set[str]]:
    """The agenda, and the projects that have work a live worker will take."""
    now = state.clock.now()
    heard_after = now - state.settings.lease_seconds

    async def read(tx: StoreTx) -> AgendaRows:
        return await tx.clock_agenda(now, heard_after)

    rows = await state.store.read(read)
    busy = [f"{wf} {eid} running" for wf, eid in rows.running_sample]
    runnable = unserved = 0
    projects: set[str] = set()
    for (project, workflow_id), (count, example) in sorted(rows.due_queued.items()):
        if workflow_id in rows.served.get(project, ()):
            runnable += count
            projects.add(project)
            busy.append(f"{workflow_id} {example} queued")
        else:
            unserved += count
    upcoming: list[tuple[float, str]] = []
    if rows.next_timer is not None:
        upcoming.append(rows.next_timer)
    if rows.next_schedule_at is not None:
        upcoming.append((rows.next_schedule_at, "schedule"))
    if rows.next_ready_at is not None:
        upcoming.append((rows.next_ready_at, "retry"))
    first = min(upcoming) if upcoming else None
    due = rows.due_timers + rows.due_schedules
    agenda = protocol.ClockAgenda(
        now=now,
        offset=state.clock.offset,
        settled=rows.running == 0 and runnable == 0 and due == 0,
        running=rows.running,
        runnable=runnable,
        unserved=unserved,
        due=due,
        next_due_at=first[0] if first else None,
        next_due_kind=first[1] if first else None,
        busy=busy[:SAMPLE],
    )
    return agenda, projects


@router.get(
    "/agenda",
    response_model=protocol.ClockAgenda,
    summary="What is running, what is due now, and when the next thing falls due",
)
async def read_agenda(request: Request) -> Response:
    _require(request)
    agenda, _ = await _agenda(state_of(request))
    return json_response(agenda)


@router.post(
    "/sweep",
    response_model=protocol.ClockAgenda,
    summary="Fire the timers and schedule slots due now, then answer the agenda",
)
async def sweep(request: Request) -> Response:
    """What the clock loop does on its next tick, done now: a caller that just moved the
    clock (or waited for real time to pass) need not wait for the tick. Parked claims of the
    projects with due work are woken too (a retry that a jump made due has no wake-up of its
    own before its real-time delay)."""
    _require(request)
    state = state_of(request)
    agenda, _ = await _agenda(state)
    if agenda.due:
        await sweep_due(state)
    agenda, projects = await _agenda(state)
    for project in projects:
        state.signals.work_available(project)
    return json_response(agenda)
