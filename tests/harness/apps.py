"""Workflows of the test-harness tests (polos.testing). They run in the test's own process (the
environment's worker is in-process), so they report what happened by appending to `LOG`
from a durable step (a replay does not append twice)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel

from polos import (
    BatchEventPayload,
    SchedulePayload,
    StepExecutionError,
    WorkflowContext,
    workflow,
)
from polos.types.types import BatchWorkflowInput

# What the workflows did, in the order they did it.
LOG: list[Any] = []
# Attempts of `h_flaky` by execution: the first one fails.
ATTEMPTS: dict[str, int] = {}


async def note(ctx: WorkflowContext, key: str, entry: Any) -> None:
    await ctx.step.run(key, LOG.append, entry)


class Greeting(BaseModel):
    text: str
    length: int


@workflow(id="h_greet")
async def h_greet(ctx: WorkflowContext, payload: dict[str, Any]) -> Greeting:
    length = await ctx.step.run("measure", len, payload["name"])
    return Greeting(text=f"hello {payload['name']}", length=length)


@workflow(id="h_square")
async def h_square(ctx: WorkflowContext, payload: dict[str, Any]) -> int:
    if payload["n"] < 0:
        raise ValueError(f"negative: {payload['n']}")
    return int(await ctx.step.run("square", lambda: payload["n"] ** 2))


@workflow(id="h_fan_out")
async def h_fan_out(ctx: WorkflowContext, payload: dict[str, Any]) -> dict[str, Any]:
    results = await ctx.step.batch_invoke_and_wait(
        "squares", [BatchWorkflowInput(id="h_square", payload={"n": n}) for n in payload["ns"]]
    )
    return {
        "results": [r.result if r.success else None for r in results],
        "errors": [r.error for r in results],
    }


@workflow(id="h_fire_and_forget")
async def h_fire_and_forget(ctx: WorkflowContext, payload: dict[str, Any]) -> list[str]:
    handles = await ctx.step.batch_invoke(
        "start", [BatchWorkflowInput(id="h_sleeper", payload=p) for p in payload["children"]]
    )
    return [h.id for h in handles]


@workflow(id="h_sleeper")
async def h_sleeper(ctx: WorkflowContext, payload: dict[str, Any]) -> str:
    """Waits `hours`, then logs its name."""
    await ctx.step.wait_for("nap", hours=payload["hours"])
    await note(ctx, "woke", payload["name"])
    return str(payload["name"])


@workflow(id="h_chain")
async def h_chain(ctx: WorkflowContext, payload: dict[str, Any]) -> str:
    """Waits an hour, then waits for a child that waits another hour."""
    await ctx.step.wait_for("first", hours=1)
    await note(ctx, "woke", "chain")
    return str(
        await ctx.step.invoke_and_wait(
            "child", h_sleeper, {"name": "chain-child", "hours": payload["child_hours"]}
        )
    )


@workflow(id="h_until")
async def h_until(ctx: WorkflowContext, payload: dict[str, Any]) -> str:
    await ctx.step.wait_until("until", datetime.fromisoformat(payload["at"]))
    return "reached"


@workflow(id="h_approval")
async def h_approval(ctx: WorkflowContext, payload: dict[str, Any]) -> dict[str, Any]:
    try:
        resumed = await ctx.step.suspend("approve", {"doc": 1}, timeout=payload["timeout"])
    except StepExecutionError as exc:
        return {"approved": False, "error_type": exc.error_type}
    return {"approved": bool(resumed["data"]["ok"])}


@workflow(id="h_flaky")
async def h_flaky(ctx: WorkflowContext, payload: dict[str, Any]) -> str:
    """Fails its first attempt (an unexpected error: retried at the workflow level)."""
    ATTEMPTS[ctx.execution_id] = ATTEMPTS.get(ctx.execution_id, 0) + 1
    if ATTEMPTS[ctx.execution_id] == 1:
        raise RuntimeError("first attempt fails")
    return "second attempt"


@workflow(id="h_busy")
async def h_busy(ctx: WorkflowContext, payload: dict[str, Any]) -> str:
    """A step that takes `seconds` of real time."""
    await ctx.step.run("work", asyncio.sleep, payload["seconds"])
    return "done"


@workflow(id="h_clock_reader")
async def h_clock_reader(ctx: WorkflowContext, payload: dict[str, Any]) -> list[int]:
    """Reads the time through ctx.step, waits a day after it, reads it again."""
    first = await ctx.step.now("first")
    await ctx.step.wait_for("nap", days=1)
    second = await ctx.step.now("second")
    later = datetime.fromtimestamp(second / 1000 + 3600, UTC)
    await ctx.step.wait_until("an_hour_after", later)
    return [first, second, await ctx.step.now("third")]


@workflow(id="h_hourly", schedule="0 * * * *")
async def h_hourly(ctx: WorkflowContext, payload: SchedulePayload) -> str:
    await note(ctx, "slot", payload.timestamp)
    return payload.timestamp.isoformat()


@workflow(id="h_listener")
async def h_listener(ctx: WorkflowContext, payload: dict[str, Any]) -> Any:
    try:
        event = await ctx.step.wait_for_event("hear", payload["topic"], timeout=600)
    except StepExecutionError as exc:
        return {"error_type": exc.error_type}
    return event.data


@workflow(id="h_batcher", trigger_on_event="h-batch", batch_size=3, batch_timeout_seconds=600)
async def h_batcher(ctx: WorkflowContext, payload: BatchEventPayload) -> int:
    await note(ctx, "batch", [e.data["n"] for e in payload.events])
    return len(payload.events)


@workflow(id="h_bad_waits")
async def h_bad_waits(ctx: WorkflowContext, payload: dict[str, Any]) -> list[str]:
    """Waits with values the server would refuse: each fails its own call."""
    failures: list[str] = []
    attempts = [
        lambda: ctx.step.wait_for_event("topic", "t" * 300),
        lambda: ctx.step.wait_for_event("timeout", "fine-topic", timeout=-5),
        lambda: ctx.step.wait_for("far", weeks=10_000),
        lambda: ctx.step.suspend("k" * 300),
    ]
    for attempt in attempts:
        try:
            await attempt()
        except StepExecutionError as exc:
            failures.append(f"{exc.error_type}: {exc}")
    # The attempt's reports are still accepted: this step is recorded and the run completes.
    await ctx.step.run("after", lambda: None)
    return failures


# Everything but the schedule and the event trigger.
PLAIN = [
    h_bad_waits,
    h_greet,
    h_square,
    h_fan_out,
    h_fire_and_forget,
    h_sleeper,
    h_chain,
    h_until,
    h_clock_reader,
    h_approval,
    h_flaky,
    h_busy,
    h_listener,
]
