"""Workflows of the replay-divergence tests (tests/e2e/test_divergence.py).

Their code depends on POLOS_TEST_CODE_VERSION ("1" by default, or "2"), the way a deployment
changes a workflow's code under executions that are waiting: the test starts executions on a
version-1 worker, stops it while they wait for an event, and lets a version-2 worker replay
them.

- `div_plain`: version 2 inserts a step before the wait (a divergence).
- `div_patched`: the same change behind `ctx.step.patched("add-check")`.
- `div_refactor`: version 2 restructures the code but asks for the same steps in the same
  order (a clean replay).
"""

from __future__ import annotations

import os
from typing import Any

from polos import WorkflowContext, workflow


def _version() -> int:
    return int(os.environ.get("POLOS_TEST_CODE_VERSION", "1"))


def _double(x: int) -> int:
    return 2 * x


@workflow(id="div_plain")
async def div_plain(ctx: WorkflowContext, payload: dict[str, Any]) -> dict[str, Any]:
    prepared = await ctx.step.run("prepare", _double, payload["x"])
    if _version() >= 2:
        await ctx.step.run("new_check", _double, prepared)
    event = await ctx.step.wait_for_event("approval", payload["topic"], timeout=600)
    return {"prepared": prepared, "approved": event.data}


@workflow(id="div_patched")
async def div_patched(ctx: WorkflowContext, payload: dict[str, Any]) -> dict[str, Any]:
    prepared = await ctx.step.run("prepare", _double, payload["x"])
    checked = None
    new_path = None
    if _version() >= 2:
        new_path = await ctx.step.patched("add-check")
        if new_path:
            checked = await ctx.step.run("new_check", _double, prepared)
    event = await ctx.step.wait_for_event("approval", payload["topic"], timeout=600)
    # Asked again after the wait: the recorded answer, whatever the journal holds by now.
    again = await ctx.step.patched("add-check") if _version() >= 2 else None
    return {
        "prepared": prepared,
        "checked": checked,
        "new_path": new_path,
        "again": again,
        "approved": event.data,
    }


@workflow(id="div_refactor")
async def div_refactor(ctx: WorkflowContext, payload: dict[str, Any]) -> dict[str, Any]:
    if _version() < 2:
        prepared = await ctx.step.run("prepare", _double, payload["x"])
        event = await ctx.step.wait_for_event("approval", payload["topic"], timeout=600)
        return {"prepared": prepared, "approved": event.data}

    async def approve(value: int) -> dict[str, Any]:
        approval = await ctx.step.wait_for_event("approval", payload["topic"], timeout=600)
        return {"prepared": value, "approved": approval.data}

    return await approve(await ctx.step.run("prepare", lambda: _double(payload["x"])))
