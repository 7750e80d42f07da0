"""Workflows of the retry and hook tests (tests/e2e/test_retries_hooks.py)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from polos import HookContext, HookResult, WorkflowContext, hook, workflow
from tests.e2e.apps.model_waits import log_run


@workflow(id="rt_flaky")
async def rt_flaky(ctx: WorkflowContext, payload: dict[str, Any]) -> dict[str, Any]:
    """Fails with an unexpected exception while retry_count < fail_times; a step before the
    failure runs once whatever the retries."""
    log_run(payload["log"], retry_count=ctx.retry_count)
    await ctx.step.run("once", log_run, payload["log"], step="once")
    if ctx.retry_count < payload["fail_times"]:
        raise RuntimeError(f"unexpected failure on retry {ctx.retry_count}")
    return {"retry_count": ctx.retry_count}


def _refuse() -> None:
    raise ValueError("this step always fails")


@workflow(id="rt_step_fails")
async def rt_step_fails(ctx: WorkflowContext, payload: dict[str, Any]) -> dict[str, Any]:
    """A failed step's StepExecutionError escapes: final at once, no workflow retry."""
    log_run(payload["log"], retry_count=ctx.retry_count)
    await ctx.step.run("refuse", _refuse, max_retries=0)
    return {"unreachable": True}


# --------------------------------------------------------------------------- hooks


class Order(BaseModel):
    item: str
    quantity: int


class Receipt(BaseModel):
    item: str
    total: int


@hook
def record_start(ctx: WorkflowContext, hook_context: HookContext) -> HookResult:
    log_run(
        hook_context.current_payload.get("log"),
        hook="on_start",
        workflow_id=hook_context.workflow_id,
        payload=hook_context.current_payload,
    )
    return HookResult.continue_with()


@hook
def double_quantity(ctx: WorkflowContext, hook_context: HookContext) -> HookResult:
    payload = dict(hook_context.current_payload)
    payload["quantity"] *= 2
    return HookResult.continue_with(modified_payload=payload)


@hook
def record_end(ctx: WorkflowContext, hook_context: HookContext) -> HookResult:
    log_run(
        (hook_context.current_payload or {}).get("log"),
        hook="on_end",
        output=hook_context.current_output,
    )
    return HookResult.continue_with()


@hook
def add_bonus(ctx: WorkflowContext, hook_context: HookContext) -> HookResult:
    output = dict(hook_context.current_output)
    output["total"] += 1000
    return HookResult.continue_with(modified_output=output)


@hook
def refuse(ctx: WorkflowContext, hook_context: HookContext) -> HookResult:
    return HookResult.fail("refused by the on_start hook")


class LoggedOrder(Order):
    log: str


@workflow(id="hk_plain", on_start=record_start, on_end=record_end)
async def hk_plain(ctx: WorkflowContext, payload: LoggedOrder) -> Receipt:
    """Hooks that change nothing: the model payload and the model result pass through. A long
    wait makes the execution replay: the hooks are steps and do not run again."""
    log_run(payload.log, body=type(payload).__name__, quantity=payload.quantity)
    await ctx.step.wait_for("nap", minutes=5)
    return Receipt(item=payload.item, total=payload.quantity * 10)


@workflow(id="hk_modify", on_start=[record_start, double_quantity], on_end=[add_bonus, record_end])
async def hk_modify(ctx: WorkflowContext, payload: LoggedOrder) -> Receipt:
    """Hooks that change the payload (on_start) and the result (on_end)."""
    log_run(payload.log, body=type(payload).__name__, quantity=payload.quantity)
    return Receipt(item=payload.item, total=payload.quantity * 10)


@workflow(id="hk_none", on_end=record_end)
async def hk_none(ctx: WorkflowContext, payload: dict[str, Any]) -> None:
    """Returns None through an on_end hook: the result stays None (upstream made it {})."""
    return None


@workflow(id="hk_refused", on_start=[record_start, refuse])
async def hk_refused(ctx: WorkflowContext, payload: dict[str, Any]) -> dict[str, Any]:
    log_run(payload["log"], body="ran")
    return {"ran": True}
