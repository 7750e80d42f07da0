"""Workflows for the step primitives: retries with backoff, recorded values across a replay,
workflow-level retries, and a child named by an ID this module never imports."""

from __future__ import annotations

import time
from typing import Any

from polos import StepExecutionError, WorkflowContext, workflow
from tests.e2e.apps.engine import append_line


def _lines(path: str) -> int:
    try:
        with open(path) as f:
            return sum(1 for _ in f)
    except FileNotFoundError:
        return 0


@workflow(id="noop_child")
async def noop_child(ctx: WorkflowContext, payload: dict[str, Any]) -> dict[str, Any]:
    return {"ok": True}


def _flaky(log: str, failures: int) -> str:
    append_line(log, "attempt")
    if _lines(log) <= failures:
        raise ValueError(f"failure {_lines(log)}")
    return "finally"


@workflow(id="flaky_step")
async def flaky_step(ctx: WorkflowContext, payload: dict[str, Any]) -> dict[str, Any]:
    value = await ctx.step.run(
        "flaky", _flaky, payload["log"], payload["failures"], base_delay=0.05, max_delay=0.1
    )
    # A suspension: the function replays from the top afterwards.
    await ctx.step.invoke_and_wait("pause", "noop_child", {})
    return {"value": value}


def _boom() -> None:
    raise ValueError("boom")


@workflow(id="step_gives_up")
async def step_gives_up(ctx: WorkflowContext, payload: dict[str, Any]) -> dict[str, Any]:
    started = time.monotonic()
    try:
        await ctx.step.run("always_fails", _boom, max_retries=1, base_delay=1.0)
        message = "did not fail"
    except StepExecutionError as exc:
        message = exc.reason
        key = exc.step_key
    elapsed = time.monotonic() - started
    first = await ctx.step.run("remember", lambda: {"message": message, "elapsed": elapsed})
    await ctx.step.invoke_and_wait("pause", "noop_child", {})
    return {"first": first, "replayed": message, "key": key}


@workflow(id="recorded_values")
async def recorded_values(ctx: WorkflowContext, payload: dict[str, Any]) -> dict[str, Any]:
    values = {
        "uuid": await ctx.step.uuid("id"),
        "now": await ctx.step.now("now"),
        "random": await ctx.step.random("rnd"),
    }
    first = await ctx.step.run("first_run", lambda: values)
    await ctx.step.invoke_and_wait("pause", "noop_child", {})
    return {"first": first, "replayed": values}


@workflow(id="retry_whole")
async def retry_whole(ctx: WorkflowContext, payload: dict[str, Any]) -> dict[str, Any]:
    step = await ctx.step.run("before", append_line, payload["steps"], "step")
    append_line(payload["attempts"], "attempt")
    if _lines(payload["attempts"]) < 2:
        raise RuntimeError("transient trouble")
    return {"step": step}


@workflow(id="calls_by_id")
async def calls_by_id(ctx: WorkflowContext, payload: dict[str, Any]) -> dict[str, Any]:
    # "by_id_child" lives in a module this one never imports, served by another worker.
    result = await ctx.step.invoke_and_wait("child", "by_id_child", {"n": payload["n"]})
    handle = await ctx.step.invoke("fire", "by_id_child", {"n": 0})
    return {"result": result, "type": type(result).__name__, "fired": handle.execution_id}


@workflow(id="slow_echo")
async def slow_echo(ctx: WorkflowContext, payload: dict[str, Any]) -> dict[str, Any]:
    """Sleeps `seconds` in a step, then echoes `value` (or fails when `fail` is set)."""
    await ctx.step.run("sleep", time.sleep, payload.get("seconds", 0))
    if payload.get("fail"):
        raise ValueError(f"asked to fail: {payload['value']}")
    return {"echo": payload["value"]}
