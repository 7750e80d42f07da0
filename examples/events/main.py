"""Event-driven workflows: publish events that start workflows, publish from a workflow, wait
for an event inside a workflow.

Run with (a server and `python worker.py` running):
    python main.py
"""

import asyncio
import contextlib
import sys
import time
import traceback
from collections.abc import Callable
from typing import Any

from dotenv import load_dotenv
from workflows import (
    EventReceivedResult,
    OrderProcessedResult,
    PublishEventPayload,
    UserOnboardedResult,
    WaitForEventPayload,
    event_publisher,
    event_waiter,
)

from polos import ExecutionHandle, PolosClient, WorkflowFailedError, events

load_dotenv()

FOLLOW_TIMEOUT_SECONDS = 30.0


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


class Follower:
    """Reads result topics from a cursor: every event it returns comes after the last one it
    returned (sequence numbers are global and increasing), so older runs of this demo on the
    same server are never mistaken for this one."""

    def __init__(self) -> None:
        self.cursor = 0

    def advance(self, sequence_id: int | None) -> None:
        self.cursor = max(self.cursor, sequence_id or 0)

    async def next(
        self,
        client: PolosClient,
        topic: str,
        match: Callable[[events.StreamEvent], bool],
    ) -> events.StreamEvent:
        """The first event on `topic` after the cursor for which `match` is true."""
        async with asyncio.timeout(FOLLOW_TIMEOUT_SECONDS):
            stream = events.stream_topic(client, topic, last_sequence_id=self.cursor)
            async with contextlib.aclosing(stream):
                async for event in stream:
                    if match(event):
                        return event
        raise RuntimeError(f"the stream of {topic!r} ended")


async def wait_for_status(client: PolosClient, handle: ExecutionHandle, status: str) -> None:
    deadline = time.monotonic() + FOLLOW_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if (await handle.get(client))["status"] == status:
            return
        await asyncio.sleep(0.1)
    raise TimeoutError(f"execution {handle.id} did not reach status {status!r}")


async def show_run(client: PolosClient, execution_id: str) -> dict[str, Any]:
    """Wait for a triggered execution to finish and print its outcome."""
    await client.wait_for_execution(execution_id, timeout=FOLLOW_TIMEOUT_SECONDS)
    # `get` rebuilds the result into the workflow's return type (this program imports
    # workflows.py, so it knows the models).
    execution = await ExecutionHandle(id=execution_id).get(client)
    print(f"  Execution: {execution_id}")
    print(f"  Status: {execution['status']}")
    print(f"  Result: {execution['result']}")
    expect(f"status of {execution_id}", execution["status"], "completed")
    return execution


async def demo_order_created(client: PolosClient, follow: Follower) -> None:
    print_header("Event-Triggered Workflow Demo")
    print("Publishing on 'orders/created' starts the 'on_order_created' workflow.")

    print_section("Publishing event to 'orders/created' topic")
    order_data = {
        "order_id": "ORD-12345",
        "customer_id": "CUST-001",
        "items": [
            {"product": "Widget A", "quantity": 2, "price": 29.99},
            {"product": "Widget B", "quantity": 1, "price": 49.99},
        ],
        "total": 109.97,
    }
    print(f"  Order ID: {order_data['order_id']}")
    print(f"  Customer: {order_data['customer_id']}")
    print(f"  Total: ${order_data['total']}")
    seq = await events.publish(
        client,
        topic="orders/created",
        event_data=events.EventData(event_type="order_created", data=order_data),
    )
    follow.advance(seq)
    print(f"\n  Event published! (sequence {seq})")

    print_section("The triggered workflow")
    done = await follow.next(
        client, "orders/processed", lambda e: e.data.get("order_id") == "ORD-12345"
    )
    follow.advance(done.sequence_id)
    print(f"  on_order_created handled event #{done.data['event_seq']}")
    expect("the event that started on_order_created", done.data["event_seq"], seq)
    execution = await show_run(client, done.data["execution_id"])
    expect("workflow", execution["workflow_id"], "on_order_created")
    expect(
        "result",
        execution["result"],
        OrderProcessedResult(order_id="ORD-12345", status="processed"),
    )


async def demo_user_signup(client: PolosClient, follow: Follower) -> None:
    print_header("User Signup Event Demo")
    print("Publishing on 'users/signup' starts the 'on_user_signup' workflow.")

    print_section("Publishing event to 'users/signup' topic")
    user_data = {"user_id": "USER-42", "email": "newuser@example.com", "name": "New User"}
    print(f"  User ID: {user_data['user_id']}")
    print(f"  Email: {user_data['email']}")
    seq = await events.publish(
        client,
        topic="users/signup",
        event_data=events.EventData(event_type="user_signup", data=user_data),
    )
    follow.advance(seq)
    print("\n  Event published!")

    print_section("The triggered workflow")
    done = await follow.next(
        client, "users/onboarded", lambda e: e.data.get("user_id") == "USER-42"
    )
    follow.advance(done.sequence_id)
    execution = await show_run(client, done.data["execution_id"])
    expect("workflow", execution["workflow_id"], "on_user_signup")
    expect(
        "result", execution["result"], UserOnboardedResult(user_id="USER-42", onboarding="complete")
    )


async def demo_batch_events(client: PolosClient, follow: Follower) -> None:
    print_header("Batch Event Processing Demo")
    print("batch_processor takes 10 events per execution, or what there is once the")
    print("oldest waiting event is 5 seconds old (batch_timeout_seconds=5).")

    print_section("Publishing 12 events to 'data/updates' topic (one request)")
    to_publish = [
        events.EventData(event_type="data_update", data={"record_id": f"REC-{i}", "value": i * 10})
        for i in range(1, 13)
    ]
    start = time.perf_counter()
    seqs = await events.batch_publish(client, topic="data/updates", events=to_publish)
    follow.advance(seqs[-1])
    print(f"  Published {len(seqs)} events (sequences {seqs[0]}..{seqs[-1]})")

    print_section("Batches")
    handled: list[str] = []
    batches: list[tuple[int, float]] = []  # (size, seconds after publishing)
    while len(handled) < len(to_publish):
        done = await follow.next(client, "data/processed", lambda e: True)
        follow.advance(done.sequence_id)
        records = done.data["records"]
        handled += records
        elapsed = time.perf_counter() - start
        batches.append((done.data["batch_size"], elapsed))
        print(f"  Batch of {done.data['batch_size']}: {records[0]}..{records[-1]}")
        print(f"    (after {elapsed:.1f} s, execution {done.data['execution_id'][:8]}...)")
    expect("records handled, in order", handled, [e.data["record_id"] for e in to_publish])
    expect("batch sizes", [size for size, _ in batches], [10, 2])
    # The partial batch fires once its oldest event is batch_timeout_seconds (5) old.
    check(batches[1][1] >= 4.5, f"the partial batch came after {batches[1][1]:.1f} s, not ~5 s")
    print(
        f"  All {len(handled)} events processed: a full batch at once, the rest after the timeout"
    )


async def demo_event_publisher_workflow(client: PolosClient, follow: Follower) -> None:
    print_header("Event Publisher Workflow Demo")
    print("A workflow publishes an event (ctx.step.publish_event), which starts another.")

    print_section("Running event_publisher workflow")
    payload = PublishEventPayload(
        topic="orders/created",
        event_data={
            "order_id": "ORD-FROM-WORKFLOW",
            "customer_id": "CUST-002",
            "items": [{"product": "Widget C", "quantity": 3, "price": 19.99}],
            "total": 59.97,
        },
        event_type="order_created",
    )
    print(f"  Publishing to topic: {payload.topic}")
    print(f"  Event type: {payload.event_type}")
    result = await event_publisher.run(client, payload)

    print_section("Result")
    print(f"  Published: {result.published}")
    print(f"  Topic: {result.topic}")
    print(f"  Event type: {result.event_type}")
    expect(
        "event_publisher's result",
        (result.published, result.topic, result.event_type),
        (True, "orders/created", "order_created"),
    )

    print_section("The workflow it started")
    done = await follow.next(
        client, "orders/processed", lambda e: e.data.get("order_id") == "ORD-FROM-WORKFLOW"
    )
    follow.advance(done.sequence_id)
    execution = await show_run(client, done.data["execution_id"])
    expect(
        "result",
        execution["result"],
        OrderProcessedResult(order_id="ORD-FROM-WORKFLOW", status="processed"),
    )


async def demo_event_waiter_workflow(client: PolosClient) -> None:
    print_header("Event Waiter Workflow Demo")
    print("This workflow waits for an event on a topic (ctx.step.wait_for_event).")

    print_section("Starting event_waiter workflow")
    topic, timeout = "demo/notifications", 10
    print(f"  Waiting for events on topic: {topic}")
    print(f"  Timeout: {timeout} seconds")
    handle = await event_waiter.invoke(client, WaitForEventPayload(topic=topic, timeout=timeout))
    print(f"\n  Workflow started with execution ID: {handle.id}")

    # While it waits, the execution is suspended: it holds no worker slot.
    await wait_for_status(client, handle, "waiting")
    print("  Workflow is now waiting for an event (status: waiting)")

    print_section("Publishing event to wake up the waiter")
    notification = {"message": "Hello from main.py!", "priority": "high"}
    await events.publish(
        client,
        topic=topic,
        event_data=events.EventData(event_type="notification", data=notification),
    )
    print("  Event published!")

    print_section("Waiting for workflow to complete")
    await client.wait_for_execution(handle.id, timeout=FOLLOW_TIMEOUT_SECONDS)
    execution = await handle.get(client)
    print("  Workflow result:")
    print(f"  Status: {execution['status']}")
    print(f"  Result: {execution['result']}")
    expect("status", execution["status"], "completed")
    expect(
        "result",
        execution["result"],
        EventReceivedResult(
            received=True, event_topic=topic, event_type="notification", event_data=notification
        ),
    )

    print_section("Nobody publishes: the wait times out")
    print("  Running event_waiter on 'demo/silence' with a 2 second timeout...")
    try:
        result = await event_waiter.run(
            client, WaitForEventPayload(topic="demo/silence", timeout=2)
        )
    except WorkflowFailedError as e:
        print(f"  Timed out (expected): {e}")
        expect("error type", e.error_type, "StepExecutionError")
        check("the event wait timed out" in str(e), f"not a timeout: {e}")
    else:
        raise CheckFailed(f"an event arrived on demo/silence: {result}")


async def main() -> int:
    print("=" * 60)
    print("Event-Triggered Workflow Examples")
    print("=" * 60)
    print("\nThis demo showcases event-driven patterns:")
    print("  1. Publishing events that trigger workflows")
    print("  2. User signup event triggering onboarding")
    print("  3. Batch event processing")
    print("  4. Workflow that publishes events")
    print("  5. Workflow that waits for events")

    follow = Follower()
    async with PolosClient() as client:
        try:
            await demo_order_created(client, follow)
            await demo_user_signup(client, follow)
            await demo_batch_events(client, follow)
            await demo_event_publisher_workflow(client, follow)
            await demo_event_waiter_workflow(client)
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
