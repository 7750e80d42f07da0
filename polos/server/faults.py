"""Fail points for the crash tests (tests/faults/): `POLOS_FAIL_POINTS="point:n,..."` makes the
server kill itself with SIGKILL — no cleanup, like a power cut of the process — the n-th time
it reaches `point`. Without the variable (production) every check is one falsy test.

Points:
- `children_inserted`: inside the unit that submits a batch of children, after the insert and
  before the commit;
- `report_committed`: after a report's transaction committed, before the worker hears back;
- `parent_woken`: inside the unit that wakes a parent (its last child finished), before commit;
- `claim_committed`: after a claim committed, before the worker receives the executions.
"""

from __future__ import annotations

import logging
import os
import signal

log = logging.getLogger("polos.server.faults")


def _parse(spec: str) -> dict[str, int]:
    points: dict[str, int] = {}
    for part in spec.split(","):
        name, _, count = part.strip().partition(":")
        if name:
            points[name] = int(count or 1)
    return points


_points = _parse(os.environ.get("POLOS_FAIL_POINTS", ""))


def fail_point(name: str) -> None:
    if not _points or name not in _points:
        return
    _points[name] -= 1
    if _points[name] <= 0:
        log.warning("fail point %s reached: killing the server (SIGKILL)", name)
        for handler in logging.getLogger().handlers:
            handler.flush()
        os.kill(os.getpid(), signal.SIGKILL)
