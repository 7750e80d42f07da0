"""Workflows for the dashboard's browser test and screenshots.

- `process_orders`: a parent starts `n` `process_order` children in one batch; every
  `fail_every`-th child fails with `PaymentDeclinedError`.
- `ship_order`: on the `shipping` queue, at most 5 at a time.
- `nightly_report`: scheduled daily at 02:00 UTC (the schedules list shows its next slot).

Orders and shipments wait until the file named `gate` exists (when one is named) before they
do anything, so a test can look at them while nothing has finished, then let them go.
"""

from __future__ import annotations

import asyncio
import os
import random

from pydantic import BaseModel

from polos import Queue, SchedulePayload, WorkflowContext, workflow
from polos.types.types import BatchWorkflowInput


class PaymentDeclinedError(Exception):
    pass


class OrderIn(BaseModel):
    index: int
    fail_every: int = 0
    gate: str | None = None
    # Upper bound of the made-up work each step does, in seconds.
    work_seconds: float = 0.0


class OrderOut(BaseModel):
    index: int
    total_cents: int


class FanOutIn(BaseModel):
    n: int
    fail_every: int = 0
    gate: str | None = None
    work_seconds: float = 0.0


class FanOutOut(BaseModel):
    completed: int
    failed: int
    errors: list[str]


async def _work(seconds: float) -> None:
    if seconds:
        await asyncio.sleep(random.uniform(seconds / 4, seconds))


async def _gate(path: str) -> None:
    """Until the file exists (another process creates it: there is nothing to await)."""
    while not os.path.exists(path):  # noqa: ASYNC110
        await asyncio.sleep(0.05)


@workflow(id="process_order")
async def process_order(ctx: WorkflowContext, payload: OrderIn) -> OrderOut:
    if payload.gate:
        await _gate(payload.gate)

    async def reserve() -> int:
        await _work(payload.work_seconds)
        return 1000 + payload.index

    cents = await ctx.step.run("reserve_stock", reserve)
    if payload.fail_every and payload.index % payload.fail_every == payload.fail_every - 1:
        raise PaymentDeclinedError(
            f"card of order {payload.index} was declined (insufficient funds)"
        )

    async def charge() -> int:
        await _work(payload.work_seconds)
        return cents

    charged = await ctx.step.run("charge_card", charge)
    return OrderOut(index=payload.index, total_cents=charged)


@workflow(id="process_orders")
async def process_orders(ctx: WorkflowContext, payload: FanOutIn) -> FanOutOut:
    batch_id = await ctx.step.uuid("batch_id")
    results = await ctx.step.batch_invoke_and_wait(
        "orders",
        [
            BatchWorkflowInput(
                id="process_order",
                payload=OrderIn(
                    index=i,
                    fail_every=payload.fail_every,
                    gate=payload.gate,
                    work_seconds=payload.work_seconds,
                ),
            )
            for i in range(payload.n)
        ],
    )
    await ctx.step.run("write_report", lambda: f"report-{batch_id}")
    return FanOutOut(
        completed=sum(r.success for r in results),
        failed=sum(not r.success for r in results),
        errors=[r.error or "" for r in results if not r.success][:5],
    )


SHIPPING = Queue("shipping", concurrency_limit=5)


class ShipIn(BaseModel):
    order: int
    gate: str | None = None


@workflow(id="ship_order", queue=SHIPPING)
async def ship_order(ctx: WorkflowContext, payload: ShipIn) -> dict[str, int]:
    if payload.gate:
        await _gate(payload.gate)
    label = await ctx.step.run("print_label", lambda: 7000 + payload.order)
    return {"order": payload.order, "label": label}


@workflow(id="nightly_report", schedule="0 2 * * *")
async def nightly_report(ctx: WorkflowContext, payload: SchedulePayload) -> dict[str, str]:
    return {"slot": payload.timestamp.isoformat()}
