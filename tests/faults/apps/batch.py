"""Workflows of fault test 5 of issue 4: failures inside a batch.

`batch_parent` runs one `batch_invoke_and_wait` over children that each do one thing, by mode:

- `ok`: its step succeeds at once;
- `step_fails`: its step fails every try, so after its retries `ctx.step.run` raises
  StepExecutionError and the child fails (a StepExecutionError is not retried by the engine);
- `step_flaky`: its step fails twice and succeeds on the third try (step-level retries);
- `workflow_flaky`: its step succeeds, then the workflow raises on its first two attempts and
  succeeds on the third (workflow-level retries: the engine retries a failed execution twice);
- `workflow_fails`: the same, raising on every attempt: the child fails after three;
- `echo` (workflow `batch_echo`): another workflow with another result model, so that one
  batch rebuilds results of different types.

Every try of a step body and every attempt of a workflow appends a line to the `tries` file:

    <execution_id> <what> <try number from 1> <ok|fail> <unix time>

and, like tests/faults/apps/fanout.py, every step body that succeeds appends its start and end
lines to the side-effect log the checker reads. A failed try leaves no side effect there: the
checker counts runs of a step (one per recorded outcome, more only after a crash); the tries of
one run are counted from the `tries` file.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from polos import WorkflowContext, workflow
from polos.types.types import BatchWorkflowInput
from tests.e2e.apps.engine import append_line
from tests.faults.apps.fanout import side_effect

STEP_BASE_DELAY = 0.05


class Item(BaseModel):
    log: str
    tries: str
    index: int
    mode: str


class ItemDone(BaseModel):
    index: int
    mode: str
    step_tries: int
    workflow_attempts: int


class Echo(BaseModel):
    index: int
    text: str


def next_try(tries: str, execution_id: str, what: str) -> int:
    """The number of this try of `what` (from 1), counted in the tries file."""
    path = Path(tries)
    if not path.exists():
        return 1
    prefix = f"{execution_id} {what} "
    return 1 + sum(1 for line in path.read_text().splitlines() if line.startswith(prefix))


def note_try(tries: str, execution_id: str, what: str, number: int, ok: bool) -> None:
    outcome = "ok" if ok else "fail"
    append_line(tries, f"{execution_id} {what} {number} {outcome} {time.time():.6f}")


@workflow(id="batch_item")
async def batch_item(ctx: WorkflowContext, payload: Item) -> ItemDone:
    def work() -> int:
        number = next_try(payload.tries, ctx.execution_id, "work")
        fails = payload.mode == "step_fails" or (payload.mode == "step_flaky" and number <= 2)
        note_try(payload.tries, ctx.execution_id, "work", number, not fails)
        if fails:
            raise ValueError(f"item {payload.index}: try {number} failed")
        side_effect(payload.log, ctx.execution_id, "work")
        return number

    step_tries = await ctx.step.run("work", work, base_delay=STEP_BASE_DELAY)
    # Not a step: this runs again on every attempt (the step above replays from the journal).
    attempt = next_try(payload.tries, ctx.execution_id, "workflow")
    fails = payload.mode == "workflow_fails" or (payload.mode == "workflow_flaky" and attempt <= 2)
    note_try(payload.tries, ctx.execution_id, "workflow", attempt, not fails)
    if fails:
        raise RuntimeError(f"item {payload.index}: workflow attempt {attempt} failed")
    return ItemDone(
        index=payload.index, mode=payload.mode, step_tries=step_tries, workflow_attempts=attempt
    )


@workflow(id="batch_echo")
async def batch_echo(ctx: WorkflowContext, payload: Item) -> Echo:
    def echo() -> str:
        side_effect(payload.log, ctx.execution_id, "echo")
        return f"echo-{payload.index}"

    return Echo(index=payload.index, text=await ctx.step.run("echo", echo))


def _describe(result: Any) -> dict[str, Any]:
    value = result.result
    return {
        "workflow_id": result.workflow_id,
        "execution_id": result.execution_id,
        "success": result.success,
        "error": result.error,
        "error_type": result.error_type,
        "result_type": None
        if value is None
        else f"{type(value).__module__}:{type(value).__qualname__}",
        "result": value.model_dump() if isinstance(value, BaseModel) else value,
    }


@workflow(id="batch_parent")
async def batch_parent(ctx: WorkflowContext, payload: dict[str, Any]) -> dict[str, Any]:
    """payload: log, tries, modes (one child per mode, in order)."""
    log, tries = payload["log"], payload["tries"]
    await ctx.step.run("prepare", side_effect, log, ctx.execution_id, "prepare")
    results = await ctx.step.batch_invoke_and_wait(
        "children",
        [
            BatchWorkflowInput(
                id="batch_echo" if mode == "echo" else "batch_item",
                payload=Item(log=log, tries=tries, index=i, mode=mode),
            )
            for i, mode in enumerate(payload["modes"])
        ],
    )
    await ctx.step.run("aggregate", side_effect, log, ctx.execution_id, "aggregate")
    return {"results": [_describe(r) for r in results]}
