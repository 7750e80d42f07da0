"""Events: publishing (which resolves waiting steps and fires event-triggered workflows, in the
same transaction), and the lifecycle events the server writes for root executions.

The matching rule (docs/decisions.md, "Events are a mailbox"): a wait on a topic takes the first
event of that topic (of its event type, if it names one) with a sequence above its cursor — the
sequence reached when its execution was created, or the last event it consumed on that topic.
Publishing and registering a wait on the same topic are serialized (`tx.lock_topic`), so an
event is either seen by the registration or finds the registered wait: never neither.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from polos import codec
from polos.model import (
    EventRecord,
    EventTrigger,
    EventWait,
    ExecutionStatus,
    NewEvent,
    StepStatus,
    TimerKind,
)
from polos.server import lifecycle
from polos.store.base import StoreTx


def workflow_topic(workflow_id: str, execution_id: str) -> str:
    """The topic of one execution: its lifecycle events, and its suspends and resumes."""
    return f"workflow/{workflow_id}/{execution_id}"


async def publish(
    tx: StoreTx, project_id: str, events: Sequence[NewEvent], now: float
) -> list[EventRecord]:
    topics = sorted({e.topic for e in events})
    records = await tx.publish_events(project_id, topics, events, now)
    for topic in topics:
        on_topic = [r for r in records if r.topic == topic]
        waits, triggers = await tx.topic_listeners(project_id, topic)
        await _resolve_waits(tx, waits, on_topic, now)
        for trigger in triggers:
            await fire_trigger(tx, trigger, now, partial=False)
        tx.notify_topic(project_id, topic)
    return records


async def _resolve_waits(
    tx: StoreTx, waits: Sequence[EventWait], records: Sequence[EventRecord], now: float
) -> None:
    if not waits:
        return
    woken: list[str] = []
    for wait in waits:
        match = next(
            (
                r
                for r in records
                if r.seq > wait.after_seq
                and (wait.event_type is None or wait.event_type == r.event_type)
            ),
            None,
        )
        if match is None:
            continue
        await tx.resolve_step(
            wait.execution_id, wait.step_key, StepStatus.COMPLETED, match.to_json(), None, None, now
        )
        await tx.delete_step_timers(wait.execution_id, wait.step_key)
        woken.append(wait.execution_id)
    await wake(tx, woken, now)


async def wake(tx: StoreTx, execution_ids: Sequence[str], now: float) -> None:
    """Queue the waiting ones among `execution_ids` again (their wait is resolved)."""
    if not execution_ids:
        return
    rows = await tx.fence_rows(execution_ids)
    waiting = [r for r in rows.values() if r.status is ExecutionStatus.WAITING]
    await lifecycle.requeue(tx, waiting, now, ready_at=now, count_retry=False)


async def first_match(
    tx: StoreTx,
    project_id: str,
    topic: str,
    after_seq: int,
    event_type: str | None,
) -> EventRecord | None:
    found = await tx.events_after(project_id, topic, after_seq, 1, event_type)
    return found[0] if found else None


# --------------------------------------------------------------------------- triggers


def _trigger_target(trigger: EventTrigger) -> str:
    # JSON, not a NUL separator: PostgreSQL text cannot hold NUL bytes.
    return json.dumps([trigger.workflow_id, trigger.topic])


def parse_trigger_target(target: str) -> tuple[str, str]:
    if not target.startswith("["):  # written by an earlier version (SQLite only)
        workflow_id, _, topic = target.partition("\x00")
        return workflow_id, topic
    workflow_id, topic = json.loads(target)
    return str(workflow_id), str(topic)


def _batch_due(trigger: EventTrigger, oldest: EventRecord, now: float) -> bool:
    """Whether a partial batch starting with `oldest` has waited its batch timeout. (The timer
    that fired may belong to an event that a full batch took meanwhile.)"""
    timeout = trigger.batch_timeout_seconds
    return timeout is not None and oldest.created_at + timeout <= now


async def fire_trigger(tx: StoreTx, trigger: EventTrigger, now: float, partial: bool) -> None:
    """Start executions for the events after the trigger's cursor: one per event when
    batch_size is 1 without a timeout, else one per full batch — or, when `partial` (a batch
    timer fired) and the oldest waiting event has waited the batch timeout, one for what
    there is. Each start has an idempotency key derived from its first event, so a batch is
    never started twice."""
    single = trigger.batch_size == 1 and trigger.batch_timeout_seconds is None
    size = 1 if single else trigger.batch_size
    cursor = trigger.cursor_seq
    while True:
        pending = await tx.events_after(trigger.project_id, trigger.topic, cursor, size, None)
        if not pending:
            break
        if len(pending) < size and not (partial and _batch_due(trigger, pending[0], now)):
            break
        if single:
            payload = pending[0].to_json()
        else:
            payload = '{"events":[' + ",".join(e.to_json() for e in pending) + "]}"
        await lifecycle.submit(
            tx,
            trigger.project_id,
            [
                lifecycle.SubmitSpec(
                    workflow_id=trigger.workflow_id,
                    payload_json=payload,
                    queue_name=trigger.queue_name,
                    idempotency_key=f"trigger:{trigger.workflow_id}:{trigger.topic}:"
                    f"{pending[0].seq}",
                )
            ],
            now,
        )
        cursor = pending[-1].seq
        partial = False
    if cursor != trigger.cursor_seq:
        await tx.advance_trigger(trigger.project_id, trigger.workflow_id, trigger.topic, cursor)
        trigger.cursor_seq = cursor
    if trigger.batch_timeout_seconds is not None:
        rest = await tx.events_after(trigger.project_id, trigger.topic, cursor, 1, None)
        target = _trigger_target(trigger)
        if rest and not await tx.has_timer(
            TimerKind.TRIGGER_BATCH, target, str(rest[0].seq), after=now
        ):
            # The oldest waiting event starts the batch's clock (one timer per batch start).
            await tx.insert_timer(
                trigger.project_id,
                TimerKind.TRIGGER_BATCH,
                rest[0].created_at + trigger.batch_timeout_seconds,
                target=target,
                step_key=str(rest[0].seq),
            )


# --------------------------------------------------------------------------- lifecycle events


def start_event(
    project_id: str, workflow_id: str, execution_id: str, payload_json: str
) -> NewEvent:
    return NewEvent(
        project_id=project_id,
        topic=workflow_topic(workflow_id, execution_id),
        event_type="workflow_start",
        data_json='{"payload":%s,"_metadata":%s}'
        % (payload_json, json.dumps({"execution_id": execution_id, "workflow_id": workflow_id})),
        execution_id=execution_id,
        root_execution_id=execution_id,
    )


def finish_event(
    project_id: str,
    workflow_id: str,
    execution_id: str,
    status: ExecutionStatus,
    result_json: str | None,
    error: dict[str, str] | None,
) -> NewEvent:
    metadata = json.dumps({"execution_id": execution_id, "workflow_id": workflow_id})
    return NewEvent(
        project_id=project_id,
        topic=workflow_topic(workflow_id, execution_id),
        event_type="workflow_finish",
        data_json='{"status":%s,"result":%s,"error":%s,"_metadata":%s}'
        % (json.dumps(status.value), result_json or "null", codec.dumps(error), metadata),
        execution_id=execution_id,
        root_execution_id=execution_id,
    )
