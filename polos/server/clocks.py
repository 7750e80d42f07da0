"""The server's time. Every timestamp the server writes and every timer it fires reads
`Clock.now()`, so tests (and `polos.testing`) can move time forward instead of waiting."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable


class Clock:
    def __init__(self) -> None:
        self.offset = 0.0
        self._listeners: list[Callable[[float], None]] = []
        # Recent jumps of the test clock: (time.monotonic() when made, seconds).
        self._jumps: deque[tuple[float, float]] = deque()

    def now(self) -> float:
        return time.time() + self.offset

    def lease_now(self, window: float) -> float:
        """The time leases are judged by: `now()` without the jumps made in the last `window`
        seconds of real time. A lease granted (or renewed) around a jump may have been computed
        from the time before it and committed after the jump moved the stored leases along;
        its worker renews it against the new time within one lease period, so a jump alone
        never expires a lease."""
        cutoff = time.monotonic() - window
        while self._jumps and self._jumps[0][0] < cutoff:
            self._jumps.popleft()
        return self.now() - sum(seconds for _, seconds in self._jumps)

    def on_advance(self, listener: Callable[[float], None]) -> None:
        self._listeners.append(listener)

    def advance(self, seconds: float) -> None:
        """Jump forward (`--test-clock` only): timers and schedules due by then fire."""
        if seconds < 0:
            raise ValueError("the clock only moves forward")
        self.offset += seconds
        self._jumps.append((time.monotonic(), seconds))
        for listener in self._listeners:
            listener(seconds)
