"""Workflows of the suspend/resume tests (tests/e2e/test_suspend.py)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from polos import StepExecutionError, WorkflowContext, workflow


class Request(BaseModel):
    amount: int
    reason: str


@workflow(id="sus_approval")
async def sus_approval(ctx: WorkflowContext, payload: dict[str, Any]) -> dict[str, Any]:
    """Suspends with key "approve" (a model as data) and returns what the resume carried.
    With `gate_topic`, it first waits for an event there: a resume sent meanwhile arrives
    before the suspension is registered. With `catch`, a timeout is returned, not raised."""
    if payload.get("gate_topic"):
        await ctx.step.wait_for_event("gate", payload["gate_topic"])
    try:
        resumed = await ctx.step.suspend(
            "approve",
            Request(amount=payload.get("amount", 1), reason="needs a human"),
            timeout=payload.get("timeout"),
        )
    except StepExecutionError as exc:
        if not payload.get("catch"):
            raise
        return {"error_type": exc.error_type, "message": str(exc)}
    return {
        "data": resumed["data"],
        "event_type": resumed["event_type"],
        "topic": resumed["topic"],
        "keys": sorted(resumed),
    }


@workflow(id="sus_tree")
async def sus_tree(ctx: WorkflowContext, payload: dict[str, Any]) -> dict[str, Any]:
    """Starts a child that suspends with key "approve", then suspends with the same key."""
    child = await ctx.step.invoke("child", "sus_approval", {"amount": 2})
    resumed = await ctx.step.suspend("approve", {"who": "parent"})
    return {"child": child.id, "data": resumed["data"]}


@workflow(id="sus_resumer")
async def sus_resumer(ctx: WorkflowContext, payload: dict[str, Any]) -> dict[str, Any]:
    """Resumes another execution's suspension from inside a workflow (ctx.step.resume)."""
    await ctx.step.resume(
        "resume_it",
        suspend_step_key=payload["key"],
        suspend_execution_id=payload["execution_id"],
        suspend_workflow_id=payload["workflow_id"],
        data=payload["data"],
    )
    return {"resumed": payload["execution_id"]}
