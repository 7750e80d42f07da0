"""The worker's one channel to the server for step records and outcomes.

Everything an attempt records goes through `submit`, in order. One request is in flight at a
time; whatever was submitted meanwhile goes in the next request, with the items of one
execution attempt merged into one (group commit on the worker side). Per attempt, the order of
records is the order of submission, which is what rule 3 of design.md needs.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence

from polos import protocol

log = logging.getLogger("polos.worker.reporter")

# Items per request; the rest waits for the next one.
MAX_ITEMS_PER_REQUEST = 2000

SendReports = Callable[[Sequence[protocol.ReportItem]], Awaitable[list[protocol.ReportItemResult]]]


def _merge(first: protocol.ReportItem, second: protocol.ReportItem) -> protocol.ReportItem:
    return protocol.ReportItem(
        execution_id=first.execution_id,
        attempt=first.attempt,
        steps=[*first.steps, *second.steps],
        children=[*first.children, *second.children],
        events=[*first.events, *second.events],
        outcome=second.outcome or first.outcome,
    )


class Reporter:
    def __init__(self, send: SendReports) -> None:
        self._send = send
        self._queue: list[
            tuple[protocol.ReportItem, asyncio.Future[protocol.ReportItemResult]]
        ] = []
        self._wakeup = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._task: asyncio.Task[None] | None = None
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
        for _, fut in self._queue:
            if not fut.done():
                fut.cancel()
        self._queue.clear()

    def submit(self, item: protocol.ReportItem) -> asyncio.Future[protocol.ReportItemResult]:
        fut: asyncio.Future[protocol.ReportItemResult] = asyncio.get_running_loop().create_future()
        self._queue.append((item, fut))
        self._idle.clear()
        self._wakeup.set()
        return fut

    async def drain(self) -> None:
        """Wait until everything submitted so far has been answered."""
        await self._idle.wait()

    async def _loop(self) -> None:
        while True:
            if not self._queue:
                self._idle.set()
                await self._wakeup.wait()
                self._wakeup.clear()
                continue
            batch = self._take()
            items = [item for item, _ in batch]
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
                continue
            self.requests += 1
            for (_, futures), result in zip(batch, results, strict=True):
                for fut in futures:
                    if not fut.done():
                        fut.set_result(result)

    def _take(
        self,
    ) -> list[tuple[protocol.ReportItem, list[asyncio.Future[protocol.ReportItemResult]]]]:
        groups: dict[
            tuple[str, int],
            tuple[protocol.ReportItem, list[asyncio.Future[protocol.ReportItemResult]]],
        ] = {}
        taken = 0
        for item, fut in self._queue:
            key = (item.execution_id, item.attempt)
            group = groups.get(key)
            if group is None:
                if len(groups) >= MAX_ITEMS_PER_REQUEST:
                    break
                groups[key] = (item, [fut])
            else:
                groups[key] = (_merge(group[0], item), [*group[1], fut])
            taken += 1
        del self._queue[:taken]
        return list(groups.values())
