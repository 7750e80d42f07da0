"""Error handling: retries, and what a workflow can do when a step fails for good.

A step that raises is retried (`max_retries`, 2 by default) with exponential backoff and
jitter. When its last attempt fails, the failure is recorded and `StepExecutionError` is
raised: on this run and, identically, on every replay. A workflow may catch it and carry on
(recovery, fallback, circuit breaker, compensation); if it escapes, the execution fails at
once, without workflow-level retries.

Payloads and results here are plain dicts (the payload annotation `dict` passes the JSON as
is), except `retry_example`, which takes a model.
"""

from collections.abc import Callable

from pydantic import BaseModel

from polos import StepExecutionError, WorkflowContext, workflow

# ============================================================================ retries


class RetryPayload(BaseModel):
    """How the simulated service behaves: it fails its first `failures` calls, then works.

    (Upstream's version fails at random with a `failure_rate`; a fixed count makes the
    demo's output the same on every run.)
    """

    failures: int = 1
    operation: str = "process"


class FlakyService:
    """Fails the first `failures` calls, then succeeds."""

    def __init__(self, failures: int, operation: str) -> None:
        self.failures = failures
        self.operation = operation
        self.calls = 0

    def __call__(self) -> dict:
        self.calls += 1
        if self.calls <= self.failures:
            raise ConnectionError(f"{self.operation}: service unavailable (call {self.calls})")
        return {"operation": self.operation, "success": True, "attempts": self.calls}


@workflow(id="retry_example")
async def retry_example(ctx: WorkflowContext, payload: RetryPayload) -> dict:
    """Up to 4 attempts (1 + 3 retries), about 1 s, 2 s, 4 s apart (times a jitter factor in
    [0.5, 1)). If every attempt fails, StepExecutionError escapes and the execution fails."""
    service = FlakyService(payload.failures, payload.operation)
    result = await ctx.step.run(
        "unreliable_operation",
        service,
        max_retries=3,
        base_delay=1.0,
        max_delay=10.0,
    )
    return {"status": "success", "result": result}


# ============================================================================ recovery


def process_item(item: str) -> dict:
    if "fail" in item.lower():
        raise ValueError(f"Cannot process item: {item}")
    return {"item": item, "status": "processed"}


@workflow(id="error_recovery")
async def error_recovery(ctx: WorkflowContext, payload: dict) -> dict:
    """Process every item; a failed item is noted and the others go on."""
    results = []
    errors = []
    for i, item in enumerate(payload.get("items", ["item1", "item2", "item3"])):
        try:
            result = await ctx.step.run(
                f"process_{i}_{item}", process_item, item, max_retries=1, base_delay=0.5
            )
            results.append(result)
        except StepExecutionError as e:
            errors.append({"item": item, "error": str(e)})
    return {
        "processed": len(results),
        "failed": len(errors),
        "results": results,
        "errors": errors,
    }


# ============================================================================ fallback


def primary_process(data: dict) -> dict:
    if data.get("force_failure"):
        raise RuntimeError("Primary method failed")
    return {"processed": data, "method": "primary"}


def fallback_process(data: dict) -> dict:
    return {"processed": data, "method": "fallback", "degraded": True}


@workflow(id="fallback_pattern")
async def fallback_pattern(ctx: WorkflowContext, payload: dict) -> dict:
    """Try the primary method; if it fails for good, use the fallback."""
    data = payload.get("data", {})
    try:
        result = await ctx.step.run("primary_method", primary_process, data, max_retries=2)
        return {"method": "primary", "result": result}
    except StepExecutionError:
        pass  # fall through to the fallback

    try:
        result = await ctx.step.run("fallback_method", fallback_process, data, max_retries=2)
        return {"method": "fallback", "result": result}
    except StepExecutionError as e:
        return {"method": "none", "error": str(e)}


# ============================================================================ circuit breaker


def process_with_circuit_breaker(item: dict) -> dict:
    if item.get("should_fail"):
        raise RuntimeError(f"Failed to process: {item}")
    return {"item": item, "status": "success"}


@workflow(id="circuit_breaker")
async def circuit_breaker(ctx: WorkflowContext, payload: dict) -> dict:
    """After `failure_threshold` consecutive failures, skip the remaining items."""
    items = payload.get("items", [])
    failure_threshold = payload.get("failure_threshold", 3)

    results: list[dict] = []
    failures = 0
    circuit_open = False
    for i, item in enumerate(items):
        if circuit_open:
            results.append({"item": item, "status": "skipped", "reason": "circuit_open"})
            continue
        try:
            result = await ctx.step.run(
                f"process_{i}", process_with_circuit_breaker, item, max_retries=1
            )
            results.append(result)
            failures = 0  # reset on success
        except StepExecutionError:
            failures += 1
            results.append({"item": item, "status": "failed"})
            if failures >= failure_threshold:
                circuit_open = True

    return {"results": results, "circuit_open": circuit_open, "total_failures": failures}


# ============================================================================ compensation


def reserve_inventory(payload: dict) -> dict:
    return {"reserved": True}


def charge_payment(payload: dict) -> dict:
    return {"charged": True}


def send_confirmation(payload: dict) -> dict:
    if payload.get("fail_confirmation"):
        raise RuntimeError("Failed to send confirmation")
    return {"sent": True}


def release_inventory(payload: dict) -> dict:
    return {"released": True}


def refund_payment(payload: dict) -> dict:
    return {"refunded": True}


COMPENSATIONS: dict[str, Callable[[dict], dict]] = {
    "reserve_inventory": release_inventory,
    "charge_payment": refund_payment,
}


@workflow(id="compensation_pattern")
async def compensation_pattern(ctx: WorkflowContext, payload: dict) -> dict:
    """A saga: if a later step fails, undo the earlier ones, newest first."""
    completed_steps: list[str] = []
    try:
        await ctx.step.run("reserve_inventory", reserve_inventory, payload)
        completed_steps.append("reserve_inventory")

        await ctx.step.run("charge_payment", charge_payment, payload)
        completed_steps.append("charge_payment")

        await ctx.step.run("send_confirmation", send_confirmation, payload)
        completed_steps.append("send_confirmation")

        return {"status": "success", "completed": completed_steps}
    except StepExecutionError as e:
        compensated: list[str] = []
        for step in reversed(completed_steps):
            compensate = COMPENSATIONS.get(step)
            if compensate is not None:
                # Compensations are steps too: a replay does not run them twice.
                await ctx.step.run(f"compensate_{step}", compensate, payload)
                compensated.append(step)
        return {"status": "rolled_back", "error": str(e), "compensated": compensated}
