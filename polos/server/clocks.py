"""The server's time. Every timestamp the server writes and every timer it fires reads
`Clock.now()`, so tests (and `polos.testing`) can move time forward instead of waiting."""

from __future__ import annotations

import time
from collections.abc import Callable


class Clock:
    def __init__(self) -> None:
        self.offset = 0.0
        self._listeners: list[Callable[[float], None]] = []

    def now(self) -> float:
        return time.time() + self.offset

    def on_advance(self, listener: Callable[[float], None]) -> None:
        self._listeners.append(listener)

    def advance(self, seconds: float) -> None:
        """Jump forward (`--test-clock` only): timers and schedules due by then fire."""
        if seconds < 0:
            raise ValueError("the clock only moves forward")
        self.offset += seconds
        for listener in self._listeners:
            listener(seconds)
