"""Shared queues: concurrency limits that hold across workflows and workers.

Run with (a server and `python worker.py` running):
    python main.py
"""

import asyncio
import sys
import time
import traceback
from datetime import datetime
from typing import Any

from dotenv import load_dotenv
from workflows import (
    ApiPayload,
    TenantReportPayload,
    api_call_workflow,
    batch_processor,
    db_read_workflow,
    db_write_workflow,
    heavy_processing_workflow,
    inline_queue_workflow,
    named_queue_workflow,
    queue_orchestrator,
    tenant_report,
)

from polos import ExecutionHandle, PolosClient

load_dotenv()


class CheckFailed(Exception):
    """A demo's outcome is not the expected one."""


def expect(what: str, actual: object, expected: object) -> None:
    """Stop the demos (main.py then exits with status 1) when `actual` is not `expected`."""
    if actual != expected:
        raise CheckFailed(f"{what}: expected {expected!r}, got {actual!r}")


def check(condition: bool, what: str) -> None:
    if not condition:
        raise CheckFailed(what)


def print_header(title: str) -> None:
    print("\n" + "=" * 60)
    print(title)
    print("=" * 60)


def print_section(title: str) -> None:
    print(f"\n--- {title} ---")


async def wait_all(client: PolosClient, handles: list[ExecutionHandle]) -> list[dict[str, Any]]:
    """Wait until every execution is finished; returns them (as `get_execution` does)."""
    executions = await asyncio.gather(*(client.wait_for_execution(h.id) for h in handles))
    for execution in executions:
        if execution["status"] != "completed":
            raise CheckFailed(f"execution {execution['id']} ended {execution['status']}")
    return list(executions)


def span(execution: dict[str, Any]) -> tuple[float, float]:
    """When the execution started and finished (server time, unix seconds)."""
    return (
        datetime.fromisoformat(execution["started_at"]).timestamp(),
        datetime.fromisoformat(execution["completed_at"]).timestamp(),
    )


def most_at_once(executions: list[dict[str, Any]]) -> int:
    """The most of `executions` that were running at the same time."""
    spans = [span(e) for e in executions]
    # +1 at each start, -1 at each end; at equal times the end comes first.
    moments = sorted([(start, 1) for start, _ in spans] + [(end, -1) for _, end in spans])
    running = most = 0
    for _, change in moments:
        running += change
        most = max(most, running)
    return most


def timeline(executions: list[dict[str, Any]], labels: list[str]) -> None:
    """Print when each execution started and finished, relative to the first start."""
    spans = [span(e) for e in executions]
    origin = min(start for start, _ in spans)
    for label, (start, end) in sorted(zip(labels, spans, strict=True), key=lambda x: x[1][0]):
        print(f"    {label}: started +{start - origin:.1f} s, finished +{end - origin:.1f} s")


async def demo_api_queue(client: PolosClient) -> None:
    print_header("API Queue Demo")
    print("The api-calls queue limits concurrent API requests to 5.")

    print_section("Single API call")
    result = await api_call_workflow.run(
        client, ApiPayload(url="https://api.example.com/users", method="GET")
    )
    print(f"  URL: {result['url']}")
    print(f"  Method: {result['method']}")
    print(f"  Status: {result['result']['status']}")
    expect(
        "API call",
        (result["url"], result["result"]["status"]),
        ("https://api.example.com/users", 200),
    )

    print_section("Multiple API calls (queued by concurrency limit)")
    handles = []
    for i in range(1, 4):
        url = f"https://api.example.com/users/{i}"
        handle = await api_call_workflow.invoke(client, ApiPayload(url=url))
        handles.append(handle)
        print(f"  Invoked: {url} (execution: {handle.id})")
    executions = await wait_all(client, handles)
    expect("queues", {e["queue_name"] for e in executions}, {"api-calls"})
    print(f"\n  {len(handles)} workflows ran on the api-calls queue")


async def demo_db_queue(client: PolosClient) -> None:
    print_header("Database Queue Demo")
    print("The database-ops queue is shared between db_read and db_write.")
    print("Total concurrent DB operations limited to 10.")

    print_section("Database read")
    result = await db_read_workflow.run(client, {"table": "users", "query": {"active": True}})
    print(f"  Table: {result['table']}")
    print(f"  Results: {result['results']}")
    expect("read", result, {"table": "users", "results": [{"id": 1, "name": "Example"}]})

    print_section("Database write")
    result = await db_write_workflow.run(
        client, {"table": "users", "data": {"name": "John Doe", "email": "john@example.com"}}
    )
    print(f"  Table: {result['table']}")
    print(f"  Inserted: {result['inserted']}")
    expect(
        "inserted", result["inserted"], {"id": 1, "name": "John Doe", "email": "john@example.com"}
    )

    print_section("Mixed read/write operations (shared queue)")
    read_handle = await db_read_workflow.invoke(client, {"table": "orders"})
    write_handle = await db_write_workflow.invoke(
        client, {"table": "orders", "data": {"product": "Widget"}}
    )
    print(f"  Read execution: {read_handle.id[:8]}...")
    print(f"  Write execution: {write_handle.id[:8]}...")
    executions = await wait_all(client, [read_handle, write_handle])
    expect("queues", [e["queue_name"] for e in executions], ["database-ops", "database-ops"])
    print(f"  Both ran on queue {executions[0]['queue_name']!r} (limit: 10)")


async def demo_heavy_queue(client: PolosClient) -> None:
    print_header("Heavy Processing Queue Demo")
    print("The heavy-processing queue has low concurrency (2) for CPU-intensive work.")

    print_section("Heavy processing task")
    result = await heavy_processing_workflow.run(client, {"data": list(range(1, 11))})
    print(f"  Items processed: {result['processed']['items_processed']}")
    print(f"  Status: {result['processed']['status']}")
    expect("heavy task", result["processed"], {"items_processed": 10, "status": "complete"})

    print_section("Multiple heavy tasks (only 2 concurrent)")
    handles = []
    for i in range(3):
        handle = await heavy_processing_workflow.invoke(
            client, {"data": list(range(i * 10, (i + 1) * 10))}
        )
        handles.append(handle)
        print(f"  Task {i + 1} invoked: {handle.id[:8]}...")
    executions = await wait_all(client, handles)
    check(most_at_once(executions) <= 2, "more than 2 heavy tasks ran at once")
    print("  All 3 completed; the queue never lets more than 2 of them run at once")


async def demo_inline_and_named_queues(client: PolosClient) -> None:
    print_header("Inline and Named Queues Demo")

    print_section("Inline queue configuration")
    print("Workflow uses inline config: queue={'concurrency_limit': 3}")
    handle = await inline_queue_workflow.invoke(client, {})
    result = await handle.result(client)
    execution = await client.get_execution(handle.id)
    print(f"  Result: {result['message']} (queue {execution['queue_name']!r})")
    expect("inline queue", execution["queue_name"], "inline_queue_workflow")

    print_section("Named queue configuration")
    print("Workflow uses string queue name: queue='my-named-queue'")
    handle = await named_queue_workflow.invoke(client, {})
    result = await handle.result(client)
    execution = await client.get_execution(handle.id)
    print(f"  Result: {result['message']} (queue {execution['queue_name']!r})")
    expect("named queue", execution["queue_name"], "my-named-queue")


async def demo_batch_processor(client: PolosClient) -> None:
    print_header("Batch Processor Demo")
    print("api_batch_processor shares the api-calls queue with api_call.")

    print_section("Processing batch of items")
    items = [{"url": f"https://api.example.com/item/{i}"} for i in range(1, 4)]
    result = await batch_processor.run(client, {"items": items})
    print(f"  Items processed: {result['processed']}")
    expect("items processed", result["processed"], 3)
    print("  All items share the api-calls queue (limit: 5)")


async def demo_queue_orchestrator(client: PolosClient) -> None:
    print_header("Queue Orchestrator Demo")
    print("The orchestrator starts workflows that use different queues.")

    print_section("Invoking workflows on different queues")
    result = await queue_orchestrator.run(client, {})
    print(f"  API workflow (api-calls queue): {result['api_execution_id'][:8]}...")
    print(f"  DB workflow (database-ops queue): {result['db_execution_id'][:8]}...")
    print(f"  Heavy workflow (heavy-processing queue): {result['heavy_execution_id'][:8]}...")
    children = [
        ExecutionHandle(id=result[key])
        for key in ("api_execution_id", "db_execution_id", "heavy_execution_id")
    ]
    executions = await wait_all(client, children)
    expect(
        "the children's queues",
        [e["queue_name"] for e in executions],
        ["api-calls", "database-ops", "heavy-processing"],
    )
    print("\n  Each workflow was throttled by its own queue's concurrency limit")


async def run_on_queue(
    client: PolosClient, queue_name: str, limit: int, first: int
) -> tuple[float, int]:
    """Run 3 slow workflows on `queue_name`; returns the time they took and the most of them
    that ran at once."""
    num_workflows, sleep_seconds = 3, 2.0
    print(f"Invoking {num_workflows} workflows with queue_concurrency_limit={limit}")
    start_time = time.perf_counter()
    handles = []
    for i in range(num_workflows):
        # By ID, on a queue chosen here: a queue named for the first time is created with
        # this limit.
        handle = await client.invoke(
            "slow_workflow",
            {"workflow_id": first + i, "sleep_seconds": sleep_seconds},
            queue_name=queue_name,
            queue_concurrency_limit=limit,
        )
        handles.append(handle)
        print(f"  Invoked workflow {first + i}: {handle.id}")
    print("\nWaiting for all workflows to complete...")
    executions = await wait_all(client, handles)
    elapsed = time.perf_counter() - start_time
    timeline(executions, [f"Workflow {first + i}" for i in range(num_workflows)])
    expect("queues", {e["queue_name"] for e in executions}, {queue_name})
    most = most_at_once(executions)
    print(f"\n  All workflows completed in {elapsed:.1f} seconds")
    print(f"  Most running at once: {most}")
    return elapsed, most


async def demo_runtime_concurrency(client: PolosClient) -> None:
    print_header("Runtime Queue Concurrency Demo")
    print("The queue and its limit are chosen at invocation time.")
    print("Each workflow works for 2 seconds.")

    print_section("Concurrency = 1 (Sequential Execution)")
    print("Expected time: ~6 seconds, one after the other\n")
    elapsed, most = await run_on_queue(client, "sequential-demo-queue", 1, first=1)
    expect("most running at once with a limit of 1", most, 1)
    check(elapsed >= 5.9, f"3 x 2 s one after the other took only {elapsed:.1f} s")

    print_section("Concurrency = 3 (Parallel Execution)")
    print("Expected time: ~2 seconds, all at the same time\n")
    elapsed, most = await run_on_queue(client, "parallel-demo-queue", 3, first=10)
    expect("most running at once with a limit of 3", most, 3)


async def demo_concurrency_keys(client: PolosClient) -> None:
    print_header("Concurrency Keys Demo")
    print("tenant-reports has a limit of 1, and every report is started with")
    print("concurrency_key=<tenant>: the limit applies per key, so each tenant gets")
    print("one report at a time while different tenants run side by side.")

    print_section("2 reports for tenant-a, 2 for tenant-b (1.5 s each)")
    jobs = [("tenant-a", "sales"), ("tenant-a", "inventory"), ("tenant-b", "sales"),
            ("tenant-b", "inventory")]  # fmt: skip
    start_time = time.perf_counter()
    handles = [
        await tenant_report.invoke(
            client, TenantReportPayload(tenant=tenant, report=report), concurrency_key=tenant
        )
        for tenant, report in jobs
    ]
    executions = await wait_all(client, handles)
    elapsed = time.perf_counter() - start_time
    timeline(executions, [f"{tenant}/{report}" for tenant, report in jobs])
    print(f"\n  All reports completed in {elapsed:.1f} seconds (one at a time would take ~6 s)")
    print(f"  Most running at once: {most_at_once(executions)}")
    for tenant in ("tenant-a", "tenant-b"):
        own = [e for e, (t, _) in zip(executions, jobs, strict=True) if t == tenant]
        print(f"  Most running at once for {tenant}: {most_at_once(own)}")
        expect(f"most running at once for {tenant}", most_at_once(own), 1)
    expect("most running at once (two tenants side by side)", most_at_once(executions), 2)


async def main() -> int:
    print("=" * 60)
    print("Shared Queues Workflow Examples")
    print("=" * 60)
    print("\nQueues defined in this example:")
    print("  - api-calls: concurrency_limit=5 (for API requests)")
    print("  - database-ops: concurrency_limit=10 (for DB operations)")
    print("  - heavy-processing: concurrency_limit=2 (for CPU-intensive work)")
    print("  - tenant-reports: concurrency_limit=1 per concurrency key")

    async with PolosClient() as client:
        try:
            await demo_api_queue(client)
            await demo_db_queue(client)
            await demo_heavy_queue(client)
            await demo_inline_and_named_queues(client)
            await demo_batch_processor(client)
            await demo_queue_orchestrator(client)
            await demo_runtime_concurrency(client)
            await demo_concurrency_keys(client)
        except Exception:
            print("\nA demo failed:", file=sys.stderr)
            traceback.print_exc()
            return 1

    print("\n" + "=" * 60)
    print("All demos completed!")
    print("=" * 60)
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
