"""Workflows that exercise the engine: big fan-outs, failures in batches, grandchildren,
exactly-once recorded steps, crashes, concurrency limits and falsy step results.

Side effects go to files named in the payload, so the test (another process) can count them.
Lines are appended with O_APPEND in one write, which keeps lines from different processes whole.
"""

from __future__ import annotations

import asyncio
import os
import time
from typing import Any

from pydantic import BaseModel

from polos import Queue, WorkflowContext, workflow
from polos.types.types import BatchWorkflowInput


def append_line(path: str, line: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, (line + "\n").encode())
    finally:
        os.close(fd)


# --------------------------------------------------------------------------- big fan-out


class ChildIn(BaseModel):
    index: int
    log: str


class ChildOut(BaseModel):
    some_field: int
    label: str


class FanOutIn(BaseModel):
    n: int
    log: str


class FanOutSummary(BaseModel):
    count: int
    some_fields: list[int]
    labels: list[str]
    result_types: list[str]
    execution_ids: list[str]
    all_success: bool


@workflow(id="fan_child")
async def fan_child(ctx: WorkflowContext, payload: ChildIn) -> ChildOut:
    append_line(payload.log, f"{payload.index} {ctx.execution_id}")
    return ChildOut(some_field=payload.index * 3, label=f"child-{payload.index}")


@workflow(id="fan_parent")
async def fan_parent(ctx: WorkflowContext, payload: FanOutIn) -> FanOutSummary:
    results = await ctx.step.batch_invoke_and_wait(
        "children",
        [
            BatchWorkflowInput(id="fan_child", payload=ChildIn(index=i, log=payload.log))
            for i in range(payload.n)
        ],
    )
    return FanOutSummary(
        count=len(results),
        some_fields=[r.result.some_field for r in results],
        labels=[r.result.label for r in results],
        result_types=sorted({type(r.result).__name__ for r in results}),
        execution_ids=[r.execution_id for r in results],
        all_success=all(r.success for r in results),
    )


# --------------------------------------------------------------------------- failure in a batch


@workflow(id="maybe_fail")
async def maybe_fail(ctx: WorkflowContext, payload: dict[str, Any]) -> dict[str, Any]:
    if payload["fail"]:
        # Raised by the workflow itself: retried by the engine, then final.
        raise ValueError(f"item {payload['i']} is broken beyond repair")
    return {"i": payload["i"], "ok": True}


@workflow(id="mixed_batch")
async def mixed_batch(ctx: WorkflowContext, payload: dict[str, Any]) -> dict[str, Any]:
    results = await ctx.step.batch_invoke_and_wait(
        "items",
        [
            BatchWorkflowInput(id="maybe_fail", payload={"i": i, "fail": i == payload["bad"]})
            for i in range(payload["n"])
        ],
    )
    return {
        "results": [
            {
                "success": r.success,
                "result": r.result,
                "error": r.error,
                "execution_id": r.execution_id,
            }
            for r in results
        ]
    }


# --------------------------------------------------------------------------- grandchildren


def _ids(ctx: WorkflowContext) -> dict[str, Any]:
    return {
        "execution_id": ctx.execution_id,
        "parent_execution_id": ctx.parent_execution_id,
        "root_execution_id": ctx.root_execution_id,
        "workflow_id": ctx.workflow_id,
    }


@workflow(id="tree_leaf")
async def tree_leaf(ctx: WorkflowContext, payload: dict[str, Any]) -> dict[str, Any]:
    return {**_ids(ctx), "path": payload["path"]}


@workflow(id="tree_mid")
async def tree_mid(ctx: WorkflowContext, payload: dict[str, Any]) -> dict[str, Any]:
    leaves = await ctx.step.batch_invoke_and_wait(
        "leaves",
        [
            BatchWorkflowInput(id="tree_leaf", payload={"path": f"{payload['path']}.{j}"})
            for j in range(payload["leaves"])
        ],
    )
    return {**_ids(ctx), "path": payload["path"], "leaves": [leaf.result for leaf in leaves]}


@workflow(id="tree_root")
async def tree_root(ctx: WorkflowContext, payload: dict[str, Any]) -> dict[str, Any]:
    mids = await ctx.step.batch_invoke_and_wait(
        "mids",
        [
            BatchWorkflowInput(id="tree_mid", payload={"path": str(i), "leaves": payload["leaves"]})
            for i in range(payload["mids"])
        ],
    )
    return {**_ids(ctx), "mids": [m.result for m in mids], "ok": all(m.success for m in mids)}


# --------------------------------------------------------------------------- exactly-once step


@workflow(id="side_effect_parent")
async def side_effect_parent(ctx: WorkflowContext, payload: dict[str, Any]) -> dict[str, Any]:
    path = payload["path"]
    # Outside any step: runs on every replay, which proves the replay happened.
    append_line(path, "body")

    def write_before() -> str:
        append_line(path, "before")
        return "written"

    before = await ctx.step.run("write_before", write_before)
    results = await ctx.step.batch_invoke_and_wait(
        "kids",
        [BatchWorkflowInput(id="tree_leaf", payload={"path": str(i)}) for i in range(3)],
    )

    async def write_after() -> int:
        append_line(path, "after")
        return len(results)

    after = await ctx.step.run("write_after", write_after)
    return {"before": before, "after": after}


# --------------------------------------------------------------------------- crash


@workflow(id="slow_child")
async def slow_child(ctx: WorkflowContext, payload: dict[str, Any]) -> dict[str, Any]:
    await asyncio.sleep(payload["seconds"])
    # A gated child's body cannot finish before its gate file exists: a test that kills the
    # worker running it knows that body was interrupted, however slow the machine.
    gate = payload.get("gate")
    if gate and payload["i"] >= payload["gate_from"]:
        while not os.path.exists(gate):  # noqa: ASYNC110 - the test, another process, creates it
            await asyncio.sleep(0.02)
    append_line(payload["log"], f"{payload['i']} {os.getpid()}")
    return {"i": payload["i"], "pid": os.getpid()}


@workflow(id="crash_parent")
async def crash_parent(ctx: WorkflowContext, payload: dict[str, Any]) -> dict[str, Any]:
    results = await ctx.step.batch_invoke_and_wait(
        "slow",
        [
            BatchWorkflowInput(
                id="slow_child",
                payload={
                    "i": i,
                    "seconds": payload["seconds"],
                    "log": payload["log"],
                    "gate": payload.get("gate"),
                    "gate_from": payload.get("gate_from", 0),
                },
            )
            for i in range(payload["n"])
        ],
    )
    return {
        "indexes": [r.result["i"] if r.success else None for r in results],
        "errors": [r.error for r in results if not r.success],
    }


# --------------------------------------------------------------------------- concurrency limit


limited_queue = Queue("limited_q", concurrency_limit=2)


@workflow(id="limited", queue=limited_queue)
async def limited(ctx: WorkflowContext, payload: dict[str, Any]) -> dict[str, Any]:
    # CLOCK_MONOTONIC is system-wide on Linux: comparable across the worker processes.
    start = time.monotonic()
    append_line(payload["log"], f"start {start:.6f} {payload['i']} {os.getpid()}")
    await asyncio.sleep(payload["seconds"])
    end = time.monotonic()
    append_line(payload["log"], f"end {end:.6f} {payload['i']} {os.getpid()}")
    return {"i": payload["i"]}


# --------------------------------------------------------------------------- falsy results


FALSY: dict[str, Any] = {
    "zero": 0,
    "empty_dict": {},
    "empty_list": [],
    "empty_str": "",
    "false": False,
}


@workflow(id="falsy_steps")
async def falsy_steps(ctx: WorkflowContext, payload: dict[str, Any]) -> dict[str, Any]:
    path = payload["path"]
    values: dict[str, Any] = {}
    for name, value in FALSY.items():

        def produce(name: str = name, value: Any = value) -> Any:
            append_line(path, name)
            return value

        values[name] = await ctx.step.run(f"falsy_{name}", produce)
    # A suspension: the rest runs in a later attempt that replays the steps above.
    child = await ctx.step.invoke_and_wait("child", tree_leaf, {"path": "falsy"})
    return {
        "values": values,
        "types": {k: type(v).__name__ for k, v in values.items()},
        "child_path": child["path"],
    }


# --------------------------------------------------------------------------- worker capacity


@workflow(id="occupant")
async def occupant(ctx: WorkflowContext, payload: dict[str, Any]) -> dict[str, Any]:
    """Logs when it starts and ends, like `limited`, but on no limited queue: only the
    worker's capacity bounds how many run at once."""
    append_line(payload["log"], f"start {time.monotonic():.6f} {payload['i']} {os.getpid()}")
    await asyncio.sleep(payload["seconds"])
    append_line(payload["log"], f"end {time.monotonic():.6f} {payload['i']} {os.getpid()}")
    return {"i": payload["i"]}
