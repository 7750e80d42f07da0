"""Workflows of the concurrency-key tests (tests/e2e/test_concurrency_keys.py)."""

from __future__ import annotations

import asyncio
import os
import time
from typing import Any

from polos import Queue, WorkflowContext, workflow
from polos.types.types import BatchWorkflowInput
from tests.e2e.apps.engine import append_line

KEYED_QUEUE = Queue("model_keyed_q", concurrency_limit=2)


@workflow(id="keyed", queue=KEYED_QUEUE)
async def keyed(ctx: WorkflowContext, payload: dict[str, Any]) -> dict[str, Any]:
    """Logs `start`/`end` lines with its key around a short sleep (not a step)."""
    log = payload.get("log")
    if log:
        append_line(log, f"start {time.time():.6f} {payload['key']} {payload['i']} {os.getpid()}")
    await asyncio.sleep(payload.get("seconds", 0.0))
    if log:
        append_line(log, f"end {time.time():.6f} {payload['key']} {payload['i']} {os.getpid()}")
    return {"key": payload["key"], "i": payload["i"]}


@workflow(id="keyed_parent")
async def keyed_parent(ctx: WorkflowContext, payload: dict[str, Any]) -> dict[str, Any]:
    """Starts children with concurrency keys through every step API."""
    fire = await ctx.step.invoke(
        "fire", keyed, {"key": "k-invoke", "i": 0}, concurrency_key="k-invoke"
    )
    waited = await ctx.step.invoke_and_wait(
        "wait", keyed, {"key": "k-wait", "i": 1}, concurrency_key="k-wait"
    )
    batch = await ctx.step.batch_invoke_and_wait(
        "batch",
        [
            BatchWorkflowInput(
                id="keyed", payload={"key": f"k-b{i}", "i": i}, concurrency_key=f"k-b{i}"
            )
            for i in range(2)
        ],
    )
    handles = await ctx.step.batch_invoke(
        "batch_fire",
        [BatchWorkflowInput(id="keyed", payload={"key": "k-bf", "i": 9}, concurrency_key="k-bf")],
    )
    return {
        "fire": fire.id,
        "waited": waited,
        "batch": [r.execution_id for r in batch],
        "batch_ok": all(r.success for r in batch),
        "batch_fire": [h.id for h in handles],
    }
