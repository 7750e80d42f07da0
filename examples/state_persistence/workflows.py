"""State: a typed, per-execution scratchpad (`ctx.state`) that the server keeps.

A workflow declares `state_schema=` (a `WorkflowState` subclass, a pydantic model whose
assignments are validated). Each execution starts from the schema's defaults, or from the
`initial_state` given when it is started, and mutates `ctx.state` freely. The state is saved
with every suspension, failure and completion, and shown by the API
(`client.get_execution(id)["state"]`).

State belongs to one execution: the next execution of the same workflow starts afresh. To
carry values from one execution to the next, pass them as `initial_state` (or keep them in
your own database).

- `counter_workflow`: increment / decrement / reset a counter.
- `shopping_cart`: add / remove items in a cart.
- `stateful_with_initial_state`: the same counter, started from a given state.
"""

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from polos import WorkflowContext, WorkflowState, workflow

# ============================================================================ state schemas


class CounterState(WorkflowState):
    count: int = 0
    last_updated: str | None = None


class ShoppingCartState(WorkflowState):
    items: list[dict[str, Any]] = Field(default_factory=list)
    total: float = 0.0


# ============================================================================ models


class CounterPayload(BaseModel):
    action: Literal["increment", "decrement", "reset"] = "increment"
    amount: int = 1


class CounterResult(BaseModel):
    action: str
    count: int
    last_updated: str


class CartItem(BaseModel):
    id: str
    name: str
    price: float
    quantity: int = 1


class CartPayload(BaseModel):
    """add: needs `item`; remove: needs `item_id`; clear: empties the cart."""

    action: Literal["add", "remove", "clear"] = "add"
    item: CartItem | None = None
    item_id: str | None = None


class CartResult(BaseModel):
    items: list[dict[str, Any]]
    total: float


class InitialStatePayload(BaseModel):
    increment: int = 1


class InitialStateResult(BaseModel):
    original_count: int
    new_count: int
    last_updated: str


# ============================================================================ workflows


@workflow(id="counter_workflow", state_schema=CounterState)
async def counter_workflow(ctx: WorkflowContext, payload: CounterPayload) -> CounterResult:
    if payload.action == "increment":
        ctx.state.count += payload.amount
    elif payload.action == "decrement":
        ctx.state.count -= payload.amount
    elif payload.action == "reset":
        ctx.state.count = 0

    # A timestamp taken outside a step differs on every replay: record it with a step, so the
    # state a replay rebuilds is the same as the first run's.
    ctx.state.last_updated = await ctx.step.run("last_updated", lambda: datetime.now().isoformat())
    return CounterResult(
        action=payload.action, count=ctx.state.count, last_updated=ctx.state.last_updated
    )


@workflow(id="shopping_cart", state_schema=ShoppingCartState)
async def shopping_cart_workflow(ctx: WorkflowContext, payload: CartPayload) -> CartResult:
    if payload.action == "add" and payload.item:
        ctx.state.items.append(payload.item.model_dump())
        ctx.state.total += payload.item.price * payload.item.quantity
    elif payload.action == "remove" and payload.item_id:
        for i, item in enumerate(ctx.state.items):
            if item.get("id") == payload.item_id:
                ctx.state.total -= item.get("price", 0) * item.get("quantity", 1)
                ctx.state.items.pop(i)
                break
    elif payload.action == "clear":
        ctx.state.items = []
        ctx.state.total = 0.0
    return CartResult(items=ctx.state.items, total=ctx.state.total)


@workflow(id="stateful_with_initial_state", state_schema=CounterState)
async def stateful_with_initial_state(
    ctx: WorkflowContext, payload: InitialStatePayload
) -> InitialStateResult:
    """Starts from `initial_state` when one is given, else from CounterState's defaults."""
    original_count = ctx.state.count
    ctx.state.count += payload.increment
    ctx.state.last_updated = await ctx.step.run("last_updated", lambda: datetime.now().isoformat())
    return InitialStateResult(
        original_count=original_count,
        new_count=ctx.state.count,
        last_updated=ctx.state.last_updated,
    )
