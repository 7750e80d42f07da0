"""Every snippet of the seed README (parallel-review-README.md), each inside a workflow.

The snippet bodies are copied verbatim; only what they leave to the reader (`process`,
`child_workflow`, the child workflows they name) is defined around them.
"""

from __future__ import annotations

from typing import Any

from polos import Polos, WorkflowContext, workflow  # noqa: F401  (the seed's import line)
from polos.types.types import BatchStepResult, BatchWorkflowInput

# --------------------------------------------------------------------------- children


@workflow(id="review")
async def review(ctx: WorkflowContext, payload: dict[str, Any]) -> dict[str, Any]:
    return {"reviewer": payload["reviewer"], "approved": True}


@workflow(id="task")
async def task(ctx: WorkflowContext, payload: dict[str, Any]) -> dict[str, Any]:
    return {"task_id": payload["id"], "done": True}


@workflow(id="child_workflow")
async def child_workflow(ctx: WorkflowContext, payload: dict[str, Any]) -> dict[str, Any]:
    return {"echo": payload["data"], "parent": ctx.parent_execution_id}


@workflow(id="process_chunk")
async def process_chunk(ctx, payload):
    return {"items": [x * 2 for x in payload["chunk"]]}


# --------------------------------------------------------------------------- snippets


@workflow(id="batch_invoke_and_wait_snippet")
async def batch_invoke_and_wait_snippet(ctx: WorkflowContext, payload: dict) -> dict:
    processed: list[Any] = []

    def process(value: Any) -> None:
        processed.append(value)

    # --- snippet "Batch Invoke and Wait" ---
    from polos.types.types import BatchWorkflowInput

    # Create batch of workflow requests
    requests = [
        BatchWorkflowInput(id="review", payload={"reviewer": "alice"}),
        BatchWorkflowInput(id="review", payload={"reviewer": "bob"}),
        BatchWorkflowInput(id="review", payload={"reviewer": "charlie"}),
    ]

    # Run all in parallel and wait for results
    results = await ctx.step.batch_invoke_and_wait("parallel_reviews", requests)

    # Aggregate results
    for result in results:
        if result.success:
            process(result.result)
    # --- end of snippet ---

    return {
        "processed": processed,
        "result_types": [type(r).__name__ for r in results],
        "execution_ids": [r.execution_id for r in results],
    }


@workflow(id="fire_and_forget_snippet")
async def fire_and_forget_snippet(ctx: WorkflowContext, payload: dict) -> dict:
    # --- snippet "Fire and Forget" ---
    requests = [
        BatchWorkflowInput(id="task", payload={"id": 1}),
        BatchWorkflowInput(id="task", payload={"id": 2}),
    ]

    # Launch all workflows (non-blocking)
    handles = await ctx.step.batch_invoke("launch_tasks", requests)

    # Return immediately with execution IDs for tracking
    return {"launched": [h.execution_id for h in handles]}
    # --- end of snippet ---


@workflow(id="invoke_and_wait_snippet")
async def invoke_and_wait_snippet(ctx: WorkflowContext, payload: dict) -> dict:
    # --- snippet "Single Workflow Invoke", first half ---
    # Invoke and wait for result
    result = await ctx.step.invoke_and_wait(
        "invoke_child",
        child_workflow,
        {"data": "value"},
    )
    # --- end of snippet ---
    return {"result": result}


@workflow(id="invoke_snippet")
async def invoke_snippet(ctx: WorkflowContext, payload: dict) -> dict:
    # --- snippet "Single Workflow Invoke", second half ---
    # Or invoke without waiting
    handle = await ctx.step.invoke(
        "invoke_child",
        child_workflow,
        {"data": "value"},
    )
    # --- end of snippet ---
    return {
        "execution_id": handle.execution_id,
        "id": handle.id,
        "workflow_id": handle.workflow_id,
        "parent_execution_id": handle.parent_execution_id,
    }


@workflow(id="flaky_review")
async def flaky_review(ctx: WorkflowContext, payload: dict[str, Any]) -> dict[str, Any]:
    if payload.get("fail"):
        # Fails through a step with no retries, so the failure is final at once.
        def refuse() -> None:
            raise ValueError(f"reviewer {payload['reviewer']} refused")

        await ctx.step.run("refuse", refuse, max_retries=0)
    return {"reviewer": payload["reviewer"], "approved": True}


@workflow(id="batch_step_result_fields")
async def batch_step_result_fields(ctx: WorkflowContext, payload: dict) -> dict:
    """The BatchStepResult section: what each field holds for a success and a failure."""
    results = await ctx.step.batch_invoke_and_wait(
        "reviews",
        [
            BatchWorkflowInput(id="flaky_review", payload={"reviewer": "alice"}),
            BatchWorkflowInput(id="flaky_review", payload={"reviewer": "bob", "fail": True}),
        ],
    )
    out = []
    for r in results:
        assert isinstance(r, BatchStepResult)
        out.append(
            {
                "workflow_id": r.workflow_id,
                "execution_id": r.execution_id,
                "success": r.success,
                "result": r.result,
                "error": r.error,
            }
        )
    return {"results": out}


# --- snippet "Fan-Out/Fan-In Pattern" (verbatim) ---
# fmt: off
@workflow(id="data_processor")
async def data_processor(ctx, payload):
    data = payload["data"]

    # Fan-out: Split into chunks
    chunks = [data[i:i+10] for i in range(0, len(data), 10)]

    requests = [
        BatchWorkflowInput(id="process_chunk", payload={"chunk": c})
        for c in chunks
    ]

    # Execute in parallel
    results = await ctx.step.batch_invoke_and_wait("parallel", requests)

    # Fan-in: Aggregate results
    all_processed = []
    for r in results:
        if r.success:
            all_processed.extend(r.result["items"])

    return {"processed": all_processed}
# fmt: on
# --- end of snippet ---
