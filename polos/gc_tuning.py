"""Garbage-collector settings for the server and worker processes.

A fan-out keeps tens of thousands of executions, futures and records alive at once; with
CPython's default thresholds (a young collection every 700 allocations, full ones scanning
everything alive) the collector costs a worker about a quarter of its CPU and the server a
sixth (bench/: N = 10,000, worker CPU 2.8-3.3 s -> 2.2-2.4 s). Reference counting frees almost
everything; the cyclic collector only has to find the rare cycles (tracebacks, mostly), so it
can run far less often:

- `gc.freeze()` once started: modules, classes and settings loaded at start are never scanned;
- thresholds (50,000, 20, 10): a young collection every 50,000 allocations, a full one at most
  every 10 million (and, as always, only once the long-lived objects grew by a quarter).

`POLOS_GC_THRESHOLDS="a,b,c"` sets other thresholds, `POLOS_GC_THRESHOLDS=default` leaves the
collector as Python sets it. A worker runs inside the user's process, so this is applied when
a worker or server starts, not at import.
"""

from __future__ import annotations

import gc
import logging
import os

log = logging.getLogger("polos.gc")

DEFAULT_THRESHOLDS = (50_000, 20, 10)
_applied = False


def tune() -> None:
    """Apply the settings above (once per process)."""
    global _applied
    if _applied:
        return
    _applied = True
    setting = os.environ.get("POLOS_GC_THRESHOLDS", "").strip()
    if setting.lower() == "default":
        return
    thresholds = DEFAULT_THRESHOLDS
    if setting:
        try:
            parsed = tuple(int(x) for x in setting.split(","))
            if len(parsed) != 3 or min(parsed) < 0:
                raise ValueError
            thresholds = (parsed[0], parsed[1], parsed[2])
        except ValueError:
            log.warning(
                "POLOS_GC_THRESHOLDS=%r is not three integers; using %s", setting, thresholds
            )
    gc.collect()
    gc.freeze()
    gc.set_threshold(*thresholds)
