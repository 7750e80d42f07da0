"""The worker's one channel to the server for step records and outcomes.

Everything an attempt records goes through `submit`, in order. Up to `max_in_flight` requests
(default 2) are in flight at a time, so the server applies one batch while the worker builds
the next; whatever was submitted meanwhile goes in the next request, with the items of one
execution attempt merged into one (group commit on the worker side). An attempt with items in
a request in flight waits for its answer before its later items are sent, so per attempt the
records reach the server in the order of submission, which is what rule 3 of design.md needs.

Items are the worker's plain records (polos/worker/reports.py): merging one into another
extends lists, it builds nothing the size of a model.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence

from polos import protocol
from polos.worker.reports import ReportItem

log = logging.getLogger("polos.worker.reporter")

# Items per request; the rest waits for the next one.
MAX_ITEMS_PER_REQUEST = 2000
# Two requests in flight let the server apply one batch while the worker builds the next:
# +6 % children/s in a 10,000-child fan-out (docs/performance.md); three gained nothing more.
DEFAULT_IN_FLIGHT = 2

SendReports = Callable[[Sequence[ReportItem]], Awaitable[list[protocol.ReportItemResult]]]
# The answer to one submitted item: the server's result for its execution in that request.
Ack = asyncio.Future[protocol.ReportItemResult]


def _copy(item: ReportItem) -> ReportItem:
    """A merge starts from a copy: a submitted item's lists may be its attempt's own (the
    children of a suspension), and are never changed."""
    return ReportItem(
        item.execution_id,
        item.attempt,
        item.steps.copy(),
        item.children.copy(),
        item.events.copy(),
        item.outcome,
    )


def _append(merged: ReportItem, later: ReportItem) -> None:
    """Add a later item of the same attempt to a merge (a copy made by `_copy`), in order."""
    merged.steps.extend(later.steps)
    merged.children.extend(later.children)
    merged.events.extend(later.events)
    if later.outcome is not None:
        merged.outcome = later.outcome


class Reporter:
    def __init__(self, send: SendReports, max_in_flight: int = DEFAULT_IN_FLIGHT) -> None:
        self._send = send
        self._queue: list[tuple[ReportItem, Ack]] = []
        self._wakeup = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._task: asyncio.Task[None] | None = None
        self._max_in_flight = max(1, max_in_flight)
        self._in_flight: set[asyncio.Task[None]] = set()
        # Attempts with items in a request in flight.
        self._busy: set[tuple[str, int]] = set()
        self.requests = 0

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="polos-reporter")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None
        for task in list(self._in_flight):
            task.cancel()
        for _, fut in self._queue:
            if not fut.done():
                fut.cancel()
        self._queue.clear()

    def submit(self, item: ReportItem) -> Ack:
        fut: Ack = asyncio.get_running_loop().create_future()
        self._queue.append((item, fut))
        self._idle.clear()
        self._wakeup.set()
        return fut

    async def drain(self) -> None:
        """Wait until everything submitted so far has been answered."""
        await self._idle.wait()

    async def _loop(self) -> None:
        while True:
            batch = self._take() if len(self._in_flight) < self._max_in_flight else []
            if not batch:
                if not self._queue and not self._in_flight:
                    self._idle.set()
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            task = asyncio.create_task(self._deliver(batch))
            self._in_flight.add(task)
            task.add_done_callback(self._request_done)

    def _request_done(self, task: asyncio.Task[None]) -> None:
        self._in_flight.discard(task)
        self._wakeup.set()

    async def _deliver(self, batch: list[tuple[ReportItem, list[Ack]]]) -> None:
        items = [item for item, _ in batch]
        try:
            try:
                results = await self._send(items)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                # The transport retries outages itself; what reaches us is a refusal.
                log.error("the server refused a report of %d item(s): %s", len(items), exc)
                for _, futures in batch:
                    for fut in futures:
                        if not fut.done():
                            fut.set_exception(exc)
                return
            self.requests += 1
            for (_, futures), result in zip(batch, results, strict=True):
                for fut in futures:
                    if not fut.done():
                        fut.set_result(result)
        finally:
            for item, _ in batch:
                self._busy.discard((item.execution_id, item.attempt))

    def _take(self) -> list[tuple[ReportItem, list[Ack]]]:
        """The next request: queued items merged per attempt, in order, except those of
        attempts with a request in flight (they wait, so that an attempt's records are never
        applied out of order)."""
        groups: dict[tuple[str, int], tuple[ReportItem, list[Ack]]] = {}
        held: set[tuple[str, int]] = set()
        rest: list[tuple[ReportItem, Ack]] = []
        for entry in self._queue:
            item, fut = entry
            key = (item.execution_id, item.attempt)
            if key in self._busy or key in held:
                rest.append(entry)
                continue
            group = groups.get(key)
            if group is None:
                if len(groups) >= MAX_ITEMS_PER_REQUEST:
                    held.add(key)
                    rest.append(entry)
                    continue
                groups[key] = (item, [fut])
                continue
            merged, futures = group
            if len(futures) == 1:  # the first merge: into a copy, not the submitted item
                merged = _copy(merged)
                groups[key] = (merged, futures)
            _append(merged, item)
            futures.append(fut)
        self._queue = rest
        self._busy.update(groups)
        return list(groups.values())
