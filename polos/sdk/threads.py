"""Running the bodies of synchronous steps in threads, cheaply.

`asyncio.to_thread` costs a `concurrent.futures.Future` (with its own `threading.Condition`),
a chained asyncio future and one loop wake-up per call: in a fan-out of thousands of
children with two tiny synchronous steps each, that was about a third of a worker's CPU. Here
a call is one `SimpleQueue.put`, and the threads hand back their results in batches: the
first result of a batch wakes the loop once, the loop settles every result that arrived.

Semantics are those of `asyncio.to_thread`: the body runs in another thread with a copy of
the caller's context variables; its exception is raised to the awaiting coroutine.
Threads are started on demand, up to `POLOS_STEP_THREADS` (default 32) per event loop.
"""

from __future__ import annotations

import asyncio
import contextvars
import os
import queue
import threading
from collections.abc import Callable
from typing import Any

_Item = tuple[
    asyncio.Future[Any], contextvars.Context, Callable[..., Any], tuple[Any, ...], dict[str, Any]
]


def _max_threads() -> int:
    return max(1, int(os.environ.get("POLOS_STEP_THREADS", "32")))


class StepThreads:
    """A pool of daemon threads for one event loop."""

    def __init__(self, loop: asyncio.AbstractEventLoop, max_threads: int) -> None:
        self._loop = loop
        self._max = max_threads
        self._queue: queue.SimpleQueue[_Item] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._done: list[tuple[asyncio.Future[Any], bool, Any]] = []
        self._drain_scheduled = False
        # Under the lock: threads started, threads waiting for an item, items not taken yet.
        self._threads = 0
        self._waiting = 0
        self._queued = 0

    def submit(
        self, fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> asyncio.Future[Any]:
        fut = self._loop.create_future()
        with self._lock:
            self._queued += 1
            start = self._queued > self._waiting and self._threads < self._max
            if start:
                self._threads += 1
        self._queue.put((fut, contextvars.copy_context(), fn, args, kwargs))
        if start:
            threading.Thread(target=self._serve, name="polos-step", daemon=True).start()
        return fut

    def _serve(self) -> None:
        get = self._queue.get
        lock = self._lock
        with lock:
            self._waiting += 1
        while True:
            fut, context, fn, args, kwargs = get()
            with lock:
                self._waiting -= 1
                self._queued -= 1
            try:
                value, ok = context.run(fn, *args, **kwargs), True
            except BaseException as exc:  # handed to the awaiting coroutine
                value, ok = exc, False
            del context, fn, args, kwargs
            with lock:
                self._done.append((fut, ok, value))
                wake = not self._drain_scheduled
                self._drain_scheduled = True
                self._waiting += 1
            del fut, value
            if wake:
                try:
                    self._loop.call_soon_threadsafe(self._drain)
                except RuntimeError:  # the loop is closed: nobody waits any more
                    return

    def _drain(self) -> None:
        with self._lock:
            done, self._done = self._done, []
            self._drain_scheduled = False
        for fut, ok, value in done:
            if fut.cancelled():
                continue
            if ok:
                fut.set_result(value)
            else:
                fut.set_exception(value)


_pools: dict[asyncio.AbstractEventLoop, StepThreads] = {}


async def run_in_thread(fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
    """`await asyncio.to_thread(fn, *args, **kwargs)`, cheaper."""
    loop = asyncio.get_running_loop()
    pool = _pools.get(loop)
    if pool is None:
        # One pool per loop; a closed loop's pool is dropped with it (its idle threads wait
        # on an empty queue, daemons, until the process ends).
        for old in [lp for lp in _pools if lp.is_closed()]:
            _pools.pop(old, None)
        pool = _pools[loop] = StepThreads(loop, _max_threads())
    return await pool.submit(fn, args, kwargs)
