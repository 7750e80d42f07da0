"""Sampling a benchmark's processes (re-exported by bench/harness.py): peak RSS and CPU time per
role (server, workers, client, and a local PostgreSQL's backends), from a thread.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Mapping, Sequence

import psutil
from harness_base import MIB
from harness_pg import PgBackends


class RssSampler:
    """Peak RSS per role (summed over the role's processes), sampled in a thread; with
    `pg_backends`, also the CPU time of the PostgreSQL backends (role `postgres`, no RSS: their
    shared buffers would be counted once per backend)."""

    def __init__(
        self,
        roles: Mapping[str, Sequence[int]],
        interval: float = 0.05,
        pg_backends: PgBackends | None = None,
    ) -> None:
        self._procs: dict[str, list[psutil.Process]] = {
            role: [psutil.Process(pid) for pid in pids] for role, pids in roles.items()
        }
        self.interval = interval
        self.pg_backends = pg_backends
        self._peak: dict[str, int] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="rss-sampler", daemon=True)

    def start(self) -> RssSampler:
        if self.pg_backends is not None:
            self.pg_backends.refresh()
        self._thread.start()
        return self

    def sample(self) -> None:
        current: dict[str, int] = {}
        for role, procs in self._procs.items():
            total = 0
            for proc in procs:
                with contextlib.suppress(psutil.Error):
                    total += proc.memory_info().rss
            current[role] = total
        with self._lock:
            for role, rss in current.items():
                self._peak[role] = max(self._peak.get(role, 0), rss)

    def _loop(self) -> None:
        ticks = 0
        while not self._stop.wait(self.interval):
            self.sample()
            ticks += 1
            if self.pg_backends is not None and ticks % 10 == 0:  # new backends, dying ones
                self.pg_backends.refresh()

    def reset(self) -> None:
        self.sample()  # outside the lock
        with self._lock:
            self._peak = {}
        self.sample()

    def peak_mib(self) -> dict[str, float]:
        self.sample()
        with self._lock:
            return {role: round(rss / MIB, 1) for role, rss in self._peak.items()}

    def cpu_seconds(self) -> dict[str, float]:
        """CPU time (user + system) used so far by each role."""
        out: dict[str, float] = {}
        for role, procs in self._procs.items():
            total = 0.0
            for proc in procs:
                with contextlib.suppress(psutil.Error):
                    t = proc.cpu_times()
                    total += t.user + t.system
            out[role] = total
        if self.pg_backends is not None:
            self.pg_backends.refresh()
            out["postgres"] = self.pg_backends.read()
        return out

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=1.0)


def cpu_delta(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    return {role: round(after[role] - before.get(role, 0.0), 2) for role in after}
