"""Helpers of the outage tests (test_server_crash.py, test_postgres_restarts.py): the processes
of one test (stopped at its end, their logs printed when it fails), a database per test, and
waiting for a server to die at a fail point.

Context managers rather than fixtures, so that they do not collide with fixtures other fault
tests define."""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from collections.abc import Iterator
from pathlib import Path

from tests import pg
from tests.e2e.conftest import Processes, Server, check_server_log

CRASH_DEADLINE = 60.0


@contextlib.contextmanager
def processes(tmp: Path) -> Iterator[Processes]:
    """Every process one test starts; all stopped at the end, their logs printed (pytest
    shows them) if the test fails."""
    logs = tmp / "logs"
    logs.mkdir(exist_ok=True)
    procs = Processes(logs)
    try:
        yield procs
    except BaseException:
        for proc in procs.all:
            pid = proc.popen.pid if proc.popen else "-"
            print(f"===== {proc.name} (pid {pid}) {proc.log_path}\n{proc.log()[-20000:]}")
        raise
    finally:
        procs.stop_all()


@contextlib.contextmanager
def database(backend: str, tmp: Path) -> Iterator[str]:
    """An empty database of `backend` (PostgreSQL: on the shared test server, dropped at the
    end)."""
    if backend == "sqlite":
        yield f"sqlite:///{tmp / 'polos.db'}"
        return
    url = pg.create_database("polos_faults")
    try:
        yield url
    finally:
        pg.drop_database(url)


async def wait_for_crash(server: Server, point: str | None = None) -> float:
    """Until the server killed itself (at the fail point `point`); returns when that was
    noticed. Nothing can be committed between the crash and that moment."""
    proc = server.proc
    assert proc is not None
    deadline = time.monotonic() + CRASH_DEADLINE
    while proc.alive():
        if time.monotonic() > deadline:
            raise AssertionError(f"the server did not crash at {point} in {CRASH_DEADLINE} s")
        await asyncio.sleep(0.01)
    crashed_at = time.time()
    assert proc.popen is not None and proc.popen.returncode == -9, proc.popen
    if point is not None:
        assert f"fail point {point} reached" in proc.log(), proc.log()[-5000:]
    # Killed, not failed: the log of the crashed process holds no traceback either.
    check_server_log(proc)
    return crashed_at


def ends(log: Path) -> int:
    """Step bodies that ended so far (lines of the side-effect log)."""
    try:
        return log.read_text().count(" end ")
    except FileNotFoundError:
        return 0


def worker_id(log: str) -> str:
    """The ID a worker process logged when it registered."""
    found = re.search(r"worker (\S+) serving", log)
    assert found, log[-5000:]
    return found.group(1)
