"""Cron schedules of workflows: create or change, list, look at their slots, delete."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from polos import protocol
from polos.model import Schedule
from polos.server import lifecycle, schedules
from polos.server.http import (
    ApiError,
    body_schema,
    check_identifier,
    json_response,
    parse_body,
    project_of,
)
from polos.server.state import state_of
from polos.server.views import iso
from polos.store.base import StoreTx

router = APIRouter(prefix=f"{protocol.API_PREFIX}/schedules", tags=["schedules"])

_ERRORS: dict[int | str, dict[str, object]] = {
    404: {"model": protocol.ErrorBody},
    422: {"model": protocol.ErrorBody},
}


def _view(s: Schedule) -> protocol.ScheduleView:
    return protocol.ScheduleView(
        id=s.id,
        workflow_id=s.workflow_id,
        key=s.key,
        cron=s.cron,
        timezone=s.timezone,
        catch_up_seconds=s.catch_up_seconds,
        next_fire_at=iso(s.next_fire_at) or "",
        last_fire_at=iso(s.last_fire_at),
    )


@router.post(
    "",
    response_model=protocol.ScheduleResponse,
    responses=_ERRORS,
    openapi_extra=body_schema(protocol.ScheduleRequest),
    summary="Create a schedule for (workflow, key), or change its cron, timezone or window",
)
async def create_schedule(request: Request) -> Response:
    state = state_of(request)
    project = project_of(request)
    body = await parse_body(request, protocol.ScheduleRequest, 64 * 1024)
    now = state.clock.now()
    try:
        schedules.next_slot(body.cron, body.timezone, now)
    except schedules.ScheduleError as exc:
        raise ApiError(422, "invalid_schedule", str(exc)) from None

    async def work(tx: StoreTx) -> Schedule:
        if not await tx.known_workflows(project, [body.workflow_id]):
            raise lifecycle.UnknownWorkflow(project, [body.workflow_id])
        return await schedules.upsert(
            tx,
            project,
            body.workflow_id,
            body.cron,
            body.timezone,
            body.key,
            body.catch_up_seconds,
            now,
        )

    try:
        schedule = await state.store.run(work)
    except lifecycle.UnknownWorkflow as exc:
        raise ApiError(404, "workflow_not_found", str(exc)) from None
    state.signals.clock_kick.set()
    return json_response(
        protocol.ScheduleResponse(schedule_id=schedule.id, schedule=_view(schedule))
    )


@router.get("", response_model=protocol.ScheduleList, summary="List the project's schedules")
async def list_schedules(
    request: Request,
    workflow_id: Annotated[str | None, Query(max_length=protocol.MAX_ID_LENGTH)] = None,
) -> Response:
    state = state_of(request)
    project = project_of(request)
    wf = None if workflow_id is None else check_identifier(workflow_id, "workflow_id")

    async def work(tx: StoreTx) -> list[Schedule]:
        return await tx.list_schedules(project, wf)

    return json_response(
        protocol.ScheduleList(schedules=[_view(s) for s in await state.store.read(work)])
    )


async def _owned(request: Request, schedule_id: str) -> Schedule:
    state = state_of(request)
    project = project_of(request)
    check_identifier(schedule_id, "schedule id")

    async def work(tx: StoreTx) -> list[Schedule]:
        return await tx.list_schedules(project, None)

    for s in await state.store.read(work):
        if s.id == schedule_id:
            return s
    raise ApiError(404, "schedule_not_found", f"schedule {schedule_id!r} not found")


@router.get(
    "/{schedule_id}/slots",
    response_model=protocol.ScheduleSlotList,
    responses=_ERRORS,
    summary="The latest slots of a schedule: fired (with the execution) or skipped",
)
async def slots(
    schedule_id: str, request: Request, limit: Annotated[int, Query(ge=1, le=1000)] = 100
) -> Response:
    state = state_of(request)
    schedule = await _owned(request, schedule_id)

    async def work(tx: StoreTx) -> list[tuple[float, str, str | None]]:
        return await tx.schedule_slots(schedule.id, limit)

    return json_response(
        protocol.ScheduleSlotList(
            slots=[
                protocol.ScheduleSlotView(
                    slot_at=iso(at) or "",
                    status="fired" if status == "fired" else "skipped",
                    execution_id=execution_id,
                )
                for at, status, execution_id in await state.store.read(work)
            ]
        )
    )


@router.delete("/{schedule_id}", status_code=204, responses=_ERRORS, summary="Delete a schedule")
async def delete_schedule(schedule_id: str, request: Request) -> Response:
    state = state_of(request)
    schedule = await _owned(request, schedule_id)

    async def work(tx: StoreTx) -> bool:
        return await tx.delete_schedule(schedule.project_id, schedule.id)

    await state.store.run(work)
    return Response(status_code=204)
