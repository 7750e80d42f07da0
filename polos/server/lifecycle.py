"""How executions move: submission, workers coming and going, expired leases, re-queueing.

Each public function here is a unit of work or is called from one (see store/base.py), so
everything it changes commits together. The rest of the lifecycle lives beside it, split by
size (design.md asks for modules under ~500 lines): `reports.py` applies what workers report
(steps, complete, fail, suspend, release), `children.py` submits children and wakes parents.
"""

from __future__ import annotations

import logging
import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from polos import protocol
from polos.model import (
    EventTrigger,
    FenceRow,
    NewExecution,
    WorkerInfo,
    WorkflowRegistration,
)
from polos.server.settings import Settings
from polos.store.base import StoreTx, UsageKey

log = logging.getLogger("polos.server.lifecycle")


class UnknownWorkflow(Exception):
    def __init__(self, project_id: str, workflow_ids: Sequence[str]) -> None:
        names = ", ".join(repr(w) for w in workflow_ids)
        super().__init__(
            f"workflow {names} is not registered in project {project_id!r}: start a worker "
            "that defines it (workflows become known when a worker registers them)"
        )
        self.workflow_ids = list(workflow_ids)


@dataclass(slots=True)
class SubmitSpec:
    workflow_id: str
    payload_json: str
    queue_name: str | None = None
    queue_concurrency_limit: int | None = None
    concurrency_key: str | None = None
    deployment_id: str | None = None
    session_id: str | None = None
    user_id: str | None = None
    initial_state_json: str | None = None
    run_timeout_seconds: float | None = None
    idempotency_key: str | None = None
    # The new execution's ID when the caller needs it before the submission (the run route
    # watches for the result first); ignored with an idempotency key, whose ID is derived.
    execution_id: str | None = None


@dataclass(slots=True)
class Submitted:
    execution_id: str
    workflow_id: str
    root_execution_id: str
    created_at: float
    created: bool


# --------------------------------------------------------------------------- submission


async def submit(
    tx: StoreTx, project_id: str, specs: Sequence[SubmitSpec], now: float
) -> list[Submitted]:
    """Create top-level executions (all or none).

    Only registered workflows can be submitted, and registering one creates its project and
    its queue (`register_worker`; neither is ever deleted): what is left to create is a queue
    a submission names itself. Two statements fewer per submission."""
    known = await tx.known_workflows(project_id, {s.workflow_id for s in specs})
    missing = sorted({s.workflow_id for s in specs} - known.keys())
    if missing:
        raise UnknownWorkflow(project_id, missing)
    out: list[Submitted] = []
    rows: list[NewExecution] = []
    queues: dict[str, int | None] = {}
    seen_keys: dict[str, Submitted] = {}
    for spec in specs:
        if spec.idempotency_key:
            if spec.idempotency_key in seen_keys:
                out.append(seen_keys[spec.idempotency_key])
                continue
            existing = await tx.execution_by_idempotency_key(project_id, spec.idempotency_key)
            if existing is not None:
                out.append(
                    Submitted(
                        existing.id,
                        existing.workflow_id,
                        existing.root_execution_id,
                        existing.created_at,
                        created=False,
                    )
                )
                continue
        execution_id = (
            protocol.idempotent_execution_id(project_id, spec.idempotency_key)
            if spec.idempotency_key
            else spec.execution_id or str(uuid.uuid4())
        )
        queue = spec.queue_name or known[spec.workflow_id]
        if queue != known[spec.workflow_id]:
            queues.setdefault(queue, spec.queue_concurrency_limit)
        rows.append(
            NewExecution(
                id=execution_id,
                project_id=project_id,
                workflow_id=spec.workflow_id,
                queue_name=queue,
                payload_json=spec.payload_json,
                concurrency_key=spec.concurrency_key or "",
                deployment_id=spec.deployment_id,
                root_execution_id=execution_id,
                root_workflow_id=spec.workflow_id,
                session_id=spec.session_id,
                user_id=spec.user_id,
                initial_state_json=spec.initial_state_json,
                run_timeout_seconds=spec.run_timeout_seconds,
                idempotency_key=spec.idempotency_key,
            )
        )
        result = Submitted(execution_id, spec.workflow_id, execution_id, now, created=True)
        if spec.idempotency_key:
            seen_keys[spec.idempotency_key] = result
        out.append(result)
    if rows:
        if queues:
            await tx.ensure_queues(project_id, queues, now, overwrite_limits=False)
        inserted = await tx.insert_executions(rows, now)
        tx.notify_work(project_id)
        started = [r for r in rows if r.id in inserted]
        if started:
            from polos.server import events  # events builds on this module

            await events.publish(
                tx,
                project_id,
                [
                    events.start_event(project_id, r.workflow_id, r.id, r.payload_json)
                    for r in started
                ],
                now,
            )
        # A replica that inserted the same key a moment earlier made it exist already.
        out = [s if s.created is False or s.execution_id in inserted else _existing(s) for s in out]
    return out


def _existing(submitted: Submitted) -> Submitted:
    return Submitted(
        submitted.execution_id,
        submitted.workflow_id,
        submitted.root_execution_id,
        submitted.created_at,
        created=False,
    )


# --------------------------------------------------------------------------- workers


def queue_limits_of(registrations: Sequence[WorkflowRegistration]) -> dict[str, int | None]:
    """A queue shared by several workflows gets the smallest limit any of them declares."""
    limits: dict[str, int | None] = {}
    for r in registrations:
        current = limits.get(r.queue_name)
        declared = r.queue_concurrency_limit
        if r.queue_name not in limits:
            limits[r.queue_name] = declared
        elif declared is not None:
            limits[r.queue_name] = declared if current is None else min(current, declared)
    return limits


async def register_worker(
    tx: StoreTx,
    worker: WorkerInfo,
    registrations: Sequence[WorkflowRegistration],
    now: float,
) -> None:
    await tx.ensure_project(worker.project_id, now)
    await tx.upsert_workflows(worker.project_id, registrations, now)
    await tx.ensure_queues(
        worker.project_id, queue_limits_of(registrations), now, overwrite_limits=True
    )
    # A worker registering again under its ID (the server forgot it during an outage) keeps
    # the leases it still holds; its heartbeats renew them. What a dead worker held comes
    # back through lease expiry.
    await tx.save_worker(worker)
    from polos.server import schedules  # schedules builds on this module

    cursor: int | None = None
    for r in registrations:
        if r.trigger is not None:
            if cursor is None:
                cursor = await tx.max_event_seq()
            await tx.upsert_trigger(
                EventTrigger(
                    worker.project_id,
                    r.workflow_id,
                    r.trigger.topic,
                    r.trigger.batch_size,
                    r.trigger.batch_timeout_seconds,
                    cursor,  # a new trigger starts at the end of the topic
                    r.queue_name,
                ),
                now,
            )
        if r.schedule is not None:
            await schedules.upsert(
                tx,
                worker.project_id,
                r.workflow_id,
                r.schedule.cron,
                r.schedule.timezone,
                r.schedule.key,
                r.schedule.catch_up_seconds,
                now,
            )


async def heartbeat(
    tx: StoreTx,
    worker_id: str,
    execution_ids: Sequence[str],
    now: float,
    settings: Settings,
) -> list[str] | None:
    """Extend the leases of what the worker runs. Returns the executions it named that are no
    longer its own (cancelled, lease lost): it must stop them. None if the worker is unknown."""
    if not await tx.touch_worker(worker_id, now):
        return None
    if not execution_ids:
        return []
    extended = await tx.extend_leases(worker_id, execution_ids, now + settings.lease_seconds)
    return [i for i in execution_ids if i not in extended]


async def release_worker_executions(tx: StoreTx, worker_id: str, now: float) -> int:
    rows = await tx.running_of_worker(worker_id)
    await requeue(tx, rows, now, ready_at=now, count_retry=False)
    await release_slots(tx, rows)
    return len(rows)


async def deregister_worker(tx: StoreTx, worker_id: str, now: float) -> int:
    released = await release_worker_executions(tx, worker_id, now)
    await tx.delete_workers([worker_id])
    return released


# --------------------------------------------------------------------------- leases


async def expire_leases(tx: StoreTx, settings: Settings, now: float, limit: int = 1000) -> int:
    rows = await tx.expired_leases(now, limit)
    if rows:
        log.warning("re-queued %d execution(s) whose worker stopped renewing its lease", len(rows))
        await requeue(tx, rows, now, ready_at=now, count_retry=False)
        await release_slots(tx, rows)
    silent = await tx.silent_workers(now - 3 * settings.lease_seconds)
    if silent:
        log.warning(
            "forgot %d worker(s) not heard from in %.0f s", len(silent), 3 * settings.lease_seconds
        )
        await tx.delete_workers(silent)
    return len(rows)


# --------------------------------------------------------------------------- helpers


async def requeue(
    tx: StoreTx,
    rows: Sequence[FenceRow],
    now: float,
    ready_at: float,
    count_retry: bool,
) -> None:
    """Queue `rows` again and wake claimers after commit (slots are released by the caller)."""
    if not rows:
        return
    await tx.requeue_executions([r.id for r in rows], ready_at, now, count_retry)
    for project_id in {r.project_id for r in rows}:
        tx.notify_work(project_id)


async def release_slots(tx: StoreTx, rows: Sequence[FenceRow]) -> None:
    usage: Counter[UsageKey] = Counter()
    for r in rows:
        usage[(r.project_id, r.queue_name, r.concurrency_key)] -= 1
    await tx.adjust_usage(usage)
