"""Workflows of the state tests (tests/e2e/test_state.py): `state_schema` and `ctx.state`."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from polos import WorkflowContext, WorkflowState, workflow
from tests.e2e.apps.model_waits import log_run


class Counter(WorkflowState):
    count: int = 0
    items: list[str] = Field(default_factory=list)
    note: str = "fresh"


def _explode() -> None:
    raise RuntimeError("the last step broke")


@workflow(id="st_counter", state_schema=Counter)
async def st_counter(ctx: WorkflowContext, payload: dict[str, Any]) -> dict[str, Any]:
    """Mutates its state around a suspension. Every body run logs the state it started from;
    a replay rebuilds the state from initial_state and re-applies the mutations once."""
    state = ctx.state
    assert isinstance(state, Counter)
    log_run(payload.get("log"), start=state.model_dump())
    state.items.append("start")
    state.count += 1
    await ctx.step.run("work", lambda: "worked")
    await ctx.step.suspend("pause", {"count": state.count})
    state.count += 10
    state.items.append("resumed")
    state.note = "after the pause"
    if payload.get("fail"):
        await ctx.step.run("explode", _explode, max_retries=0)
    return {"count": state.count, "items": list(state.items)}
