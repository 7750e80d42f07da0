"""What the worker fault tests need besides the e2e fixtures: a worker's ID, freezing and
thawing one worker process (SIGSTOP/SIGCONT), the executions leased to a worker, SQL against
the server's database, and reading the logs the assertions look at."""

from __future__ import annotations

import os
import re
import signal
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from tests.e2e.conftest import Server, Worker
from tests.faults import checker

FINAL = ("completed", "failed", "cancelled")


def worker_id(worker: Worker) -> str:
    """The ID the server gave the worker (it logs it once registered)."""
    match = re.search(r"worker (\S+) serving", worker.proc.log())
    assert match, worker.proc.log()
    return match.group(1)


def freeze(worker: Worker) -> float:
    """SIGSTOP the worker; returns when (unix time)."""
    at = time.time()
    os.kill(worker.proc.pid, signal.SIGSTOP)
    return at


def thaw(worker: Worker) -> float:
    at = time.time()
    os.kill(worker.proc.pid, signal.SIGCONT)
    return at


def sql(server: Server, statement: str) -> list[tuple[Any, ...]]:
    return checker.query(server.database_url, statement)


def running_on(server: Server, wid: str) -> list[tuple[str, str, int]]:
    """(id, workflow_id, attempt) of the executions leased to worker `wid` now."""
    rows = sql(
        server,
        "SELECT id, workflow_id, attempt FROM executions "
        f"WHERE status = 'running' AND worker_id = '{wid}'",
    )
    return [(str(r[0]), str(r[1]), int(r[2])) for r in rows]


def finished_children(server: Server, parent_id: str) -> int:
    rows = sql(
        server,
        f"SELECT count(*) FROM executions WHERE parent_execution_id = '{parent_id}' "
        f"AND status IN ({', '.join(repr(s) for s in FINAL)})",
    )
    return int(rows[0][0])


def log_lines(log: Path) -> list[str]:
    return log.read_text().splitlines() if log.exists() else []


_LOG_TIME = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) ")


def logged_at(line: str) -> float | None:
    """The unix time of a line of a worker's log (logging's asctime: local time, ms)."""
    match = _LOG_TIME.match(line)
    if match is None:
        return None
    return datetime.strptime(match.group(1), "%Y-%m-%d %H:%M:%S,%f").timestamp()
