"""In-process wake-ups: "work is ready in project P" and "execution E is final".

Long-polls park on these instead of polling the database on a timer. They are hints: a woken
request always re-reads the database, so a spurious wake-up costs one query and a missed one
costs nothing but the long-poll's own timeout. With PostgreSQL (issue 3), `LISTEN/NOTIFY`
feeds the same calls so that replicas wake each other.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass

from polos.server.clocks import Clock
from polos.store.metrics_ops import Observations


class Signals:
    def __init__(self, clock: Clock | None = None) -> None:
        self.clock = clock or Clock()
        self._work: dict[str, asyncio.Event] = {}
        self._final: dict[str, _Watch] = {}
        self._topics: dict[tuple[str, str], asyncio.Event] = {}
        # Set when a timer is added or the clock moves: the clock loop looks again at once.
        self.clock_kick = asyncio.Event()
        self.closing = False
        # Where what committed units did goes (the server's metrics; polos/server/metrics.py).
        self.observer: Callable[[Observations], None] | None = None

    def close(self) -> None:
        """Wake every parked long-poll and answer later ones at once: the server is stopping,
        and a graceful shutdown waits for requests in flight (a long-poll lasts up to 60 s)."""
        self.closing = True
        self.wake_everyone()

    # -- work --------------------------------------------------------------------------

    def work_event(self, project_id: str) -> asyncio.Event:
        """Take this *before* looking for work, then wait on it if none was found: a
        submission that lands in between has set it already."""
        if self.closing:
            return _already_set()
        event = self._work.get(project_id)
        if event is None:
            event = self._work[project_id] = asyncio.Event()
        return event

    def work_available(self, project_id: str) -> None:
        event = self._work.pop(project_id, None)
        if event is not None:
            event.set()

    def work_available_at(self, project_id: str, when: float) -> None:
        """Wake claimers of `project_id` at unix time `when` (a delayed retry becomes due)."""
        loop = asyncio.get_running_loop()

        def fire() -> None:
            # Loop timers may fire early (uvloop's have millisecond resolution): a claim that
            # ran before `when` would find nothing due and park for its whole long-poll.
            remaining = when - self.clock.now()
            if remaining > 0:
                loop.call_later(remaining + 0.001, fire)
            else:
                self.work_available(project_id)

        loop.call_later(max(0.0, when - self.clock.now()), fire)

    # -- topics (event streams) and timers -----------------------------------------------

    def topic_event(self, project_id: str, topic: str) -> asyncio.Event:
        """Take this before reading a topic, then wait on it when there was nothing new."""
        event = self._topics.get((project_id, topic))
        if event is None:
            event = self._topics[(project_id, topic)] = asyncio.Event()
        return event

    def topic_published(self, project_id: str, topic: str) -> None:
        event = self._topics.pop((project_id, topic), None)
        if event is not None:
            event.set()

    def timer_added(self, fire_at: float) -> None:
        if fire_at <= self.clock.now() + 1.0:
            self.clock_kick.set()

    def wake_everyone(self) -> None:
        """Wake every parked long-poll so that it looks again (notifications may have been
        missed, or as a periodic safety net)."""
        for event in self._work.values():
            event.set()
        self._work.clear()
        for watch in self._final.values():
            watch.event.set()
        self._final.clear()
        for event in self._topics.values():
            event.set()
        self._topics.clear()

    # -- metrics -----------------------------------------------------------------------

    def observed(self, observations: Observations) -> None:
        if self.observer is not None:
            self.observer(observations)

    # -- final statuses ----------------------------------------------------------------

    def watch_final(self, execution_id: str) -> asyncio.Event:
        """Take this before reading the status; give it back with `unwatch_final`."""
        if self.closing:
            return _already_set()
        entry = self._final.get(execution_id)
        if entry is None:
            entry = self._final[execution_id] = _Watch(asyncio.Event())
        entry.waiters += 1
        return entry.event

    def unwatch_final(self, execution_id: str, event: asyncio.Event) -> None:
        entry = self._final.get(execution_id)
        if entry is not None and entry.event is event:
            entry.waiters -= 1
            if entry.waiters <= 0:
                del self._final[execution_id]

    def execution_final(self, execution_id: str) -> None:
        entry = self._final.pop(execution_id, None)
        if entry is not None:
            entry.event.set()


def _already_set() -> asyncio.Event:
    event = asyncio.Event()
    event.set()
    return event


@dataclass(slots=True)
class _Watch:
    event: asyncio.Event
    waiters: int = 0


async def wait_event(event: asyncio.Event, timeout: float) -> bool:
    if event.is_set():
        return True
    if timeout <= 0:
        return False
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(timeout):
            await event.wait()
        return True
    return False
