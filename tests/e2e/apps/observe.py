"""Workflows for the observability API and the CLI: a nested fan-out with chosen failures, and
a batch whose children end up in every status at once (waiting on an event, running until a
file appears, queued behind a limit of 2, failed, completed)."""

from __future__ import annotations

import asyncio
import os
import time
from typing import Any

from polos import WorkflowContext, queue, workflow
from polos.types.types import BatchWorkflowInput

LIMITED = queue("obs_limited", concurrency_limit=2)


def _fail(message: str) -> None:
    raise ValueError(message)


@workflow(id="obs_leaf")
async def obs_leaf(ctx: WorkflowContext, payload: dict[str, Any]) -> dict[str, Any]:
    """Fails (StepExecutionError, not retried) when `fail` is set."""
    if payload.get("fail"):
        await ctx.step.run("work", _fail, f"leaf {payload['i']} failed", max_retries=0)
    value = await ctx.step.run("work", lambda: payload["i"] * 2)
    return {"i": payload["i"], "value": value}


@workflow(id="obs_middle")
async def obs_middle(ctx: WorkflowContext, payload: dict[str, Any]) -> dict[str, Any]:
    failing = set(payload.get("fail", []))
    results = await ctx.step.batch_invoke_and_wait(
        "leaves",
        [
            BatchWorkflowInput(id="obs_leaf", payload={"i": j, "fail": j in failing})
            for j in range(payload["n"])
        ],
    )
    return {"ok": sum(r.success for r in results), "failed": sum(not r.success for r in results)}


@workflow(id="obs_root")
async def obs_root(ctx: WorkflowContext, payload: dict[str, Any]) -> dict[str, Any]:
    """`children` middles with `grandchildren` leaves each; `fail` lists [child, leaf] pairs
    whose leaf fails (the middles complete: failures are values)."""
    failing: dict[int, list[int]] = {}
    for child, leaf in payload.get("fail", []):
        failing.setdefault(child, []).append(leaf)
    await ctx.step.run("prepare", lambda: "ready")
    results = await ctx.step.batch_invoke_and_wait(
        "middles",
        [
            BatchWorkflowInput(
                id="obs_middle", payload={"n": payload["grandchildren"], "fail": failing.get(i, [])}
            )
            for i in range(payload["children"])
        ],
    )
    return {"children": len(results), "failed_leaves": sum(r.result["failed"] for r in results)}


# --------------------------------------------------------------------------- every status


@workflow(id="obs_event_child")
async def obs_event_child(ctx: WorkflowContext, payload: dict[str, Any]) -> str:
    await ctx.step.wait_for_event("gate", payload["topic"], timeout=600)
    return "released"


async def _wait_for_file(path: str) -> str:
    deadline = time.monotonic() + 120
    while not os.path.exists(path):
        if time.monotonic() > deadline:
            raise TimeoutError(f"{path} never appeared")
        await asyncio.sleep(0.02)
    return "unblocked"


@workflow(id="obs_blocked_child", queue=LIMITED)
async def obs_blocked_child(ctx: WorkflowContext, payload: dict[str, Any]) -> str:
    result: str = await ctx.step.run("block", _wait_for_file, payload["file"])
    return result


@workflow(id="obs_mixed_root")
async def obs_mixed_root(ctx: WorkflowContext, payload: dict[str, Any]) -> dict[str, int]:
    """3 children waiting on an event, 4 blocked on a file behind a limit of 2 (2 running,
    2 queued), 2 failing, 3 completing."""
    items = [
        *[BatchWorkflowInput(id="obs_event_child", payload={"topic": payload["topic"]})] * 3,
        *(
            BatchWorkflowInput(id="obs_blocked_child", payload={"file": payload["file"]})
            for _ in range(4)
        ),
        *(BatchWorkflowInput(id="obs_leaf", payload={"i": i, "fail": True}) for i in range(2)),
        *(BatchWorkflowInput(id="obs_leaf", payload={"i": i}) for i in range(3)),
    ]
    results = await ctx.step.batch_invoke_and_wait("mixed", items)
    return {"ok": sum(r.success for r in results), "failed": sum(not r.success for r in results)}


@workflow(id="obs_wide")
async def obs_wide(ctx: WorkflowContext, payload: dict[str, Any]) -> int:
    """One flat batch of `n` leaves, those in `fail` failing."""
    failing = set(payload.get("fail", []))
    results = await ctx.step.batch_invoke_and_wait(
        "leaves",
        [
            BatchWorkflowInput(id="obs_leaf", payload={"i": i, "fail": i in failing})
            for i in range(payload["n"])
        ],
    )
    return sum(r.success for r in results)
