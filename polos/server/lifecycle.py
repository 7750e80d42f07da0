"""How executions move: submit, apply worker reports (steps, children, complete, fail, suspend,
release), wake parents, expire leases. Each public function here is a unit of work or is
called from one (see store/base.py), so everything it changes commits together.

The durability rules of design.md live here: fenced reports (7), children inserted in the
transaction that suspends their parent (5), the last child waking its parent once (6), slots
freed while waiting (4), limits counted in the transaction that changes them (8).
"""

from __future__ import annotations

import json
import logging
import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from polos import protocol
from polos.model import (
    ErrorInfo,
    ExecutionStatus,
    NewExecution,
    StepKind,
    StepRecord,
    StepStatus,
    WorkerInfo,
    WorkflowRegistration,
)
from polos.server.settings import Settings
from polos.server.signals import Signals
from polos.store.base import ChildOutcome, FenceRow, FinalUpdate, StoreTx, UsageKey

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


@dataclass(slots=True)
class Submitted:
    execution_id: str
    workflow_id: str
    root_execution_id: str
    created_at: float
    created: bool


# --------------------------------------------------------------------------- submission


async def submit(
    tx: StoreTx, signals: Signals, project_id: str, specs: Sequence[SubmitSpec], now: float
) -> list[Submitted]:
    """Create top-level executions (all or none)."""
    await tx.ensure_project(project_id, now)
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
        execution_id = str(uuid.uuid4())
        queue = spec.queue_name or known[spec.workflow_id]
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
        await tx.ensure_queues(project_id, queues, now, overwrite_limits=False)
        await tx.insert_executions(rows, now)
        tx.on_commit(lambda: signals.work_available(project_id))
    return out


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
    signals: Signals,
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


async def heartbeat(
    tx: StoreTx,
    worker_id: str,
    execution_ids: Sequence[str],
    now: float,
    settings: Settings,
) -> bool:
    """Extend the leases of what the worker runs; False if the worker is unknown."""
    if not await tx.touch_worker(worker_id, now):
        return False
    if execution_ids:
        await tx.extend_leases(worker_id, execution_ids, now + settings.lease_seconds)
    return True


async def release_worker_executions(
    tx: StoreTx, signals: Signals, worker_id: str, now: float
) -> int:
    rows = await tx.running_of_worker(worker_id)
    await _requeue(tx, signals, rows, now, ready_at=now, count_retry=False)
    await _release_slots(tx, rows)
    return len(rows)


async def deregister_worker(tx: StoreTx, signals: Signals, worker_id: str, now: float) -> int:
    released = await release_worker_executions(tx, signals, worker_id, now)
    await tx.delete_workers([worker_id])
    return released


# --------------------------------------------------------------------------- reports


@dataclass(slots=True)
class _Batch:
    """What one report request changes besides the per-execution rows."""

    usage: Counter[UsageKey]
    finished_children: Counter[tuple[str, str]]


async def apply_reports(
    tx: StoreTx,
    signals: Signals,
    settings: Settings,
    worker_id: str,
    items: Sequence[protocol.ReportItem],
    now: float,
) -> list[protocol.ReportItemResult]:
    fences = await tx.fence_rows([item.execution_id for item in items])
    batch = _Batch(usage=Counter(), finished_children=Counter())
    results: list[protocol.ReportItemResult] = []
    for item in items:
        row = fences.get(item.execution_id)
        if (
            row is None
            or row.status is not ExecutionStatus.RUNNING
            or row.attempt != item.attempt
            or row.worker_id != worker_id
        ):
            log.warning(
                "refused a stale report for execution %s attempt %d from worker %s "
                "(now %s, attempt %s, worker %s)",
                item.execution_id,
                item.attempt,
                worker_id,
                row.status.value if row else "unknown",
                row.attempt if row else "-",
                row.worker_id if row else "-",
            )
            results.append(
                protocol.ReportItemResult(
                    execution_id=item.execution_id,
                    status="stale",
                    detail="this attempt no longer owns the execution",
                )
            )
            continue
        result = await _apply_item(tx, signals, settings, row, item, batch, now)
        results.append(result)
        if result.status == "requeued" or item.outcome is not None:
            # The attempt is over: later items of the same request about this execution are
            # refused like any stale report.
            row.status = ExecutionStatus.QUEUED
    await tx.adjust_usage(batch.usage)
    await _wake_claimers_of_freed_slots(tx, signals, batch.usage)
    await _notify_parents(tx, signals, batch.finished_children, now)
    return results


async def _wake_claimers_of_freed_slots(
    tx: StoreTx, signals: Signals, usage: Counter[UsageKey]
) -> None:
    """A slot freed in a limited queue may let a queued execution start: claimers parked
    while the queue was full must look again (nothing else would wake them)."""
    freed: dict[str, set[str]] = {}
    for (project_id, queue_name, _), delta in usage.items():
        if delta < 0:
            freed.setdefault(project_id, set()).add(queue_name)
    for project_id, queues in freed.items():
        limits = await tx.queue_limits(project_id)
        if any(limits.get(q) is not None for q in queues):
            tx.on_commit(lambda p=project_id: signals.work_available(p))  # type: ignore[misc]


def _step_record(step: protocol.StepReport) -> StepRecord:
    return StepRecord(
        step_key=step.key,
        kind=StepKind(step.kind),
        status=StepStatus(step.status),
        position=step.position,
        result_json=step.result,
        error=ErrorInfo(step.error.type, step.error.message) if step.error else None,
        output_schema=step.output_schema,
    )


async def _apply_item(
    tx: StoreTx,
    signals: Signals,
    settings: Settings,
    row: FenceRow,
    item: protocol.ReportItem,
    batch: _Batch,
    now: float,
) -> protocol.ReportItemResult:
    steps = [_step_record(s) for s in item.steps]
    if item.children:
        known = await tx.known_workflows(row.project_id, {c.workflow_id for c in item.children})
        unknown: dict[str, str] = {}
        for c in item.children:
            if c.workflow_id not in known and c.step_key not in unknown:
                unknown[c.step_key] = str(UnknownWorkflow(row.project_id, [c.workflow_id]))
        if unknown:
            return await _fail_steps_for_unknown_children(
                tx, signals, row, item, steps, unknown, known, batch, now
            )
        await _submit_children(tx, signals, row, item.children, known, now)
    if steps:
        await tx.insert_steps(row.id, steps, now)
    outcome = item.outcome
    ok = protocol.ReportItemResult(execution_id=row.id, status="ok")
    if outcome is None:
        return ok
    usage_key = (row.project_id, row.queue_name, row.concurrency_key)
    batch.usage[usage_key] -= 1
    if isinstance(outcome, protocol.CompleteOutcome):
        await tx.finish_executions(
            [
                FinalUpdate(
                    row.id,
                    ExecutionStatus.COMPLETED,
                    outcome.result,
                    None,
                    outcome.output_schema,
                    outcome.final_state,
                )
            ],
            now,
        )
        _finished(tx, signals, row, batch)
    elif isinstance(outcome, protocol.FailOutcome):
        if outcome.retryable and row.retry_count < settings.max_workflow_retries:
            ready = now + settings.retry_delay(row.retry_count)
            await tx.requeue_executions([row.id], ready, now, count_retry=True)
            project_id = row.project_id
            tx.on_commit(lambda: signals.work_available_at(project_id, ready))
        else:
            error = ErrorInfo(outcome.error.type, outcome.error.message)
            await tx.finish_executions(
                [
                    FinalUpdate(
                        row.id, ExecutionStatus.FAILED, None, error, None, outcome.final_state
                    )
                ],
                now,
            )
            _finished(tx, signals, row, batch)
    elif isinstance(outcome, protocol.SuspendOutcome):
        await _suspend(tx, signals, row, outcome, now)
    else:  # ReleaseOutcome
        await _requeue(tx, signals, [row], now, ready_at=now, count_retry=False)
    return ok


async def _suspend(
    tx: StoreTx, signals: Signals, row: FenceRow, outcome: protocol.SuspendOutcome, now: float
) -> None:
    unfinished = await tx.count_unfinished_children(row.id, outcome.step_key)
    if unfinished == 0:
        # Everything it waits for is final already (e.g. children of an earlier attempt):
        # resolve the step now and let the execution replay at once.
        await _resolve_waiting_step(tx, row.id, outcome.step_key, now)
        await tx.requeue_executions([row.id], now, now, count_retry=False)
        tx.on_commit(lambda: signals.work_available(row.project_id))
        return
    await tx.set_step_pending(row.id, outcome.step_key, unfinished)
    await tx.set_waiting(row.id, outcome.final_state, now)


def _finished(tx: StoreTx, signals: Signals, row: FenceRow, batch: _Batch) -> None:
    if row.notify_parent and row.parent_execution_id and row.parent_step_key:
        batch.finished_children[(row.parent_execution_id, row.parent_step_key)] += 1
    execution_id = row.id
    tx.on_commit(lambda: signals.execution_final(execution_id))


async def _submit_children(
    tx: StoreTx,
    signals: Signals,
    parent: FenceRow,
    children: Sequence[protocol.ChildSubmission],
    known: dict[str, str],
    now: float,
) -> None:
    """Insert the children (idempotently: their IDs derive from parent, step key and index).
    `known` maps their workflow IDs to their default queues."""
    rows: list[NewExecution] = []
    queues: dict[str, int | None] = {}
    for c in children:
        queue = c.queue_name or known[c.workflow_id]
        queues.setdefault(queue, c.queue_concurrency_limit)
        rows.append(
            NewExecution(
                id=protocol.child_execution_id(parent.id, c.step_key, c.index),
                project_id=parent.project_id,
                workflow_id=c.workflow_id,
                queue_name=queue,
                payload_json=c.payload,
                concurrency_key=c.concurrency_key or "",
                deployment_id=parent.deployment_id,
                parent_execution_id=parent.id,
                root_execution_id=parent.root_execution_id,
                root_workflow_id=parent.root_workflow_id,
                parent_step_key=c.step_key,
                batch_index=c.index,
                notify_parent=c.wait,
                session_id=parent.session_id,
                user_id=parent.user_id,
                initial_state_json=c.initial_state,
                run_timeout_seconds=c.run_timeout_seconds,
            )
        )
    if rows:
        await tx.ensure_queues(parent.project_id, queues, now, overwrite_limits=False)
        await tx.insert_executions(rows, now)
        project_id = parent.project_id
        tx.on_commit(lambda: signals.work_available(project_id))


async def _fail_steps_for_unknown_children(
    tx: StoreTx,
    signals: Signals,
    row: FenceRow,
    item: protocol.ReportItem,
    steps: list[StepRecord],
    unknown: dict[str, str],
    known: dict[str, str],
    batch: _Batch,
    now: float,
) -> protocol.ReportItemResult:
    """Record the steps that named unknown workflows as failed and re-queue the execution,
    so that its replay raises StepExecutionError at that step. Steps recorded after the first
    failed one (and their children) belong to a future that did not happen and are dropped."""
    by_key = {s.step_key: s for s in steps}
    failed = [by_key[k] for k in unknown if k in by_key]
    cutoff = min((s.position for s in failed), default=0)
    kept = [s for s in steps if s.position < cutoff]
    kept_keys = {s.step_key for s in kept}
    for s in failed:
        kept.append(
            StepRecord(
                step_key=s.step_key,
                kind=s.kind,
                status=StepStatus.FAILED,
                position=s.position,
                error=ErrorInfo("WorkflowNotFoundError", unknown[s.step_key]),
            )
        )
    earlier_children = [c for c in item.children if c.step_key in kept_keys]
    if earlier_children:
        await _submit_children(tx, signals, row, earlier_children, known, now)
    await tx.insert_steps(row.id, kept, now)
    await _requeue(tx, signals, [row], now, ready_at=now, count_retry=False)
    batch.usage[(row.project_id, row.queue_name, row.concurrency_key)] -= 1
    detail = "; ".join(unknown.values())
    return protocol.ReportItemResult(execution_id=row.id, status="requeued", detail=detail)


# --------------------------------------------------------------------------- waking parents


async def _notify_parents(
    tx: StoreTx, signals: Signals, finished: Counter[tuple[str, str]], now: float
) -> None:
    if not finished:
        return
    done = await tx.decrement_pending(finished)
    if not done:
        return
    parents = await tx.fence_rows({parent for parent, _ in done})
    woken: list[FenceRow] = []
    for parent_id, step_key in done:
        await _resolve_waiting_step(tx, parent_id, step_key, now)
        parent = parents.get(parent_id)
        if parent is not None and parent.status is ExecutionStatus.WAITING:
            parent.status = ExecutionStatus.QUEUED
            woken.append(parent)
    await _requeue(tx, signals, woken, now, ready_at=now, count_retry=False)


async def _resolve_waiting_step(tx: StoreTx, parent_id: str, step_key: str, now: float) -> None:
    step = await tx.get_step(parent_id, step_key)
    if step is None or step.status is not StepStatus.PENDING:
        return
    children = await tx.child_outcomes(parent_id, step_key)
    if step.kind is StepKind.BATCH_WAIT:
        await tx.resolve_step(
            parent_id, step_key, StepStatus.COMPLETED, batch_result_json(children), None, None, now
        )
        return
    child = children[0] if children else None
    if child is not None and child.status is ExecutionStatus.COMPLETED:
        await tx.resolve_step(
            parent_id,
            step_key,
            StepStatus.COMPLETED,
            child.result_json,
            None,
            child.output_schema,
            now,
        )
    else:
        await tx.resolve_step(
            parent_id, step_key, StepStatus.FAILED, None, _child_error(child), None, now
        )


def _child_error(child: ChildOutcome | None) -> ErrorInfo:
    if child is None:
        return ErrorInfo("ChildNotFoundError", "the child execution does not exist")
    if child.error is not None:
        return child.error
    if child.status is ExecutionStatus.CANCELLED:
        return ErrorInfo("ExecutionCancelledError", f"child execution {child.id} was cancelled")
    return ErrorInfo("Error", f"child execution {child.id} ended as {child.status.value}")


def batch_result_json(children: Sequence[ChildOutcome]) -> str:
    """The ordered results of a batch as JSON text, built without decoding child results."""
    parts: list[str] = []
    dumps = json.dumps
    for c in children:
        ok = c.status is ExecutionStatus.COMPLETED
        error = None if ok else _child_error(c)
        parts.append(
            '{"workflow_id":%s,"execution_id":%s,"success":%s,"result":%s,"error":%s,'
            '"output_schema":%s}'
            % (
                dumps(c.workflow_id),
                dumps(c.id),
                "true" if ok else "false",
                (c.result_json or "null") if ok else "null",
                dumps(error.to_json()) if error else "null",
                dumps(c.output_schema) if ok and c.output_schema else "null",
            )
        )
    return "[" + ",".join(parts) + "]"


# --------------------------------------------------------------------------- leases


async def expire_leases(
    tx: StoreTx, signals: Signals, settings: Settings, now: float, limit: int = 1000
) -> int:
    rows = await tx.expired_leases(now, limit)
    if rows:
        log.warning("re-queued %d execution(s) whose worker stopped renewing its lease", len(rows))
        await _requeue(tx, signals, rows, now, ready_at=now, count_retry=False)
        await _release_slots(tx, rows)
    silent = await tx.silent_workers(now - 3 * settings.lease_seconds)
    if silent:
        log.warning(
            "forgot %d worker(s) not heard from in %.0f s", len(silent), 3 * settings.lease_seconds
        )
        await tx.delete_workers(silent)
    return len(rows)


# --------------------------------------------------------------------------- helpers


async def _requeue(
    tx: StoreTx,
    signals: Signals,
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
        tx.on_commit(lambda p=project_id: signals.work_available(p))  # type: ignore[misc]


async def _release_slots(tx: StoreTx, rows: Sequence[FenceRow]) -> None:
    usage: Counter[UsageKey] = Counter()
    for r in rows:
        usage[(r.project_id, r.queue_name, r.concurrency_key)] -= 1
    await tx.adjust_usage(usage)
