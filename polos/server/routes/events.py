"""Events: publish, read a topic page by page, and stream a topic (server-sent events)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response, StreamingResponse

from polos import codec, protocol
from polos.model import EventRecord, NewEvent
from polos.server import events
from polos.server.http import (
    ApiError,
    body_schema,
    check_identifier,
    json_response,
    parse_body,
    project_of,
)
from polos.server.signals import wait_event
from polos.server.state import ServerState, state_of
from polos.server.views import iso
from polos.store.base import StoreTx

router = APIRouter(prefix=f"{protocol.API_PREFIX}/events", tags=["events"])

_ERRORS: dict[int | str, dict[str, object]] = {
    400: {"model": protocol.ErrorBody},
    413: {"model": protocol.ErrorBody},
    422: {"model": protocol.ErrorBody},
}
KEEPALIVE_SECONDS = 15.0


def _view(e: EventRecord) -> protocol.EventView:
    return protocol.EventView(
        id=e.id,
        sequence_id=e.seq,
        topic=e.topic,
        event_type=e.event_type,
        data=codec.loads(e.data_json),
        created_at=iso(e.created_at) or "",
    )


@router.post(
    "/publish",
    response_model=protocol.PublishResponse,
    responses=_ERRORS,
    openapi_extra=body_schema(protocol.PublishRequest),
    summary="Publish events on a topic (resolves matching waits, fires triggers)",
)
async def publish(request: Request) -> Response:
    state = state_of(request)
    project = project_of(request)
    limit = state.settings.max_value_bytes
    body = await parse_body(request, protocol.PublishRequest, 4 * limit)
    new = []
    for i, e in enumerate(body.events):
        try:
            data = codec.dumps(e.data if e.data is not None else {})
        except codec.EncodeError as exc:
            raise ApiError(422, "invalid_value", f"events[{i}].data: {exc}") from None
        if len(data.encode()) > limit:
            raise ApiError(413, "value_too_large", f"events[{i}].data is over {limit} bytes")
        new.append(
            NewEvent(
                project_id=project,
                topic=body.topic,
                event_type=e.event_type,
                data_json=data,
                execution_id=body.execution_id,
                root_execution_id=body.root_execution_id,
            )
        )
    now = state.clock.now()

    async def work(tx: StoreTx) -> list[EventRecord]:
        await tx.ensure_project(project, now)
        return await events.publish(tx, project, new, now)

    records = await state.store.run(work) if new else []
    return json_response(
        protocol.PublishResponse(sequence_ids=[r.seq for r in records], created_at=iso(now) or "")
    )


def _topic(
    topic: str | None, workflow_id: str | None, workflow_run_id: str | None
) -> tuple[str, str | None]:
    """The topic asked for, and the run whose finish ends a workflow stream."""
    if topic is not None:
        return check_identifier(topic, "topic"), None
    if workflow_id is None or workflow_run_id is None:
        raise ApiError(400, "invalid_request", "give topic, or workflow_id and workflow_run_id")
    run = check_identifier(workflow_run_id, "workflow_run_id")
    return events.workflow_topic(check_identifier(workflow_id, "workflow_id"), run), run


async def _page(
    state: ServerState, project: str, topic: str, after: int, limit: int
) -> list[EventRecord]:
    async def work(tx: StoreTx) -> list[EventRecord]:
        return await tx.events_after(project, topic, after, limit, None)

    return await state.store.read(work)


@router.get(
    "",
    response_model=protocol.EventList,
    responses=_ERRORS,
    summary="Events of a topic after a sequence number, oldest first",
)
async def list_events(
    request: Request,
    topic: Annotated[str, Query(max_length=protocol.MAX_ID_LENGTH)],
    last_sequence_id: Annotated[int, Query(ge=0, le=2**62)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> Response:
    state = state_of(request)
    records = await _page(
        state, project_of(request), check_identifier(topic, "topic"), last_sequence_id, limit
    )
    return json_response(
        protocol.EventList(
            events=[_view(e) for e in records],
            next_sequence_id=records[-1].seq if records else last_sequence_id,
        )
    )


@router.get(
    "/stream",
    responses=_ERRORS,
    summary="Stream a topic as server-sent events, from the beginning unless a cursor is given",
    response_class=StreamingResponse,
)
async def stream(
    request: Request,
    topic: Annotated[str | None, Query(max_length=protocol.MAX_ID_LENGTH)] = None,
    workflow_id: Annotated[str | None, Query(max_length=protocol.MAX_ID_LENGTH)] = None,
    workflow_run_id: Annotated[str | None, Query(max_length=protocol.MAX_ID_LENGTH)] = None,
    last_sequence_id: Annotated[int, Query(ge=0, le=2**62)] = 0,
    last_timestamp: Annotated[datetime | None, Query()] = None,
) -> StreamingResponse:
    state = state_of(request)
    project = project_of(request)
    name, run = _topic(topic, workflow_id, workflow_run_id)
    start = last_sequence_id
    if last_timestamp is not None and not last_sequence_id:
        moment = (
            last_timestamp if last_timestamp.tzinfo else last_timestamp.replace(tzinfo=UTC)
        ).timestamp()

        async def seq_at(tx: StoreTx) -> int:
            return await tx.last_seq_before(project, name, moment)

        start = await state.store.read(seq_at)

    async def frames() -> AsyncIterator[str]:
        cursor = start
        while not state.signals.closing:
            parked = state.signals.topic_event(project, name)
            batch = await _page(state, project, name, cursor, 500)
            for e in batch:
                cursor = e.seq
                yield f"id: {e.seq}\ndata: {e.to_json()}\n\n"
                if run is not None and e.event_type == "workflow_finish":
                    return  # the run this workflow stream follows is over
            if batch:
                continue
            if await request.is_disconnected():
                return
            if not await wait_event(parked, KEEPALIVE_SECONDS):
                yield ": keepalive\n\n"

    return StreamingResponse(
        frames(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
