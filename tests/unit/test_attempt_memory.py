"""A finished attempt is freed by reference counting, not left to the cyclic collector.

The worker runs with the collector set to visit rarely (polos/gc_tuning.py), so an attempt
caught in a reference cycle (its context's `step` refers back to it) stayed in memory with its
payload, journal and submitted children until a full collection: ~300 MiB of a worker's peak
in a 100,000-child fan-out (docs/performance.md)."""

from __future__ import annotations

import asyncio
import gc
import weakref
from collections.abc import Iterator, Sequence

import pytest

from polos import WorkflowContext, protocol, workflow
from polos.worker import reports
from polos.worker.attempt import Attempt, AttemptOver
from polos.worker.reporter import Reporter
from tests.unit.wire import claimed_execution

left_behind: list[WorkflowContext] = []


@workflow(id="attempt_memory_two_steps")
async def two_steps(ctx: WorkflowContext, payload: dict[str, int]) -> int:
    first = await ctx.step.run("first", lambda: payload["n"] + 1)
    second = await ctx.step.run("second", lambda: first * 2)
    left_behind.append(ctx)  # as a task the workflow leaves running would
    return int(second)


async def _accept(items: Sequence[reports.ReportItem]) -> list[protocol.ReportItemResult]:
    return [protocol.ReportItemResult(execution_id=i.execution_id, status="ok") for i in items]


def _execution(execution_id: str) -> protocol.ClaimedExecutionWire:
    return claimed_execution(
        execution_id,
        workflow_id="attempt_memory_two_steps",
        payload='{"n": 20}',
        root_workflow_id="attempt_memory_two_steps",
    )


@pytest.fixture
def no_cyclic_collection() -> Iterator[None]:
    was_enabled = gc.isenabled()
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


async def test_a_finished_attempt_is_freed_without_the_cyclic_collector(
    no_cyclic_collection: None,
) -> None:
    reporter = Reporter(_accept)
    reporter.start()
    done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    attempt = Attempt(
        _execution("exec-1"),
        two_steps,
        reporter,
        None,
        on_done=lambda _: done.set_result(None),
        on_released=lambda _: None,
    )
    attempt.start()
    await done
    await reporter.drain()
    task = attempt.task
    assert task is not None and task.done() and task.exception() is None
    gone = weakref.ref(attempt)
    del attempt, task
    await asyncio.sleep(0)
    assert gone() is None, [type(r).__name__ for r in gc.get_referrers(gone())]
    await reporter.stop()

    # The context the workflow kept says so when its steps are used after the end.
    ctx = left_behind.pop()
    with pytest.raises(AttemptOver):
        await ctx.step.run("late", lambda: 1)
