"""polos.sdk.threads.run_in_thread: the cheap `asyncio.to_thread` for synchronous step bodies."""

from __future__ import annotations

import asyncio
import contextvars
import threading
import time

import pytest

from polos.sdk.threads import run_in_thread

VAR: contextvars.ContextVar[str] = contextvars.ContextVar("VAR", default="unset")


async def test_results_and_exceptions_reach_their_callers() -> None:
    def square(x: int) -> int:
        if x == 7:
            raise ValueError("seven")
        return x * x

    outcomes = await asyncio.gather(
        *(run_in_thread(square, i) for i in range(200)), return_exceptions=True
    )
    for i, outcome in enumerate(outcomes):
        if i == 7:
            assert isinstance(outcome, ValueError) and str(outcome) == "seven"
        else:
            assert outcome == i * i


async def test_bodies_run_off_the_loop_thread_with_the_callers_context() -> None:
    VAR.set("caller")
    loop_thread = threading.get_ident()

    def where(key: str = "") -> tuple[int, str, str]:
        return threading.get_ident(), VAR.get(), key

    thread, value, key = await run_in_thread(where, key="kw")
    assert thread != loop_thread
    assert (value, key) == ("caller", "kw")


async def test_blocking_bodies_run_in_parallel() -> None:
    # 16 bodies sleeping 0.5 s each end together (about 0.5 s), not one after another (8 s):
    # threads start on demand while every started one is busy.
    began = time.monotonic()
    await asyncio.gather(*(run_in_thread(time.sleep, 0.5) for _ in range(16)))
    assert time.monotonic() - began < 4.0


async def test_a_cancelled_caller_does_not_break_the_pool() -> None:
    task = asyncio.ensure_future(run_in_thread(time.sleep, 0.2))
    await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await asyncio.sleep(0.3)  # its result arrives for a cancelled future: dropped
    assert await run_in_thread(lambda: 42) == 42
