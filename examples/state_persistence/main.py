"""Stateful workflows: `ctx.state`, `initial_state`, and the state the server keeps.

Run with (a server and `python worker.py` running):
    python main.py
"""

import asyncio
import sys
import traceback

from dotenv import load_dotenv
from workflows import (
    CartItem,
    CartPayload,
    CounterPayload,
    CounterState,
    InitialStatePayload,
    counter_workflow,
    shopping_cart_workflow,
    stateful_with_initial_state,
)

from polos import PolosClient

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


async def demo_counter_workflow(client: PolosClient) -> None:
    print_header("Counter Workflow Demo")
    print("Each run is a new execution with its own state, starting from count=0.")

    print_section("Incrementing counter")
    result = await counter_workflow.run(client, CounterPayload(action="increment", amount=1))
    print(f"  Count = {result.count}")
    expect("count after +1", result.count, 1)

    print_section("Incrementing by 5")
    result = await counter_workflow.run(client, CounterPayload(action="increment", amount=5))
    print(f"  Count after +5: {result.count}")
    expect("count after +5 (a new execution starts from 0)", result.count, 5)

    print_section("Decrementing by 2")
    result = await counter_workflow.run(client, CounterPayload(action="decrement", amount=2))
    print(f"  Count after -2: {result.count}")
    expect("count after -2", result.count, -2)

    print_section("Resetting counter")
    result = await counter_workflow.run(client, CounterPayload(action="reset"))
    print(f"  Count after reset: {result.count}")
    print(f"  Last updated: {result.last_updated}")
    expect("count after reset", result.count, 0)
    expect("action", result.action, "reset")


async def demo_shopping_cart(client: PolosClient) -> None:
    print_header("Shopping Cart Workflow Demo")
    print("This workflow adds an item to a cart; the server keeps the final state.")

    item = CartItem(id="item-1", name="Laptop", price=999.99, quantity=1)
    handle = await shopping_cart_workflow.invoke(client, CartPayload(action="add", item=item))
    result = await handle.result(client)
    print(f"  Added: {item.name} (${item.price} x {item.quantity})")
    print(f"  Cart total: ${result.total:.2f}")

    # The state saved with the execution, as the API shows it.
    execution = await client.get_execution(handle.id)
    state = execution["state"]
    print(f"  Saved state: {len(state['items'])} item(s), total ${state['total']:.2f}")
    expect("cart total", result.total, 999.99)
    expect("cart items", result.items, [item.model_dump()])
    expect("saved state", state, {"items": [item.model_dump()], "total": 999.99})


async def demo_initial_state(client: PolosClient) -> None:
    print_header("Initial State Demo")
    print("This workflow demonstrates passing initial state when invoking.")

    print_section("Without initial state")
    result = await stateful_with_initial_state.run(client, InitialStatePayload(increment=5))
    print(f"  Original count: {result.original_count}")
    print(f"  New count: {result.new_count}")
    expect("counts without initial state", (result.original_count, result.new_count), (0, 5))

    print_section("With initial state (count=100)")
    result = await stateful_with_initial_state.run(
        client, InitialStatePayload(increment=5), initial_state=CounterState(count=100)
    )
    print(f"  Original count: {result.original_count}")
    print(f"  New count: {result.new_count}")
    expect("counts from count=100", (result.original_count, result.new_count), (100, 105))

    print_section("With initial state (count=50)")
    result = await stateful_with_initial_state.run(
        client, InitialStatePayload(increment=25), initial_state=CounterState(count=50)
    )
    print(f"  Original count: {result.original_count}")
    print(f"  New count: {result.new_count}")
    expect("counts from count=50", (result.original_count, result.new_count), (50, 75))


async def main() -> int:
    print("=" * 60)
    print("State Persistence Workflow Examples")
    print("=" * 60)

    async with PolosClient() as client:
        try:
            await demo_counter_workflow(client)
            await demo_shopping_cart(client)
            await demo_initial_state(client)
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
