"""The worker protocol: register, heartbeat, claim (long-poll), report, deregister."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from typing import cast

from fastapi import APIRouter, Request
from fastapi.responses import Response

from polos import protocol
from polos.model import (
    ClaimedExecution,
    ScheduleRegistration,
    TriggerRegistration,
    WorkerInfo,
    WorkflowRegistration,
)
from polos.server import dispatch, lifecycle, reports, schedules
from polos.server.claim_wire import encode_claim_response
from polos.server.faults import fail_point
from polos.server.http import (
    ApiError,
    body_schema,
    check_identifier,
    encoded_json_response,
    json_response,
    parse_body,
    project_of,
)
from polos.server.report_checks import check_report_items
from polos.server.signals import wait_event
from polos.server.state import ServerState, state_of
from polos.server.views import iso
from polos.store.base import StoreTx, Work

router = APIRouter(prefix=f"{protocol.API_PREFIX}/workers", tags=["workers"])
log = logging.getLogger("polos.server.workers")

_ERRORS: dict[int | str, dict[str, object]] = {
    404: {"model": protocol.ErrorBody},
    413: {"model": protocol.ErrorBody},
    422: {"model": protocol.ErrorBody},
}


def _not_found(worker_id: str) -> ApiError:
    return ApiError(
        404,
        "worker_not_found",
        f"worker {worker_id!r} is not registered (it may have been silent too long): "
        "register again",
    )


async def _lookup(state: ServerState, worker_id: str) -> WorkerInfo | None:
    async def work(tx: StoreTx) -> WorkerInfo | None:
        return await tx.get_worker(check_identifier(worker_id, "worker id"))

    worker = await state.store.read(work)
    if worker is not None:
        state.worker_projects[worker.id] = worker.project_id
    return worker


async def _worker(state: ServerState, request: Request, worker_id: str) -> WorkerInfo:
    worker = await _lookup(state, worker_id)
    if worker is None or worker.project_id != project_of(request):
        raise _not_found(worker_id)
    return worker


async def _check_owner(
    state: ServerState, request: Request, worker_id: str, allow_unknown: bool
) -> bool:
    """A project may only act as its own workers. Returns whether the worker is known."""
    project = state.worker_projects.get(worker_id)
    if project is None:
        worker = await _lookup(state, worker_id)
        if worker is None:
            if allow_unknown:
                return False
            raise _not_found(worker_id)
        project = worker.project_id
    if project != project_of(request):
        raise _not_found(worker_id)
    return True


@router.post(
    "",
    response_model=protocol.RegisterWorkerResponse,
    responses=_ERRORS,
    openapi_extra=body_schema(protocol.RegisterWorkerRequest),
    summary="Register a worker and the workflows it serves",
)
async def register(request: Request) -> Response:
    state = state_of(request)
    project = project_of(request)
    body = await parse_body(request, protocol.RegisterWorkerRequest, 16 * 1024 * 1024)
    now = state.clock.now()
    if body.worker_id is not None:
        # Registering again under its ID; an ID of another project is not this caller's.
        await _check_owner(state, request, body.worker_id, allow_unknown=True)
    worker = WorkerInfo(
        id=body.worker_id or str(uuid.uuid4()),
        project_id=project,
        deployment_id=body.deployment_id,
        capacity=body.capacity,
        workflow_ids=sorted({w.workflow_id for w in body.workflows}),
        registered_at=now,
        last_heartbeat_at=now,
    )
    registrations = []
    for w in body.workflows:
        if w.schedule is not None:
            try:
                schedules.next_slot(w.schedule.cron, w.schedule.timezone, now)
            except schedules.ScheduleError as exc:
                raise ApiError(
                    422, "invalid_schedule", f"workflow {w.workflow_id!r}: {exc}"
                ) from None
        registrations.append(
            WorkflowRegistration(
                w.workflow_id,
                w.queue_name,
                w.queue_concurrency_limit,
                trigger=TriggerRegistration(
                    w.trigger.topic, w.trigger.batch_size, w.trigger.batch_timeout_seconds
                )
                if w.trigger
                else None,
                schedule=ScheduleRegistration(
                    w.schedule.cron,
                    w.schedule.timezone,
                    w.schedule.key,
                    w.schedule.catch_up_seconds,
                )
                if w.schedule
                else None,
            )
        )

    async def work(tx: StoreTx) -> None:
        await lifecycle.register_worker(tx, worker, registrations, now)

    await state.store.run(work)
    state.worker_projects[worker.id] = project
    # It may serve other workflows now: its next claim looks (routes' `claim`).
    state.claims_exhausted.pop(worker.id, None)
    log.info(
        "worker %s registered in project %r: %d workflow(s), capacity %d",
        worker.id,
        project,
        len(worker.workflow_ids),
        worker.capacity,
    )
    return json_response(
        protocol.RegisterWorkerResponse(
            worker_id=worker.id,
            heartbeat_interval_seconds=state.settings.heartbeat_interval,
            lease_seconds=state.settings.lease_seconds,
            max_value_bytes=state.settings.max_value_bytes,
        )
    )


@router.post(
    "/{worker_id}/heartbeat",
    response_model=protocol.HeartbeatResponse,
    responses=_ERRORS,
    openapi_extra=body_schema(protocol.HeartbeatRequest),
    summary="Say the worker is alive and extend the leases of what it runs",
)
async def heartbeat(worker_id: str, request: Request) -> Response:
    state = state_of(request)
    body = await parse_body(request, protocol.HeartbeatRequest, 16 * 1024 * 1024)
    if not await _check_owner(state, request, worker_id, allow_unknown=True):
        return json_response(protocol.HeartbeatResponse(re_register=True))

    async def work(tx: StoreTx) -> list[str] | None:
        return await lifecycle.heartbeat(
            tx, worker_id, body.execution_ids, state.clock.now(), state.settings
        )

    lost = await state.store.run(work)
    return json_response(protocol.HeartbeatResponse(re_register=lost is None, lost=lost or []))


@router.post(
    "/{worker_id}/claim",
    response_model=protocol.ClaimResponse,
    responses=_ERRORS,
    openapi_extra=body_schema(protocol.ClaimRequest),
    summary="Take up to `max` executions; waits up to `wait_seconds` for work to arrive",
)
async def claim(worker_id: str, request: Request) -> Response:
    state = state_of(request)
    body = await parse_body(request, protocol.ClaimRequest, 64 * 1024)
    # The worker is read once, by the claim's transaction (a read of its own here was one
    # more transaction per claim; on PostgreSQL a round trip).
    await _check_owner(state, request, worker_id, allow_unknown=False)
    project = project_of(request)
    deadline = time.monotonic() + body.wait_seconds

    async def work(tx: StoreTx) -> list[ClaimedExecution]:
        claimed = await dispatch.claim_for(
            tx, worker_id, project, body.max, state.clock.now(), state.settings.lease_seconds
        )
        if state.store.parks_claims and len(claimed) < body.max:
            # It saw all the work it could take. Its commit callback runs after those of the
            # units before it in the transaction (their work signals included) and before any
            # later transaction's, so the event taken there is set by the next work signal
            # only: until then the worker's next claim parks without a transaction of its own.
            tx.on_commit(
                lambda: _remember_exhausted(state, worker_id, state.signals.work_event(project))
            )
        return claimed

    try:
        return await _claim(state, request, worker_id, project, body, deadline, work)
    except dispatch.WorkerGone:
        state.worker_projects.pop(worker_id, None)
        raise _not_found(worker_id) from None


async def _claim(
    state: ServerState,
    request: Request,
    worker_id: str,
    project: str,
    body: protocol.ClaimRequest,
    deadline: float,
    work: Work[list[ClaimedExecution]],
) -> Response:
    claimed: list[ClaimedExecution] | None = None
    exhausted = state.claims_exhausted.pop(worker_id, None)
    looked_at: asyncio.Event | None = None
    while True:
        # Taken before looking, so work submitted in between is not missed.
        event = state.signals.work_event(project)
        if claimed is None:
            if exhausted is event and not event.is_set():
                # This worker's last claim took less than it asked for, so it saw all the
                # work it could take, and nothing was signalled since (no submission, no
                # freed slot, no retry come due: each sets the event): looking again would
                # find nothing. On PostgreSQL that is a transaction of five round trips
                # after every claim that found work (docs/performance.md); on SQLite, where a
                # parked claim is answered inside a submission's transaction, one more
                # transaction on a single call's path.
                claimed = []
            else:
                looked_at = event
                # A claim needs no fsync of its own unless it leases an execution that an
                # earlier transaction wrote (the store checks that): one that finds nothing
                # after a `Workflow.run` submission does not sync that submission early.
                claimed = await state.store.run(work, defer_sync=True)
            exhausted = None
        remaining = deadline - time.monotonic()
        if claimed or remaining <= 0 or state.signals.closing:
            break
        gone, claimed = await _park(state, request, project, work, event, remaining)
        if gone:
            # Nobody would receive what we claim now.
            return Response(status_code=204)
    if claimed:
        fail_point("claim_committed")
        if looked_at is not None and len(claimed) < body.max and not state.store.parks_claims:
            _remember_exhausted(state, worker_id, looked_at)
    # protocol.ClaimResponse, written without building its models (server/claim_wire.py).
    return encoded_json_response(encode_claim_response(claimed or []))


# Entries of workers that are gone stay until the event is set, which the next work signal
# does; past this many, set ones are dropped.
_EXHAUSTED_KEPT = 10_000


def _remember_exhausted(state: ServerState, worker_id: str, event: asyncio.Event) -> None:
    exhausted = state.claims_exhausted
    exhausted[worker_id] = event
    if len(exhausted) > _EXHAUSTED_KEPT:
        for stale in [w for w, e in exhausted.items() if e.is_set()]:
            del exhausted[stale]


async def _park(
    state: ServerState,
    request: Request,
    project_id: str,
    work: Work[list[ClaimedExecution]],
    event: asyncio.Event,
    timeout: float,
) -> tuple[bool, list[ClaimedExecution] | None]:
    """Wait for work. Where the store can (SQLite), the claim is parked in it and runs inside
    the transaction that makes work ready, so a submission is answered without a claim
    transaction (and fsync) of its own. Returns (the worker hung up, what the parked claim
    took or None when the caller must look itself: woken otherwise, or timed out). A parked
    claim is withdrawn as soon as the connection drops: nothing is claimed for a worker that
    is gone."""
    found = state.store.park(project_id, work)
    if found is None:
        await wait_event(event, timeout)
        return await request.is_disconnected(), None
    # None as its value: ended by something else than the claim running.
    parked = cast("asyncio.Future[list[ClaimedExecution] | None]", found)
    # This task awaits the parked future itself, so the commit that runs the claim wakes it
    # directly (before the submitter's task, see SqliteStore._apply). A work signal, a
    # hang-up or the timeout ends the wait by settling it with None: the store then skips it.

    def stop(_: object = None) -> None:
        if not parked.done():
            parked.set_result(None)

    woken = asyncio.ensure_future(event.wait())
    hung_up = asyncio.ensure_future(_disconnected(request))
    woken.add_done_callback(stop)
    hung_up.add_done_callback(stop)
    timer = asyncio.get_running_loop().call_later(timeout, stop)
    try:
        claimed: list[ClaimedExecution] | None = await parked
    finally:
        timer.cancel()
        state.store.unpark(project_id, parked)
        woken.cancel()
        hung_up.cancel()
    if claimed is not None:
        return False, claimed
    # Any end of the listener but our own cancel means the connection is over.
    gone = hung_up.done() and not hung_up.cancelled()
    if gone:
        hung_up.exception()  # retrieved, so that asyncio does not log it
    return gone, None


async def _disconnected(request: Request) -> None:
    """Returns once the client has gone (the body is read: the next message is the end)."""
    while (await request.receive())["type"] != "http.disconnect":
        pass


@router.post(
    "/{worker_id}/reports",
    response_model=protocol.ReportResponse,
    responses=_ERRORS,
    openapi_extra=body_schema(protocol.ReportRequest),
    summary="Record steps, child submissions and outcomes of running executions, in order",
)
async def report(worker_id: str, request: Request) -> Response:
    state = state_of(request)
    limit = state.settings.max_value_bytes
    body = await parse_body(request, protocol.ReportRequest, 256 * limit)
    await _check_owner(state, request, worker_id, allow_unknown=False)
    check_report_items(body.items, limit)

    one_statement = reports.only_steps(body.items)

    async def work(tx: StoreTx) -> list[protocol.ReportItemResult]:
        if one_statement:
            return await reports.record_steps(tx, worker_id, body.items, state.clock.now())
        return await reports.apply_reports(
            tx, state.settings, worker_id, body.items, state.clock.now()
        )

    results = await state.store.run(work, one_statement=one_statement)
    fail_point("report_committed")
    return json_response(protocol.ReportResponse(results=results))


@router.delete(
    "/{worker_id}",
    responses=_ERRORS,
    status_code=204,
    summary="Deregister a worker; what it was running is queued again at once",
)
async def deregister(worker_id: str, request: Request) -> Response:
    state = state_of(request)
    await _worker(state, request, worker_id)

    async def work(tx: StoreTx) -> int:
        return await lifecycle.deregister_worker(tx, worker_id, state.clock.now())

    released = await state.store.run(work)
    state.claims_exhausted.pop(worker_id, None)
    if released:
        log.info("worker %s left; %d execution(s) queued again", worker_id, released)
    return Response(status_code=204)


@router.get(
    "",
    response_model=protocol.WorkerList,
    summary="List the project's registered workers, with their liveness and load",
)
async def list_workers(request: Request) -> Response:
    """`alive`: heard from within the lease window; `in_flight`: executions it holds now."""
    state = state_of(request)
    project = project_of(request)
    heard_after = state.clock.now() - state.settings.lease_seconds

    async def work(tx: StoreTx) -> tuple[list[WorkerInfo], dict[str, int]]:
        workers = await tx.list_workers(project)
        return workers, await tx.running_by_worker([w.id for w in workers])

    workers, in_flight = await state.store.read(work)
    return json_response(
        protocol.WorkerList(
            workers=[
                protocol.WorkerView(
                    id=w.id,
                    deployment_id=w.deployment_id,
                    capacity=w.capacity,
                    workflow_ids=w.workflow_ids,
                    registered_at=iso(w.registered_at) or "",
                    last_heartbeat_at=iso(w.last_heartbeat_at) or "",
                    alive=w.last_heartbeat_at >= heard_after,
                    in_flight=in_flight.get(w.id, 0),
                )
                for w in workers
            ]
        )
    )
