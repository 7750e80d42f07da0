"""Applying what workers report: step records, child submissions and outcomes (complete,
fail, suspend, release), in order, fenced by attempt (design.md rule 7). Slots are freed in the
same transaction (rules 4 and 8); finished children wake their parents through children.py."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

from polos import protocol
from polos.model import (
    CHILD_WAIT_KINDS,
    AttemptSteps,
    ErrorInfo,
    ExecutionStatus,
    FenceRow,
    FinalUpdate,
    NewEvent,
    StepKind,
    StepRecord,
    StepStatus,
)
from polos.server import batch_policies, events, waits
from polos.server.children import notify_parents, resolve_waiting_step, submit_children
from polos.server.lifecycle import UnknownWorkflow, requeue
from polos.server.settings import Settings
from polos.store.base import StoreTx, UsageKey

log = logging.getLogger("polos.server.reports")


@dataclass(slots=True)
class _Batch:
    """What one report request changes besides the per-execution rows, and the rows of the
    plain items (steps, and outcomes of children) written together at the end: one statement
    for all the step records and one for all the completions instead of one per execution
    (on PostgreSQL each is a round trip inside the transaction)."""

    usage: Counter[UsageKey]
    finished_children: Counter[tuple[str, str]]
    steps: list[tuple[str, StepRecord]] = field(default_factory=list)
    finals: list[FinalUpdate] = field(default_factory=list)
    # Projects where a slot of a limited queue was freed: their parked claimers must look
    # again (nothing else would wake them).
    freed_limited: set[str] = field(default_factory=set)

    def free_slot(self, row: FenceRow) -> None:
        self.usage[(row.project_id, row.queue_name, row.concurrency_key)] -= 1
        if row.queue_limited:
            self.freed_limited.add(row.project_id)

    async def flush(self, tx: StoreTx, now: float) -> None:
        """Write what was deferred; called before anything that might read it."""
        if self.steps:
            await tx.insert_step_rows(self.steps, now)
            self.steps = []
        if self.finals:
            await tx.finish_executions(self.finals, now)
            self.finals = []


async def apply_reports(
    tx: StoreTx,
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
        if row is None or not row.run_by(worker_id, item.attempt):
            results.append(_stale(worker_id, item.execution_id, item.attempt, row))
            continue
        result = await _apply_item(tx, settings, row, item, batch, now)
        results.append(result)
        _observe_durations(tx, row, item)
        if result.status == "requeued" or item.outcome is not None:
            # The attempt is over: later items of the same request about this execution are
            # refused like any stale report.
            row.status = ExecutionStatus.QUEUED
    await batch.flush(tx, now)
    await tx.adjust_usage(batch.usage)
    for project_id in batch.freed_limited:
        tx.notify_work(project_id)
    await notify_parents(tx, batch.finished_children, now)
    return results


def _stale(
    worker_id: str, execution_id: str, attempt: int, row: FenceRow | None
) -> protocol.ReportItemResult:
    log.warning(
        "refused a stale report for execution %s attempt %d from worker %s "
        "(now %s, attempt %s, worker %s)",
        execution_id,
        attempt,
        worker_id,
        row.status.value if row else "unknown",
        row.attempt if row else "-",
        row.worker_id if row else "-",
    )
    return protocol.ReportItemResult(
        execution_id=execution_id,
        status="stale",
        detail="this attempt no longer owns the execution",
    )


def _observe_durations(tx: StoreTx, row: FenceRow, item: protocol.ReportItem) -> None:
    for step in item.steps:
        if step.duration_seconds is not None:
            tx.observe().step_durations.append(
                (row.workflow_id, step.kind, step.status, step.duration_seconds)
            )


def only_steps(items: Sequence[protocol.ReportItem]) -> bool:
    """A report of step records alone (no outcome, children or events): `record_steps`."""
    return all(item.outcome is None and not item.children and not item.events for item in items)


async def record_steps(
    tx: StoreTx,
    worker_id: str,
    items: Sequence[protocol.ReportItem],
    now: float,
) -> list[protocol.ReportItemResult]:
    """`apply_reports` for a report of step records alone: the same fence and the same rows,
    in one statement (`StoreTx.record_attempt_steps`), which PostgreSQL runs without a
    transaction of its own: 1 round trip instead of 4 for each step of a `Workflow.run` but
    its last (`Store.run(..., one_statement=True)`)."""
    fences = await tx.record_attempt_steps(
        worker_id,
        [
            AttemptSteps(i.execution_id, i.attempt, [_step_record(s) for s in i.steps])
            for i in items
        ],
        now,
    )
    results: list[protocol.ReportItemResult] = []
    for item in items:
        row = fences.get(item.execution_id)
        if row is None or not row.run_by(worker_id, item.attempt):
            results.append(_stale(worker_id, item.execution_id, item.attempt, row))
            continue
        results.append(protocol.ReportItemResult(execution_id=item.execution_id, status="ok"))
        _observe_durations(tx, row, item)
    return results


def _is_plain(row: FenceRow, item: protocol.ReportItem) -> bool:
    """Only step records and, for a child, no outcome or a final one: what can wait for the
    batch's statements. Anything else (children, events, suspensions, retries, releases, the
    finish event of a root) is applied in order, after the deferred rows are written."""
    if item.children or item.events:
        return False
    outcome = item.outcome
    if outcome is None:
        return True
    if row.parent_execution_id is None:
        return False
    if isinstance(outcome, protocol.CompleteOutcome):
        return True
    return isinstance(outcome, protocol.FailOutcome) and not outcome.retryable


def _step_record(step: protocol.StepReport) -> StepRecord:
    return StepRecord(
        step_key=step.key,
        kind=StepKind(step.kind),
        status=StepStatus(step.status),
        position=step.position,
        result_json=step.result,
        error=ErrorInfo(step.error.type, step.error.message) if step.error else None,
        output_schema=step.output_schema,
        duration_seconds=step.duration_seconds,
    )


async def _apply_item(
    tx: StoreTx,
    settings: Settings,
    row: FenceRow,
    item: protocol.ReportItem,
    batch: _Batch,
    now: float,
) -> protocol.ReportItemResult:
    steps = [_step_record(s) for s in item.steps]
    if _is_plain(row, item):
        # Steps, then at most a completion or a final failure of a child: deferred to the
        # batch's statements (nothing else in this request reads these rows before).
        batch.steps.extend((row.id, s) for s in steps)
        outcome = item.outcome
        if outcome is None:
            return protocol.ReportItemResult(execution_id=row.id, status="ok")
        batch.free_slot(row)
        assert isinstance(outcome, protocol.CompleteOutcome | protocol.FailOutcome)
        await _finish(tx, row, batch, outcome, now, deferred=True)
        return protocol.ReportItemResult(execution_id=row.id, status="ok")
    await batch.flush(tx, now)
    if item.children:
        known = await tx.known_workflows(row.project_id, {c.workflow_id for c in item.children})
        unknown: dict[str, str] = {}
        for c in item.children:
            if c.workflow_id not in known and c.step_key not in unknown:
                unknown[c.step_key] = str(UnknownWorkflow(row.project_id, [c.workflow_id]))
        if unknown:
            return await _fail_steps_for_unknown_children(
                tx, row, item, steps, unknown, known, batch, now
            )
        await submit_children(tx, row, item.children, known, now)
    if steps:
        await tx.insert_steps(row.id, steps, now)
    if item.events:
        await events.publish(
            tx,
            row.project_id,
            [
                NewEvent(
                    project_id=row.project_id,
                    topic=e.topic,
                    event_type=e.event_type,
                    data_json=e.data,
                    execution_id=row.id,
                    root_execution_id=row.root_execution_id,
                )
                for e in item.events
            ],
            now,
        )
    outcome = item.outcome
    ok = protocol.ReportItemResult(execution_id=row.id, status="ok")
    if outcome is None:
        return ok
    batch.free_slot(row)
    if isinstance(outcome, protocol.CompleteOutcome):
        await _finish(tx, row, batch, outcome, now, deferred=False)
    elif isinstance(outcome, protocol.FailOutcome):
        if outcome.retryable and row.retry_count < settings.max_workflow_retries:
            ready = now + settings.retry_delay(row.retry_count)
            await tx.requeue_executions([row.id], ready, now, count_retry=True)
            project_id = row.project_id
            tx.notify_work_at(project_id, ready)
        else:
            await _finish(tx, row, batch, outcome, now, deferred=False)
    elif isinstance(outcome, protocol.SuspendOutcome):
        pending = next(s for s in item.steps if s.key == outcome.step_key)  # checked by the route
        await _suspend(tx, row, outcome, pending, now)
    else:  # ReleaseOutcome
        await requeue(tx, [row], now, ready_at=now, count_retry=False)
    return ok


async def _suspend(
    tx: StoreTx,
    row: FenceRow,
    outcome: protocol.SuspendOutcome,
    pending: protocol.StepReport,
    now: float,
) -> None:
    if StepKind(pending.kind) not in CHILD_WAIT_KINDS:
        if await waits.register(tx, row, pending, now):
            # What it waits for happened already: replay at once instead of parking.
            await tx.requeue_executions([row.id], now, now, count_retry=False)
            tx.notify_work(row.project_id)
        else:
            await tx.set_waiting(row.id, outcome.final_state, now)
        return
    unfinished = await tx.count_unfinished_children(row.id, outcome.step_key)
    if unfinished == 0:
        # Everything it waits for is final already (e.g. children of an earlier attempt):
        # resolve the step now and let the execution replay at once.
        await resolve_waiting_step(tx, row.id, outcome.step_key, now)
        await tx.requeue_executions([row.id], now, now, count_retry=False)
        tx.notify_work(row.project_id)
        return
    await tx.set_step_pending(
        row.id, outcome.step_key, unfinished, pending.fail_fast, pending.min_success
    )
    await tx.set_waiting(row.id, outcome.final_state, now)
    if pending.fail_fast or pending.min_success is not None:
        # Children that finished before the parent suspended count towards the policy too.
        await batch_policies.apply(
            tx, row.id, outcome.step_key, pending.fail_fast, pending.min_success, now
        )


async def _finish(
    tx: StoreTx,
    row: FenceRow,
    batch: _Batch,
    outcome: protocol.CompleteOutcome | protocol.FailOutcome,
    now: float,
    deferred: bool,
) -> None:
    """Make the execution final: completed, or failed for good. `deferred`: its row is written
    with the batch's other completions at the end of the request; else now, in order."""
    if isinstance(outcome, protocol.CompleteOutcome):
        status, result, error = ExecutionStatus.COMPLETED, outcome.result, None
        schema = outcome.output_schema
    else:
        status, result, schema = ExecutionStatus.FAILED, None, None
        error = ErrorInfo(outcome.error.type, outcome.error.message)
    placement = (row.root_execution_id, row.parent_execution_id, row.parent_step_key)
    batch.finals.append(
        FinalUpdate(row.id, status, result, error, schema, outcome.final_state, placement)
    )
    if not deferred:
        await batch.flush(tx, now)
    await _finished(tx, row, batch, status, result, error, now)


async def _finished(
    tx: StoreTx,
    row: FenceRow,
    batch: _Batch,
    status: ExecutionStatus,
    result_json: str | None,
    error: ErrorInfo | None,
    now: float,
) -> None:
    if row.notify_parent and row.parent_execution_id and row.parent_step_key:
        batch.finished_children[(row.parent_execution_id, row.parent_step_key)] += 1
    tx.notify_final(row.id)
    tx.observe().finished[(row.project_id, row.workflow_id, status.value)] += 1
    if row.parent_execution_id is None:  # roots tell their watchers (stream_workflow)
        finish = events.finish_event(
            row.project_id,
            row.workflow_id,
            row.id,
            status,
            result_json,
            error.to_json() if error else None,
        )
        await events.publish(tx, row.project_id, [finish], now)


async def _fail_steps_for_unknown_children(
    tx: StoreTx,
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
        await submit_children(tx, row, earlier_children, known, now)
    await tx.insert_steps(row.id, kept, now)
    await requeue(tx, [row], now, ready_at=now, count_retry=False)
    batch.free_slot(row)
    detail = "; ".join(unknown.values())
    return protocol.ReportItemResult(execution_id=row.id, status="requeued", detail=detail)
