"""Workflows of the tracing and metrics tests (tests/e2e/test_observability.py).

- `obs_parent` fans out to `obs_child`ren (one of which fails in a step), with custom spans
  around a block of the workflow, inside a step's body and around its aggregation.
- `obs_gate_parent` fans out to `obs_gate_child`ren that each run a step and then wait for an
  event on a topic, so that a test can look at the metrics while they all wait.
"""

from __future__ import annotations

from typing import Any

from polos import WorkflowContext, workflow
from polos.types.types import BatchWorkflowInput


def _square(i: int) -> int:
    return i * i


def _explode(i: int) -> None:
    raise ValueError(f"child {i} exploded on purpose")


@workflow(id="obs_child")
async def obs_child(ctx: WorkflowContext, payload: dict[str, Any]) -> dict[str, Any]:
    square = await ctx.step.run("square", _square, payload["i"])
    if payload.get("fail"):
        await ctx.step.run("explode", _explode, payload["i"], max_retries=0)
    return {"i": payload["i"], "square": square}


@workflow(id="obs_parent")
async def obs_parent(ctx: WorkflowContext, payload: dict[str, Any]) -> dict[str, Any]:
    n = int(payload["n"])
    with ctx.step.trace("prepare", {"app.children": n}) as span:
        span.set_attribute("app.note", "before the fan-out")

    async def setup() -> str:
        # A custom span in a step's body: a child of the step's span.
        async with ctx.step.trace("inside_setup") as inner:
            inner.add_event("setting up")
        return "ready"

    await ctx.step.run("setup", setup)
    results = await ctx.step.batch_invoke_and_wait(
        "children",
        [
            BatchWorkflowInput(id="obs_child", payload={"i": i, "fail": i == payload.get("fail")})
            for i in range(n)
        ],
    )
    with ctx.step.trace("aggregate"):
        squares = [r.result["square"] for r in results if r.success]
        failed = [r.execution_id for r in results if not r.success]
    return {"squares": squares, "failed": failed}


def _work(i: int) -> int:
    return i + 1


@workflow(id="obs_gate_child")
async def obs_gate_child(ctx: WorkflowContext, payload: dict[str, Any]) -> int:
    value = await ctx.step.run("work", _work, payload["i"])
    await ctx.step.wait_for_event("gate", payload["topic"])
    return int(value)


@workflow(id="obs_gate_parent")
async def obs_gate_parent(ctx: WorkflowContext, payload: dict[str, Any]) -> int:
    results = await ctx.step.batch_invoke_and_wait(
        "children",
        [
            BatchWorkflowInput(id="obs_gate_child", payload={"i": i, "topic": payload["topic"]})
            for i in range(int(payload["n"]))
        ],
    )
    return sum(r.result for r in results if r.success)
