"""Error handling patterns: retries, recovery, fallback, circuit breaker, compensation.

Run with (a server and `python worker.py` running):
    python main.py
"""

import asyncio
import sys
import time
import traceback

from dotenv import load_dotenv
from workflows import (
    RetryPayload,
    circuit_breaker,
    compensation_pattern,
    error_recovery,
    fallback_pattern,
    retry_example,
)

from polos import PolosClient, WorkflowFailedError

load_dotenv()


class CheckFailed(Exception):
    """A demo's outcome is not the expected one."""


def expect(what: str, actual: object, expected: object) -> None:
    """Stop the demos (main.py then exits with status 1) when `actual` is not `expected`."""
    if actual != expected:
        raise CheckFailed(f"{what}: expected {expected!r}, got {actual!r}")


def print_header(title: str) -> None:
    print("\n" + "=" * 60)
    print(title)
    print("=" * 60)


def print_section(title: str) -> None:
    print(f"\n--- {title} ---")


async def demo_retry_example(client: PolosClient) -> None:
    print_header("Retry Example Demo")
    print("A step is retried with exponential backoff: up to 3 retries here.")

    print_section("Flaky service (fails once, then works)")
    start = time.perf_counter()
    result = await retry_example.run(client, RetryPayload(failures=1, operation="low_risk_process"))
    print(f"  Status: {result['status']}")
    print(f"  Result: {result['result']}")
    elapsed = time.perf_counter() - start
    print(f"  Succeeded on attempt {result['result']['attempts']} ({elapsed:.1f} s)")
    expect("flaky service status", result["status"], "success")
    expect("attempts of the flaky service", result["result"]["attempts"], 2)

    print_section("Broken service (fails every time)")
    start = time.perf_counter()
    try:
        result = await retry_example.run(
            client, RetryPayload(failures=100, operation="high_risk_process")
        )
    except WorkflowFailedError as e:
        # The step's StepExecutionError escaped the workflow: the execution failed at once
        # (no workflow-level retries for a step that already used its own).
        print(f"  Failed after retries (expected): {e}")
        print(f"  Error type: {e.error_type} ({time.perf_counter() - start:.1f} s)")
        expect("error type", e.error_type, "StepExecutionError")
        expected = (
            "Workflow execution failed: Step 'unreliable_operation' failed after 4 attempt(s): "
            "ConnectionError: high_risk_process: service unavailable (call 4)"
        )
        expect("error message", str(e), expected)
        # One attempt of the workflow: its step's retries were the only ones.
        execution = await client.get_execution(e.execution_id)
        expect("workflow-level retries", execution["retry_count"], 0)
    else:
        raise CheckFailed(f"the broken service succeeded: {result}")


async def demo_error_recovery(client: PolosClient) -> None:
    print_header("Error Recovery Demo")
    print("This workflow processes items and continues even if some fail.")
    print("Items with 'fail' in their name will fail.")

    print_section("Processing mixed items")
    result = await error_recovery.run(
        client, {"items": ["item1", "item2", "fail_item", "item3", "another_fail"]}
    )
    print(f"  Processed: {result['processed']}")
    print(f"  Failed: {result['failed']}")
    if result["results"]:
        print("\n  Successful results:")
        for r in result["results"]:
            print(f"    - {r['item']}: {r['status']}")
    if result["errors"]:
        print("\n  Errors:")
        for e in result["errors"]:
            print(f"    - {e['item']}: {e['error']}")
    expect("processed", [r["item"] for r in result["results"]], ["item1", "item2", "item3"])
    expect("failed", [e["item"] for e in result["errors"]], ["fail_item", "another_fail"])
    expect("counts", (result["processed"], result["failed"]), (3, 2))


async def demo_fallback_pattern(client: PolosClient) -> None:
    print_header("Fallback Pattern Demo")
    print("This workflow tries the primary method first, then falls back if it fails.")

    print_section("Primary method succeeds")
    result = await fallback_pattern.run(client, {"data": {"value": "test_data"}})
    print(f"  Method used: {result['method']}")
    print(f"  Result: {result['result']}")
    expect("method", result["method"], "primary")

    print_section("Primary fails, using fallback")
    result = await fallback_pattern.run(
        client, {"data": {"value": "test_data", "force_failure": True}}
    )
    print(f"  Method used: {result['method']}")
    print(f"  Result: {result['result']}")
    if result["result"].get("degraded"):
        print("  (Running in degraded mode)")
    expect("method", result["method"], "fallback")
    expect("degraded", result["result"].get("degraded"), True)


async def demo_circuit_breaker(client: PolosClient) -> None:
    print_header("Circuit Breaker Demo")
    print("The circuit opens after 3 consecutive failures; the remaining items are skipped.")

    print_section("Processing with circuit breaker")
    items = [
        {"id": 1, "name": "item1"},
        {"id": 2, "name": "item2"},
        {"id": 3, "name": "item3", "should_fail": True},
        {"id": 4, "name": "item4", "should_fail": True},
        {"id": 5, "name": "item5", "should_fail": True},
        {"id": 6, "name": "item6"},
        {"id": 7, "name": "item7"},
    ]
    result = await circuit_breaker.run(client, {"items": items, "failure_threshold": 3})
    print(f"  Circuit open: {result['circuit_open']}")
    print(f"  Total failures: {result['total_failures']}")
    print("\n  Results:")
    for r in result["results"]:
        item = r.get("item")
        item_id = item.get("id", "?") if isinstance(item, dict) else "?"
        reason = f" ({r['reason']})" if "reason" in r else ""
        print(f"    - Item {item_id}: {r['status']}{reason}")
    expect("circuit open", result["circuit_open"], True)
    expect("consecutive failures", result["total_failures"], 3)
    expect(
        "statuses",
        [r["status"] for r in result["results"]],
        ["success", "success", "failed", "failed", "failed", "skipped", "skipped"],
    )


async def demo_compensation_pattern(client: PolosClient) -> None:
    print_header("Compensation Pattern Demo")
    print("A saga: reserve_inventory -> charge_payment -> send_confirmation,")
    print("undoing the completed steps (newest first) when a later one fails.")

    print_section("Successful transaction")
    result = await compensation_pattern.run(client, {"order_id": "ORDER-001"})
    print(f"  Status: {result['status']}")
    print(f"  Completed steps: {result.get('completed', [])}")
    expect("status", result["status"], "success")
    expect(
        "completed steps",
        result.get("completed"),
        ["reserve_inventory", "charge_payment", "send_confirmation"],
    )

    print_section("Failed transaction with rollback")
    result = await compensation_pattern.run(
        client, {"order_id": "ORDER-002", "fail_confirmation": True}
    )
    print(f"  Status: {result['status']}")
    if result["status"] == "rolled_back":
        print(f"  Error: {result.get('error', 'Unknown')}")
        print(f"  Compensated steps: {result.get('compensated', [])}")
    expect("status", result["status"], "rolled_back")
    # Undone newest first.
    expect("compensated steps", result.get("compensated"), ["charge_payment", "reserve_inventory"])


async def main() -> int:
    print("=" * 60)
    print("Error Handling Workflow Examples")
    print("=" * 60)

    async with PolosClient() as client:
        try:
            await demo_retry_example(client)
            await demo_error_recovery(client)
            await demo_fallback_pattern(client)
            await demo_circuit_breaker(client)
            await demo_compensation_pattern(client)
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
