"""Workflows for the size-limit, bad-value and idempotency tests."""

from __future__ import annotations

from typing import Any

from polos import WorkflowContext, workflow
from polos.types.types import BatchWorkflowInput


@workflow(id="limits_target")
async def limits_target(ctx: WorkflowContext, payload: Any) -> Any:
    return payload


@workflow(id="big_step")
async def big_step(ctx: WorkflowContext, payload: dict[str, Any]) -> dict[str, int]:
    text = await ctx.step.run("make_text", lambda: "x" * payload["size"])
    return {"length": len(text)}


@workflow(id="big_result")
async def big_result(ctx: WorkflowContext, payload: dict[str, Any]) -> str:
    return "x" * int(payload["size"])


@workflow(id="big_in_batch")
async def big_in_batch(ctx: WorkflowContext, payload: dict[str, Any]) -> list[dict[str, Any]]:
    sizes = payload["sizes"]
    results = await ctx.step.batch_invoke_and_wait(
        "children", [BatchWorkflowInput(id="big_step", payload={"size": s}) for s in sizes]
    )
    return [
        {"success": r.success, "result": r.result, "error": r.error, "error_type": r.error_type}
        for r in results
    ]


@workflow(id="empty_batches")
async def empty_batches(ctx: WorkflowContext, payload: dict[str, Any]) -> dict[str, Any]:
    waited = await ctx.step.batch_invoke_and_wait("none_waited", [])
    fired = await ctx.step.batch_invoke("none_fired", [])
    return {"waited": waited, "fired": fired}


@workflow(id="nan_step")
async def nan_step(ctx: WorkflowContext, payload: dict[str, Any]) -> float:
    value: float = await ctx.step.run("nan", lambda: float("nan"))
    return value


@workflow(id="nul_key")
async def nul_key(ctx: WorkflowContext, payload: dict[str, Any]) -> int:
    value: int = await ctx.step.run("a\x00b", lambda: 1)
    return value


@workflow(id="start_once")
async def start_once(ctx: WorkflowContext, payload: dict[str, Any]) -> str:
    handle = await ctx.step.invoke(
        "start", "limits_target", {"from": ctx.execution_id}, idempotency_key=payload["key"]
    )
    return handle.execution_id
