"""The time workflow code gets from `ctx.step` (`now`, `wait_until`, the end of a short wait).

Real time, plus an offset that `polos.testing.Environment` moves together with its in-process
server's test clock: after `await env.advance(days=3)`, `ctx.step.now()` in a workflow is three
days later too, and `wait_until` targets computed from it are judged against the same clock
as the server's timers. The offset is process-wide (one environment at a time) and 0 outside
test environments.
"""

from __future__ import annotations

import time

_offset = 0.0


def now() -> float:
    """Unix seconds as the workflows of this process should see them."""
    return time.time() + _offset


def offset() -> float:
    return _offset


def set_offset(seconds: float) -> None:
    global _offset
    _offset = float(seconds)
