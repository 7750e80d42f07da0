"""Queues: how many executions may run at once, across every worker.

Each workflow runs in a queue: by default one named after the workflow, without a limit. A
queue with a `concurrency_limit` lets at most that many of its executions run at the same
time, counted by the server across all workers (an execution waiting for children or a timer
does not count). Several workflows may share one queue, so the limit holds for all of them.

- `queue("api-calls", concurrency_limit=5)` shared by `api_call` and `api_batch_processor`;
- `queue("database-ops", concurrency_limit=10)` shared by `db_read` and `db_write`;
- `queue("heavy-processing", concurrency_limit=2)` for `heavy_processing`;
- `inline_queue_workflow`: the inline form `queue={"concurrency_limit": 3}` (the queue is
  named after the workflow);
- `named_queue_workflow`: a queue given by name only, `queue="my-named-queue"` (no limit);
- `queue_orchestrator`: starts workflows of three queues with `ctx.step.invoke`;
- `slow_workflow`: sleeps; the demo starts it on queues chosen at invocation time;
- `tenant_report`: a queue with limit 1 used with concurrency keys: one report at a time
  *per tenant*, tenants side by side.
"""

import asyncio

from pydantic import BaseModel

from polos import WorkflowContext, queue, workflow

# Shared queues: pass the same object to several workflows.
api_queue = queue("api-calls", concurrency_limit=5)
db_queue = queue("database-ops", concurrency_limit=10)
heavy_queue = queue("heavy-processing", concurrency_limit=2)
tenant_queue = queue("tenant-reports", concurrency_limit=1)


class ApiPayload(BaseModel):
    url: str
    method: str = "GET"
    data: dict | None = None


def make_api_request(url: str, method: str, data: dict | None) -> dict:
    """Simulates an HTTP request."""
    return {"status": 200, "response": {"message": "Success", "url": url}}


@workflow(id="api_call", queue=api_queue)
async def api_call_workflow(ctx: WorkflowContext, payload: ApiPayload) -> dict:
    result = await ctx.step.run(
        "make_request", make_api_request, payload.url, payload.method, payload.data
    )
    return {"url": payload.url, "method": payload.method, "result": result}


def execute_db_query(table: str, query: dict) -> list:
    return [{"id": 1, "name": "Example"}]


def insert_db_data(table: str, data: dict) -> dict:
    return {"id": 1, **data}


@workflow(id="db_read", queue=db_queue)
async def db_read_workflow(ctx: WorkflowContext, payload: dict) -> dict:
    table = payload.get("table", "users")
    result = await ctx.step.run("execute_query", execute_db_query, table, payload.get("query", {}))
    return {"table": table, "results": result}


@workflow(id="db_write", queue=db_queue)
async def db_write_workflow(ctx: WorkflowContext, payload: dict) -> dict:
    """Shares database-ops with db_read: at most 10 of both together."""
    table = payload.get("table", "users")
    result = await ctx.step.run("insert_data", insert_db_data, table, payload.get("data", {}))
    return {"table": table, "inserted": result}


def heavy_process(data: list) -> dict:
    return {"items_processed": len(data), "status": "complete"}


@workflow(id="heavy_processing", queue=heavy_queue)
async def heavy_processing_workflow(ctx: WorkflowContext, payload: dict) -> dict:
    result = await ctx.step.run("process_data", heavy_process, payload.get("data", []))
    return {"processed": result}


@workflow(id="inline_queue_workflow", queue={"concurrency_limit": 3})
async def inline_queue_workflow(ctx: WorkflowContext, payload: dict) -> dict:
    """Queue `inline_queue_workflow` (the workflow's ID), limit 3."""
    return {"message": "Processed with inline queue"}


@workflow(id="named_queue_workflow", queue="my-named-queue")
async def named_queue_workflow(ctx: WorkflowContext, payload: dict) -> dict:
    """Queue `my-named-queue`, no limit."""
    return {"message": "Processed with named queue"}


@workflow(id="api_batch_processor", queue=api_queue)
async def batch_processor(ctx: WorkflowContext, payload: dict) -> dict:
    """Shares api-calls with api_call: the limit of 5 covers both."""
    results = []
    for i, item in enumerate(payload.get("items", [])):
        result = await ctx.step.run(
            f"process_item_{i}", make_api_request, item.get("url", ""), "GET", None
        )
        results.append(result)
    return {"processed": len(results), "results": results}


@workflow(id="queue_orchestrator")
async def queue_orchestrator(ctx: WorkflowContext, payload: dict) -> dict:
    """Starts three workflows (fire-and-forget), each throttled by its own queue."""
    api_handle = await ctx.step.invoke(
        "invoke_api", api_call_workflow, ApiPayload(url="https://api.example.com/data")
    )
    db_handle = await ctx.step.invoke(
        "invoke_db", db_read_workflow, {"table": "users", "query": {"active": True}}
    )
    heavy_handle = await ctx.step.invoke(
        "invoke_heavy", heavy_processing_workflow, {"data": [1, 2, 3, 4, 5]}
    )
    return {
        "api_execution_id": api_handle.id,
        "db_execution_id": db_handle.id,
        "heavy_execution_id": heavy_handle.id,
    }


class SlowWorkflowPayload(BaseModel):
    workflow_id: int
    sleep_seconds: float = 2.0


class SlowWorkflowResult(BaseModel):
    workflow_id: int
    message: str


@workflow(id="slow_workflow")
async def slow_workflow(ctx: WorkflowContext, payload: SlowWorkflowPayload) -> SlowWorkflowResult:
    """Works for `sleep_seconds`; the demo starts it on queues with different limits."""
    await ctx.step.run("simulate_work", asyncio.sleep, payload.sleep_seconds)
    return SlowWorkflowResult(
        workflow_id=payload.workflow_id,
        message=f"Workflow {payload.workflow_id} finished after {payload.sleep_seconds}s",
    )


class TenantReportPayload(BaseModel):
    tenant: str
    report: str
    seconds: float = 1.5


@workflow(id="tenant_report", queue=tenant_queue)
async def tenant_report(ctx: WorkflowContext, payload: TenantReportPayload) -> dict:
    """Started with `concurrency_key=tenant`: each key gets its own budget of the queue's
    limit (1), so one tenant's reports run one at a time while other tenants go on."""
    await ctx.step.run("build_report", asyncio.sleep, payload.seconds)
    return {"tenant": payload.tenant, "report": payload.report}
