"""Submitting executions and reading them back (including waiting for a final status)."""

from __future__ import annotations

import base64
import math
import time
import uuid
from datetime import UTC, datetime
from typing import Annotated, cast

import orjson
from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from polos import codec, protocol
from polos.model import FINAL_STATUSES, ExecutionFilter, ExecutionRow, ExecutionStatus
from polos.server import lifecycle
from polos.server.cancel import CANCELLED, cancel_tree
from polos.server.http import (
    ApiError,
    body_schema,
    check_identifier,
    encoded_json_response,
    json_response,
    parse_body,
    project_of,
)
from polos.server.signals import wait_event
from polos.server.state import ServerState, state_of
from polos.server.views import execution_json, execution_view, iso
from polos.store.base import StoreTx

router = APIRouter(prefix=protocol.API_PREFIX, tags=["executions"])

_ERRORS: dict[int | str, dict[str, object]] = {
    404: {"model": protocol.ErrorBody},
    413: {"model": protocol.ErrorBody},
    422: {"model": protocol.ErrorBody},
}


def _value_text(state: ServerState, value: object, what: str) -> str:
    try:
        text = codec.dumps(value)
    except codec.EncodeError as exc:
        raise ApiError(422, "invalid_value", f"{what}: {exc}") from None
    limit = state.settings.max_value_bytes
    if len(text.encode()) > limit:
        raise ApiError(
            413, "value_too_large", f"{what} is {len(text.encode())} bytes; the limit is {limit}"
        )
    return text


def _optional_text(state: ServerState, value: object, what: str) -> str | None:
    return None if value is None else _value_text(state, value, what)


async def _submit(
    state: ServerState,
    project: str,
    specs: list[lifecycle.SubmitSpec],
    defer_sync: bool = False,
) -> list[lifecycle.Submitted]:
    async def work(tx: StoreTx) -> list[lifecycle.Submitted]:
        return await lifecycle.submit(tx, project, specs, state.clock.now())

    try:
        return await state.store.run(work, defer_sync=defer_sync)
    except lifecycle.UnknownWorkflow as exc:
        raise ApiError(404, "workflow_not_found", str(exc)) from None


def _submitted(s: lifecycle.Submitted) -> protocol.SubmitResponse:
    return protocol.SubmitResponse(
        execution_id=s.execution_id,
        workflow_id=s.workflow_id,
        root_execution_id=s.root_execution_id,
        created_at=iso(s.created_at) or "",
        created=s.created,
    )


@router.post(
    "/workflows/{workflow_id}/run",
    response_model=protocol.SubmitResponse,
    responses=_ERRORS,
    openapi_extra=body_schema(protocol.SubmitRequest),
    summary="Start an execution of a workflow",
)
async def run_workflow(
    workflow_id: str,
    request: Request,
    wait_seconds: Annotated[
        float | None,
        Query(
            ge=0,
            le=protocol.MAX_LONG_POLL_SECONDS,
            description="Also wait up to this long for the execution to become final; the "
            "answer then carries it in `execution` (absent if it is still going).",
        ),
    ] = None,
) -> Response:
    state = state_of(request)
    check_identifier(workflow_id, "workflow id")
    project = project_of(request)
    body = await parse_body(request, protocol.SubmitRequest, 4 * state.settings.max_value_bytes)
    spec = lifecycle.SubmitSpec(
        workflow_id=workflow_id,
        payload_json=_value_text(state, body.payload, "payload"),
        queue_name=body.queue_name,
        queue_concurrency_limit=body.queue_concurrency_limit,
        concurrency_key=body.concurrency_key,
        deployment_id=body.deployment_id,
        session_id=body.session_id,
        user_id=body.user_id,
        initial_state_json=_optional_text(state, body.initial_state, "initial_state"),
        run_timeout_seconds=body.run_timeout_seconds,
        idempotency_key=body.idempotency_key,
        execution_id=str(uuid.uuid4()),
    )
    if wait_seconds is None:
        (submitted,) = await _submit(state, project, [spec])
        return json_response(_submitted(submitted))
    # One request for `Workflow.run`: start, then wait as GET .../wait would. The wait is
    # taken before the submission, so an execution this request creates needs no read before
    # it finishes: nothing can have finished it unseen (a read per call, on PostgreSQL a
    # round trip). With an idempotency key the execution may be an older one: read first.
    # The submission's commit may skip its fsync: the answer is the final execution, which a
    # later, synced commit wrote (an fsync of the WAL covers the frames before it), or else
    # the handle, sent only after `sync` (docs/decisions.md).
    planned = (
        protocol.idempotent_execution_id(project, body.idempotency_key)
        if body.idempotency_key
        else cast(str, spec.execution_id)
    )
    watching = state.signals.watch_final(planned)
    try:
        (submitted,) = await _submit(state, project, [spec], defer_sync=True)
        answer = _submitted(submitted)
        fresh = submitted.created and submitted.execution_id == planned
        row = await _wait_final(
            state, project, submitted.execution_id, wait_seconds, unfinished=fresh
        )
    finally:
        state.signals.unwatch_final(planned, watching)
    if row.status not in FINAL_STATUSES:
        await state.store.sync()
        return json_response(answer)
    # The SubmitResponse with its execution, written as `views.execution_json` explains.
    return encoded_json_response(
        orjson.dumps({**answer.model_dump(), "execution": execution_json(row)})
    )


@router.post(
    "/workflows/batch_run",
    response_model=protocol.BatchSubmitResponse,
    responses=_ERRORS,
    openapi_extra=body_schema(protocol.BatchSubmitRequest),
    summary="Start many executions at once (all or none)",
)
async def batch_run(request: Request) -> Response:
    state = state_of(request)
    project = project_of(request)
    body = await parse_body(
        request, protocol.BatchSubmitRequest, 64 * state.settings.max_value_bytes
    )
    specs = [
        lifecycle.SubmitSpec(
            workflow_id=item.workflow_id,
            payload_json=_value_text(state, item.payload, f"workflows[{i}].payload"),
            queue_name=item.queue_name,
            queue_concurrency_limit=item.queue_concurrency_limit,
            concurrency_key=item.concurrency_key,
            deployment_id=body.deployment_id,
            session_id=body.session_id,
            user_id=body.user_id,
            initial_state_json=_optional_text(
                state, item.initial_state, f"workflows[{i}].initial_state"
            ),
            run_timeout_seconds=item.run_timeout_seconds,
        )
        for i, item in enumerate(body.workflows)
    ]
    submitted = await _submit(state, project, specs) if specs else []
    return json_response(
        protocol.BatchSubmitResponse(executions=[_submitted(s) for s in submitted])
    )


async def _read(state: ServerState, project: str, execution_id: str) -> ExecutionRow:
    check_identifier(execution_id, "execution id")

    async def work(tx: StoreTx) -> ExecutionRow | None:
        return await tx.get_execution(execution_id)

    row = await state.store.read(work)
    if row is None or row.project_id != project:
        raise ApiError(
            404,
            "execution_not_found",
            f"execution {execution_id!r} not found in project {project!r}",
        )
    return row


@router.get(
    "/executions/{execution_id}",
    response_model=protocol.ExecutionView,
    responses=_ERRORS,
    summary="Read an execution",
)
async def get_execution(execution_id: str, request: Request) -> Response:
    state = state_of(request)
    row = await _read(state, project_of(request), execution_id)
    return encoded_json_response(orjson.dumps(execution_json(row)))


@router.get(
    "/executions/{execution_id}/wait",
    response_model=protocol.ExecutionView,
    responses=_ERRORS,
    summary="Read an execution once it is final, or when `timeout` seconds have passed",
)
async def wait_execution(
    execution_id: str,
    request: Request,
    timeout: Annotated[float, Query(ge=0, le=protocol.MAX_LONG_POLL_SECONDS)] = 30.0,
) -> Response:
    state = state_of(request)
    row = await _wait_final(state, project_of(request), execution_id, timeout)
    return encoded_json_response(orjson.dumps(execution_json(row)))


async def _wait_final(
    state: ServerState,
    project: str,
    execution_id: str,
    timeout: float,
    unfinished: bool = False,
) -> ExecutionRow:
    """The execution once it is final, or as it is after `timeout` seconds. `unfinished`: the
    caller watched it (`watch_final`) since before it existed, so there is no need to read
    it before the first wake-up."""
    deadline = time.monotonic() + timeout
    while True:
        # Taken before reading, so a completion in between is not missed; a wake-up is only
        # a hint (the safety net wakes everyone now and then): read again and decide.
        event = state.signals.watch_final(execution_id)
        try:
            if unfinished:
                unfinished = False
                await wait_event(event, deadline - time.monotonic())
                continue
            row = await _read(state, project, execution_id)
            remaining = deadline - time.monotonic()
            if row.status in FINAL_STATUSES or remaining <= 0 or state.signals.closing:
                return row
            await wait_event(event, remaining)
        finally:
            state.signals.unwatch_final(execution_id, event)


def _cursor(row: ExecutionRow, order: int) -> str:
    raw = f"{row.created_at!r}|{order}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _parse_cursor(cursor: str) -> tuple[float, int]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        created_at, _, order = raw.partition("|")
        parsed = float(created_at), int(order)
    except (ValueError, UnicodeDecodeError):
        parsed = None
    if parsed is None or not math.isfinite(parsed[0]) or not 0 <= parsed[1] < 2**63:
        raise ApiError(400, "invalid_cursor", "cursor is not one this API returned")
    return parsed


def _moment(value: datetime | None, name: str) -> float | None:
    """A time filter as unix seconds (a naive time is UTC)."""
    if value is None:
        return None
    try:
        return (value if value.tzinfo else value.replace(tzinfo=UTC)).timestamp()
    except (OverflowError, ValueError, OSError):
        raise ApiError(422, "invalid_request", f"{name}: out of range") from None


def _optional_id(value: str | None, what: str) -> str | None:
    return None if value is None else check_identifier(value, what)


_TIME_HELP = "ISO 8601 (a time without an offset is UTC) or unix seconds"


@router.get(
    "/executions",
    response_model=protocol.ExecutionList,
    responses={**_ERRORS, 400: {"model": protocol.ErrorBody}},
    summary="List the project's executions, newest first (cursor pagination)",
)
async def list_executions(
    request: Request,
    status: ExecutionStatus | None = None,
    workflow_id: Annotated[str | None, Query(max_length=protocol.MAX_ID_LENGTH)] = None,
    parent_execution_id: Annotated[str | None, Query(max_length=protocol.MAX_ID_LENGTH)] = None,
    root_execution_id: Annotated[str | None, Query(max_length=protocol.MAX_ID_LENGTH)] = None,
    error_type: Annotated[
        str | None,
        Query(max_length=protocol.MAX_ID_LENGTH, description="The stored error's type name"),
    ] = None,
    created_after: Annotated[
        datetime | None, Query(description=f"created at or after this time; {_TIME_HELP}")
    ] = None,
    created_before: Annotated[
        datetime | None, Query(description=f"created before this time; {_TIME_HELP}")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: Annotated[str | None, Query(max_length=1000)] = None,
) -> Response:
    """Every filter is backed by an index whose order is the listing's (newest first), so a
    page costs its own size at any number of executions; several filters together use the
    most selective one's index (parent, root, error type, workflow, status) and check the
    others row by row."""
    state = state_of(request)
    project = project_of(request)
    query = ExecutionFilter(
        status=status,
        workflow_id=_optional_id(workflow_id, "workflow_id"),
        parent_execution_id=_optional_id(parent_execution_id, "parent_execution_id"),
        root_execution_id=_optional_id(root_execution_id, "root_execution_id"),
        error_type=_optional_id(error_type, "error_type"),
        created_after=_moment(created_after, "created_after"),
        created_before=_moment(created_before, "created_before"),
        before=None if cursor is None else _parse_cursor(cursor),
        limit=limit + 1,
    )

    async def work(tx: StoreTx) -> list[tuple[ExecutionRow, int]]:
        return await tx.list_executions(project, query)

    rows = await state.store.read(work)
    page, more = rows[:limit], len(rows) > limit
    return json_response(
        protocol.ExecutionList(
            executions=[execution_view(r) for r, _ in page],
            next_cursor=_cursor(*page[-1]) if more and page else None,
        )
    )


@router.post(
    "/executions/{execution_id}/cancel",
    response_model=protocol.CancelResponse,
    responses=_ERRORS,
    summary="Cancel an execution and its unfinished descendants",
)
async def cancel_execution(execution_id: str, request: Request) -> Response:
    state = state_of(request)
    project = project_of(request)
    row = await _read(state, project, execution_id)  # 404 across projects

    async def work(tx: StoreTx) -> int:
        return len(await cancel_tree(tx, row.id, CANCELLED, state.clock.now()))

    cancelled = await state.store.run(work)
    row = await _read(state, project, execution_id)
    return json_response(
        protocol.CancelResponse(execution_id=row.id, status=row.status.value, cancelled=cancelled)
    )
