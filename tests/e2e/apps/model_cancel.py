"""Workflows of the cancellation tests (tests/e2e/test_cancel.py)."""

from __future__ import annotations

import asyncio
import os
import time
from typing import Any

from polos import WorkflowContext, workflow
from polos.types.types import BatchWorkflowInput
from tests.e2e.apps.engine import append_line


@workflow(id="cx_leaf")
async def cx_leaf(ctx: WorkflowContext, payload: dict[str, Any]) -> dict[str, Any]:
    """Waits for an hour (suspended: holds no slot)."""
    await ctx.step.wait_for("nap", hours=1)
    return {"leaf": payload.get("i")}


@workflow(id="cx_mid")
async def cx_mid(ctx: WorkflowContext, payload: dict[str, Any]) -> dict[str, Any]:
    results = await ctx.step.batch_invoke_and_wait(
        "leaves",
        [BatchWorkflowInput(id="cx_leaf", payload={"i": i}) for i in range(payload["m"])],
    )
    return {"ok": all(r.success for r in results)}


@workflow(id="cx_root")
async def cx_root(ctx: WorkflowContext, payload: dict[str, Any]) -> dict[str, Any]:
    results = await ctx.step.batch_invoke_and_wait(
        "mids",
        [BatchWorkflowInput(id="cx_mid", payload={"m": payload["m"]}) for _ in range(payload["n"])],
    )
    return {"ok": all(r.success for r in results)}


@workflow(id="cx_busy")
async def cx_busy(ctx: WorkflowContext, payload: dict[str, Any]) -> dict[str, Any]:
    """Many short steps; each logs `start <time> <i> <pid>` when its body begins."""

    async def tick(i: int) -> int:
        append_line(payload["log"], f"start {time.time():.6f} {i} {os.getpid()}")
        await asyncio.sleep(payload["seconds"])
        return i

    done = 0
    for i in range(payload["steps"]):
        done = await ctx.step.run(f"tick_{i}", tick, i)
    return {"done": done}


@workflow(id="cx_quick")
async def cx_quick(ctx: WorkflowContext, payload: dict[str, Any]) -> dict[str, Any]:
    return {"quick": payload.get("i")}


@workflow(id="cx_batch_parent")
async def cx_batch_parent(ctx: WorkflowContext, payload: dict[str, Any]) -> dict[str, Any]:
    """A batch of a long waiter (cancelled by the test), a quick child and a waiter with a run
    timeout: failures are values in the batch result."""
    results = await ctx.step.batch_invoke_and_wait(
        "kids",
        [
            BatchWorkflowInput(id="cx_leaf", payload={"i": 0}),
            BatchWorkflowInput(id="cx_quick", payload={"i": 1}),
            BatchWorkflowInput(id="cx_leaf", payload={"i": 2}, run_timeout_seconds=600),
        ],
    )
    return {
        "results": [
            {
                "execution_id": r.execution_id,
                "success": r.success,
                "result": r.result,
                "error": r.error,
                "error_type": r.error_type,
            }
            for r in results
        ]
    }
