"""Workflows of the fault tests. Every step body appends one line to the side-effect log named
in the payload (`tests/faults/checker.py` reads it back):

    <execution_id> <step_key> <start|end> <unix time> <pid>
"""

from __future__ import annotations

import os
import time
from typing import Any

from pydantic import BaseModel

from polos import Queue, WorkflowContext, workflow
from polos.types.types import BatchWorkflowInput
from tests.e2e.apps.engine import append_line


def side_effect(log: str, execution_id: str, step_key: str, seconds: float = 0.0) -> None:
    append_line(log, f"{execution_id} {step_key} start {time.time():.6f} {os.getpid()}")
    if seconds:
        time.sleep(seconds)
    append_line(log, f"{execution_id} {step_key} end {time.time():.6f} {os.getpid()}")


class ChildResult(BaseModel):
    index: int
    double: int


async def _child_steps(ctx: WorkflowContext, payload: dict[str, Any]) -> ChildResult:
    log, seconds = payload["log"], payload.get("seconds", 0.0)

    def first() -> int:
        side_effect(log, ctx.execution_id, "first", seconds)
        return int(payload["index"])

    def second(index: int) -> int:
        gate = payload.get("gate")
        if gate and index >= payload["gate_from"]:
            # Held until the test opens the gate (test_kill_workers: the parent may be woken
            # only once its worker is frozen).
            deadline = time.monotonic() + 120.0
            while not os.path.exists(gate) and time.monotonic() < deadline:
                time.sleep(0.01)
        side_effect(log, ctx.execution_id, "second", seconds)
        return index * 2

    index = await ctx.step.run("first", first)
    double = await ctx.step.run("second", second, index)
    return ChildResult(index=index, double=double)


@workflow(id="fault_child")
async def fault_child(ctx: WorkflowContext, payload: dict[str, Any]) -> ChildResult:
    return await _child_steps(ctx, payload)


@workflow(id="fault_limited_child", queue=Queue("fault_limited", concurrency_limit=3))
async def fault_limited_child(ctx: WorkflowContext, payload: dict[str, Any]) -> ChildResult:
    return await _child_steps(ctx, payload)


@workflow(id="fault_parent")
async def fault_parent(ctx: WorkflowContext, payload: dict[str, Any]) -> dict[str, Any]:
    """payload: log, n, child ("fault_child" or "fault_limited_child"), seconds; optional
    gate and gate_from: the children from index gate_from on finish only once the file
    `gate` exists."""
    log = payload["log"]
    await ctx.step.run("prepare", side_effect, log, ctx.execution_id, "prepare")
    results = await ctx.step.batch_invoke_and_wait(
        "children",
        [
            BatchWorkflowInput(
                id=payload.get("child", "fault_child"),
                payload={
                    "log": log,
                    "index": i,
                    "seconds": payload.get("seconds", 0.0),
                    "gate": payload.get("gate"),
                    "gate_from": payload.get("gate_from", payload["n"]),
                },
            )
            for i in range(payload["n"])
        ],
    )
    await ctx.step.run("aggregate", side_effect, log, ctx.execution_id, "aggregate")
    return {
        "indices": [r.result.index if r.success else None for r in results],
        "doubles": [r.result.double if r.success else None for r in results],
        "errors": [r.error for r in results if not r.success],
    }
