"""Workflows of the event tests (tests/e2e/test_events.py): publishing from steps, waiting for
events (mailbox rule, timeouts), lifecycle events, and event-triggered workflows."""

from __future__ import annotations

from typing import Any

from polos import StepExecutionError, WorkflowContext, workflow
from polos.events import BatchEventPayload, EventPayload

# Topics of the triggered workflows (fixed at decoration time).
SINGLE_TOPIC = "model/trigger/single"
BATCH_TOPIC = "model/trigger/batch"
BATCH_SIZE = 3
BATCH_TIMEOUT = 60


@workflow(id="ev_publisher")
async def ev_publisher(ctx: WorkflowContext, payload: dict[str, Any]) -> dict[str, Any]:
    """Publishes `n` events (one step each), then suspends for a long wait (so the steps are
    replayed once the clock moves), then publishes one more."""
    topic = payload["topic"]
    for i in range(payload["n"]):
        await ctx.step.publish_event(f"pub_{i}", topic, {"i": i}, event_type="item")
    await ctx.step.wait_for("nap", minutes=10)
    await ctx.step.publish_event("pub_last", topic, {"i": "last"}, event_type="item")
    return {"published": payload["n"] + 1}


@workflow(id="ev_waiter")
async def ev_waiter(ctx: WorkflowContext, payload: dict[str, Any]) -> dict[str, Any]:
    """Waits for a gate event first (so the test can publish on `topic` while this execution
    exists but has no wait on `topic` yet), then for two events on `topic`. After the first it
    publishes a marker, so the test knows the second wait is next."""
    gate = await ctx.step.wait_for_event("gate", payload["gate_topic"])
    first = await ctx.step.wait_for_event("first", payload["topic"])
    await ctx.step.publish_event("marker", payload["marker_topic"], {"first": first.data})
    second = await ctx.step.wait_for_event("second", payload["topic"])
    return {
        "gate": gate.data,
        "first": first.data,
        "second": second.data,
        "first_seq": first.sequence_id,
        "second_seq": second.sequence_id,
        "first_type": first.event_type,
        "first_topic": first.topic,
        "types": [type(e).__name__ for e in (gate, first, second)],
    }


@workflow(id="ev_timeout")
async def ev_timeout(ctx: WorkflowContext, payload: dict[str, Any]) -> dict[str, Any]:
    """Waits `timeout` seconds for an event that never comes. With `catch`, returns the error;
    without, the StepExecutionError escapes (a final failure)."""
    try:
        event = await ctx.step.wait_for_event("never", payload["topic"], timeout=payload["timeout"])
    except StepExecutionError as exc:
        if not payload.get("catch"):
            raise
        return {"error_type": exc.error_type, "message": str(exc)}
    return {"event": event.data}


@workflow(id="ev_run_events")
async def ev_run_events(ctx: WorkflowContext, payload: dict[str, Any]) -> dict[str, Any]:
    """Publishes on its own run's topic (what stream_workflow reads), then ends."""
    for i in range(payload["n"]):
        await ctx.step.publish_workflow_event(f"progress_{i}", {"i": i}, event_type="progress")
    if payload.get("fail"):
        await ctx.step.run("break", _broken, max_retries=0)
    return {"done": payload["n"]}


def _broken() -> None:
    raise ValueError("broken on purpose")


@workflow(id="ev_single", trigger_on_event=SINGLE_TOPIC)
async def ev_single(ctx: WorkflowContext, payload: EventPayload) -> dict[str, Any]:
    return {
        "type": type(payload).__name__,
        "seq": payload.sequence_id,
        "data": payload.data,
        "topic": payload.topic,
    }


@workflow(
    id="ev_batch",
    trigger_on_event=BATCH_TOPIC,
    batch_size=BATCH_SIZE,
    batch_timeout_seconds=BATCH_TIMEOUT,
)
async def ev_batch(ctx: WorkflowContext, payload: BatchEventPayload) -> dict[str, Any]:
    return {
        "type": type(payload).__name__,
        "seqs": [e.sequence_id for e in payload.events],
        "data": [e.data for e in payload.events],
    }
