"""Waiting steps other than children: timers (`wait_for`, `wait_until`), event waits
(`wait_for_event`) and suspensions (`suspend`), and the durable timers that end them.

A wait registers in the transaction that suspends its execution. If what it waits for has
happened already (a due time, a matching event published earlier), the step is resolved at once
and the execution re-queued instead of parked.
"""

from __future__ import annotations

from datetime import UTC, datetime

from polos import protocol
from polos.model import (
    EVENT_WAIT_KINDS,
    ErrorInfo,
    ExecutionStatus,
    FenceRow,
    StepKind,
    StepStatus,
    Timer,
    TimerKind,
)
from polos.server import events
from polos.server.cancel import cancel_tree
from polos.store.base import StoreTx


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat().replace("+00:00", "Z")


def _wake_result(fire_at: float) -> str:
    return '{"wait_until":"%s"}' % _iso(fire_at)


async def register(tx: StoreTx, row: FenceRow, step: protocol.StepReport, now: float) -> bool:
    """Register the pending wait `step` of `row`. True when it is satisfied already (the step
    is resolved and the caller re-queues the execution instead of parking it)."""
    kind = StepKind(step.kind)
    if kind is StepKind.WAIT:
        fire_at = step.wait_until if step.wait_until is not None else now + (step.wait_seconds or 0)
        if fire_at <= now:
            await tx.resolve_step(
                row.id, step.key, StepStatus.COMPLETED, _wake_result(fire_at), None, None, now
            )
            return True
        await tx.insert_timer(row.project_id, TimerKind.WAKE, fire_at, row.id, step.key)
        tx.notify_timer(fire_at)
        return False
    if kind in EVENT_WAIT_KINDS:
        assert step.wait_topic is not None  # checked by the route
        await tx.lock_topic(row.project_id, step.wait_topic)
        after = (
            step.wait_after_seq
            if step.wait_after_seq is not None
            else await tx.event_cursor_of(row.id)
        )
        match = await events.first_match(
            tx, row.project_id, step.wait_topic, after, step.wait_event_type
        )
        if match is not None:
            await tx.resolve_step(
                row.id, step.key, StepStatus.COMPLETED, match.to_json(), None, None, now
            )
            return True
        await tx.set_event_wait(
            row.id, step.key, step.wait_topic, step.wait_event_type, step.wait_after_seq
        )
        if step.wait_timeout_seconds is not None:
            fire_at = now + step.wait_timeout_seconds
            await tx.insert_timer(row.project_id, TimerKind.WAIT_TIMEOUT, fire_at, row.id, step.key)
            tx.notify_timer(fire_at)
        return False
    raise ValueError(f"{kind.value} steps are not registered here")


# --------------------------------------------------------------------------- timers


async def fire_due(tx: StoreTx, now: float, limit: int) -> int:
    """Fire the timers due by `now` (each once: taken and deleted in this transaction)."""
    due = await tx.due_timers(now, limit)
    woken: list[str] = []
    for timer in due:
        if timer.kind is TimerKind.WAKE:
            if await _resolve_pending(
                tx, timer, StepStatus.COMPLETED, _wake_result(timer.fire_at), None, now
            ):
                woken.append(timer.execution_id or "")
        elif timer.kind is TimerKind.WAIT_TIMEOUT:
            step = await tx.get_step(timer.execution_id or "", timer.step_key or "")
            what = (
                "suspension" if step is not None and step.kind is StepKind.SUSPEND else "event wait"
            )
            error = ErrorInfo(
                "SuspendTimeoutError" if what == "suspension" else "EventWaitTimeoutError",
                f"Step '{timer.step_key}': the {what} timed out at {_iso(timer.fire_at)}",
            )
            if await _resolve_pending(tx, timer, StepStatus.FAILED, None, error, now):
                woken.append(timer.execution_id or "")
        elif timer.kind is TimerKind.RUN_TIMEOUT:
            await cancel_tree(
                tx,
                timer.execution_id or "",
                ErrorInfo(
                    "ExecutionTimeoutError",
                    f"execution {timer.execution_id} ran past its run_timeout_seconds",
                ),
                now,
            )
        elif timer.kind is TimerKind.TRIGGER_BATCH:
            workflow_id, topic = events.parse_trigger_target(timer.target or "")
            trigger = await tx.get_trigger(timer.project_id, workflow_id, topic)
            if trigger is not None:
                await events.fire_trigger(tx, trigger, now, partial=True)
    await tx.delete_timers([t.id for t in due])
    await events.wake(tx, [w for w in woken if w], now)
    return len(due)


async def _resolve_pending(
    tx: StoreTx,
    timer: Timer,
    status: StepStatus,
    result_json: str | None,
    error: ErrorInfo | None,
    now: float,
) -> bool:
    if timer.execution_id is None or timer.step_key is None:
        return False
    step = await tx.get_step(timer.execution_id, timer.step_key)
    if step is None or step.status is not StepStatus.PENDING:
        return False  # resolved meanwhile (the event came, the execution was cancelled)
    rows = await tx.fence_rows([timer.execution_id])
    row = rows.get(timer.execution_id)
    if row is None or row.status is not ExecutionStatus.WAITING:
        return False
    await tx.resolve_step(timer.execution_id, timer.step_key, status, result_json, error, None, now)
    await tx.delete_step_timers(timer.execution_id, timer.step_key)
    return True
