"""Workflows of the batch failure-policy tests (tests/e2e/test_batch_policies.py).

A child's behaviour is chosen by its payload:
- "ok": returns at once;
- "fail": fails for good at once (a step error escaping the workflow is final);
- "slow": a step body sleeps `seconds` (a minute), logging `start`, then `end` — or `stopped`
  when its worker stops it (cancelled);
- "ok_after_go" / "fail_after_go": waits for an event on the topic `go` first (the test
  publishes it once it has seen what it needs), then as "ok" / "fail".

Side effects go to the file named in the payload, one line each, so the test can check that
no cancelled body ran on.
"""

from __future__ import annotations

import asyncio
from typing import Any

from polos import WorkflowContext, workflow
from polos.sdk.errors import StepExecutionError
from polos.types.types import BatchWorkflowInput
from tests.e2e.apps.engine import append_line


@workflow(id="bp_child")
async def bp_child(ctx: WorkflowContext, payload: dict[str, Any]) -> dict[str, Any]:
    i, mode, log = payload["i"], payload["mode"], payload["log"]
    if mode.endswith("_after_go"):
        await ctx.step.wait_for_event("go", payload["go"], timeout=600)
        mode = mode.removesuffix("_after_go")
    if mode == "fail":

        def boom() -> None:
            raise RuntimeError(f"child {i} failed")

        await ctx.step.run("boom", boom, max_retries=0)
    if mode == "slow":

        async def nap() -> None:
            append_line(log, f"start {i}")
            try:
                await asyncio.sleep(payload["seconds"])
            except asyncio.CancelledError:
                append_line(log, f"stopped {i}")
                raise
            append_line(log, f"end {i}")

        await ctx.step.run("nap", nap)
    return {"i": i}


def _summary(results: list[Any]) -> list[dict[str, Any]]:
    return [
        {"success": r.success, "result": r.result, "error_type": r.error_type, "error": r.error}
        for r in results
    ]


@workflow(id="bp_parent")
async def bp_parent(ctx: WorkflowContext, payload: dict[str, Any]) -> dict[str, Any]:
    """Runs the batch with the payload's policy; records what it saw; waits for the topic
    `after` (when given) so that the test can make it replay; returns both views."""
    children = [
        BatchWorkflowInput(
            id="bp_child",
            payload={
                "i": i,
                "mode": mode,
                "log": payload["log"],
                "seconds": payload.get("seconds", 60),
                "go": payload.get("go", ""),
            },
        )
        for i, mode in enumerate(payload["modes"])
    ]
    results = await ctx.step.batch_invoke_and_wait(
        "children",
        children,
        fail_fast=payload.get("fail_fast", False),
        min_success=payload.get("min_success"),
    )
    first = _summary(results)
    seen = await ctx.step.run("seen", lambda: first)
    if payload.get("after"):
        await ctx.step.wait_for_event("after", payload["after"], timeout=600)
    return {"seen": seen, "replayed": _summary(results)}


@workflow(id="bp_bad_policy")
async def bp_bad_policy(ctx: WorkflowContext, payload: dict[str, Any]) -> str:
    """min_success out of range: a ValueError before anything starts."""
    try:
        await ctx.step.batch_invoke_and_wait(
            "children",
            [BatchWorkflowInput(id="bp_child", payload={})],
            min_success=payload["min_success"],
        )
    except ValueError as exc:
        return str(exc)
    raise StepExecutionError("no ValueError", step_key="children")
