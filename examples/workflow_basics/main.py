"""Workflow basics, demonstrated against a running server and worker.

Run with (a server and `python worker.py` running):
    python main.py
"""

import asyncio
import sys
import traceback
import uuid

from dotenv import load_dotenv
from workflows import (
    AggregatedData,
    DataPipelinePayload,
    ItemData,
    OrchestratorPayload,
    OrderPayload,
    ParentPayload,
    RandomPayload,
    SimplePayload,
    TimedPayload,
    ValidateEnrichResult,
    data_pipeline,
    orchestrator_workflow,
    parent_workflow,
    process_order,
    random_workflow,
    simple_workflow,
    timed_workflow,
)

from polos import PolosClient

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


def is_uuid(value: object) -> bool:
    try:
        uuid.UUID(str(value))
    except ValueError:
        return False
    return True


def print_demo(number: int, title: str, what: str) -> None:
    print(f"\n[Demo {number}] {title}")
    print("-" * 40)
    print(what)


async def run_workflow_demos(client: PolosClient) -> None:
    # `run` starts an execution and waits for its result, rebuilt into the workflow's return
    # type (this program imports workflows.py, so it knows the models).
    print_demo(1, "Simple Workflow", "Running simple_workflow with name='Alice'...")
    result = await simple_workflow.run(client, SimplePayload(name="Alice"))
    print(f"Result: {result}")
    expect("simple_workflow's message", result.message, "Hello, Alice!")

    print_demo(2, "Data Pipeline", "Running data_pipeline with list of strings...")
    result = await data_pipeline.run(
        client, DataPipelinePayload(data=["hello", "world", "workflow"])
    )
    print(f"Result: {result}")
    # The step returned a model: it comes back as an AggregatedData, not a dict.
    check(isinstance(result.result, AggregatedData), f"not an AggregatedData: {result.result!r}")
    expect(
        "data_pipeline's result",
        result.result,
        AggregatedData(count=3, items=["HELLO", "WORLD", "WORKFLOW"]),
    )

    print_demo(3, "Random Workflow", "Running random_workflow (coin flip)...")
    result = await random_workflow.run(client, RandomPayload())
    print(f"Result: {result}")
    print(f"Coin flip: {result.coin_flip}")
    check(0.0 <= result.random_value < 1.0, f"random value out of [0, 1): {result.random_value}")
    expect("coin flip", result.coin_flip, "heads" if result.random_value > 0.5 else "tails")
    check(is_uuid(result.random_id), f"not a UUID: {result.random_id!r}")

    print_demo(
        4,
        "Parent Workflow with Child Workflows",
        "Running parent_workflow that invokes validate_and_enrich for each item...",
    )
    result = await parent_workflow.run(
        client,
        ParentPayload(
            items=[
                ItemData(id=1, name="Item A", value=100),
                ItemData(id=2, name="Item B", value=200),
                ItemData(id=3, name="Item C", value=300),
            ]
        ),
    )
    print(f"Total items: {result.total_items}")
    print(f"Valid items: {result.valid_items}")
    print(f"Preparation: status={result.preparation.status}, count={result.preparation.item_count}")
    print("Child workflow results:")
    for i, r in enumerate(result.results):
        enriched_flag = r.enriched.get("_enriched") if r.enriched else None
        print(f"  Item {i + 1}: valid={r.valid}, enriched={enriched_flag}")
    expect("total items", result.total_items, 3)
    expect("valid items", result.valid_items, 3)
    expect(
        "preparation", (result.preparation.status, result.preparation.item_count), ("prepared", 3)
    )
    expect("child results", len(result.results), 3)
    for i, r in enumerate(result.results):
        # invoke_and_wait returned the child's result as its model.
        check(isinstance(r, ValidateEnrichResult), f"child {i}: not a ValidateEnrichResult: {r!r}")
        expect(f"child {i}: valid", r.valid, True)
        expect(f"child {i}: enriched", (r.enriched or {}).get("_enriched"), True)
        expect(f"child {i}: item id", (r.original or {}).get("id"), i + 1)

    print_demo(
        5,
        "Orchestrator Workflow",
        "Running orchestrator_workflow that coordinates child workflows...",
    )
    result = await orchestrator_workflow.run(
        client,
        OrchestratorPayload(
            data={"user_id": "user-123", "action": "signup", "email": "user@example.com"}
        ),
    )
    print(f"Status: {result.status}")
    print(f"Output ID: {result.output_id}")
    if result.enrichment:
        print(f"Enrichment valid: {result.enrichment.valid}")
    if result.processed:
        print(f"Processing applied: {result.processed.processing_applied}")
    expect("orchestrator status", result.status, "completed")
    check(is_uuid(result.output_id), f"output ID is not a UUID: {result.output_id!r}")
    expect("enrichment valid", result.enrichment and result.enrichment.valid, True)
    expect(
        "processing applied",
        result.processed and result.processed.processing_applied,
        ["normalize", "dedupe"],
    )

    print_demo(6, "Order Processor (custom ID)", "Running order_processor...")
    result = await process_order.run(
        client,
        OrderPayload(
            order_id="ORD-001",
            customer_email="alice@example.com",
            items=["keyboard", "mouse"],
            total_amount=129.90,
        ),
    )
    print(f"Order: {result.order_id}, status: {result.status}")
    print(f"Confirmation number: {result.confirmation_number}")
    expect("order", (result.order_id, result.status), ("ORD-001", "completed"))
    check(is_uuid(result.confirmation_number), "the confirmation number is not a UUID")

    print_demo(7, "Timed Workflow", "Running timed_workflow with a 2 s cooldown...")
    result = await timed_workflow.run(client, TimedPayload(cooldown_seconds=2.0))
    print(f"Status: {result.status}")
    print(f"Duration: {result.duration_ms} ms (at least the 2 s cooldown)")
    expect("timed_workflow status", result.status, "completed")
    # Both times are whole milliseconds (truncated): allow for that rounding.
    check(result.duration_ms >= 1990, f"the 2 s cooldown took only {result.duration_ms} ms")
    expect("duration", result.duration_ms, result.end_time - result.start_time)


async def main() -> int:
    print("=" * 60)
    print("Workflow Basics Demo")
    print("=" * 60)

    async with PolosClient() as client:
        try:
            await run_workflow_demos(client)
        except Exception:
            print("\nA demo failed:", file=sys.stderr)
            traceback.print_exc()
            return 1

    print("\n" + "=" * 60)
    print("Demo complete!")
    print("=" * 60)
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
