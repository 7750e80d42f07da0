"""The checker of the fault tests (issue 4): reads the side-effect log the fault workflows
append to (tests/faults/apps/fanout.py) and the database the server used, and holds the run to
the engine's promises:

- every workflow finished;
- every step recorded before the first fault ran exactly once, the others at most once more;
- concurrency limits never exceeded;
- exactly N children of the batch, none missing, none duplicated;
- the aggregate complete and in order (the test checks the parent's result).
"""

from __future__ import annotations

import sqlite3
from collections import Counter
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests import pg


@dataclass
class Run:
    execution_id: str
    step_key: str
    kind: str  # start | end
    at: float
    pid: int


@dataclass
class Report:
    """What the checker counted, for the closing note of the issue."""

    bodies: int = 0  # step body starts in the log
    steps: int = 0  # distinct (execution, step) pairs that ran
    reran: int = 0  # pairs whose body ran twice
    recorded_before_fault: int = 0
    peak_concurrency: int = 0
    children: int = 0
    executions: int = 0
    notes: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        return (
            f"{self.bodies} step bodies for {self.steps} steps ({self.reran} ran twice, "
            f"{self.recorded_before_fault} recorded before the first fault ran once); "
            f"{self.children} children; {self.executions} executions all final; "
            f"peak concurrency {self.peak_concurrency}"
        )


def read_log(path: Path) -> list[Run]:
    runs = []
    for line in path.read_text().splitlines():
        execution_id, step_key, kind, at, pid = line.split()
        runs.append(Run(execution_id, step_key, kind, float(at), int(pid)))
    return runs


def query(database_url: str, sql: str) -> list[tuple[Any, ...]]:
    if database_url.startswith("sqlite:///"):
        path = database_url.removeprefix("sqlite:///")
        with closing(sqlite3.connect(path)) as conn:
            return conn.execute(sql).fetchall()
    return pg.run_sync(pg.query(database_url, sql))


def peak(runs: list[Run], execution_ids: set[str] | None = None) -> int:
    """Most step bodies running at once (of the given executions). A body whose process was
    killed before it ended has no end line: it counts until that process's last line."""
    last_seen: dict[int, float] = {}
    for r in runs:
        last_seen[r.pid] = max(last_seen.get(r.pid, 0.0), r.at)
    open_runs: dict[tuple[str, str, int], float] = {}
    events: list[tuple[float, int]] = []
    for r in runs:
        if execution_ids is not None and r.execution_id not in execution_ids:
            continue
        key = (r.execution_id, r.step_key, r.pid)
        if r.kind == "start":
            open_runs[key] = r.at
            events.append((r.at, 1))
        elif open_runs.pop(key, None) is not None:
            events.append((r.at, -1))
    for (_, _, pid), _started in open_runs.items():
        events.append((last_seen[pid], -1))
    running = best = 0
    for _, delta in sorted(events):  # at equal times an end (-1) sorts before a start
        running += delta
        best = max(best, running)
    return best


def check(
    log: Path,
    database_url: str,
    first_fault_at: float | None,
    parent_id: str | None = None,
    children_step: str = "children",
    n_children: int | None = None,
    limit: tuple[str, int] | None = None,
) -> Report:
    """Assert the promises above; `limit` is (workflow_id, concurrency limit)."""
    report = Report()
    runs = read_log(log)
    starts = Counter((r.execution_id, r.step_key) for r in runs if r.kind == "start")
    report.bodies = sum(starts.values())
    report.steps = len(starts)
    report.reran = sum(1 for c in starts.values() if c == 2)
    too_many = {k: c for k, c in starts.items() if c > 2}
    assert not too_many, f"step bodies ran more than twice: {too_many}"

    # Every workflow finished.
    statuses = query(database_url, "SELECT id, status FROM executions")
    report.executions = len(statuses)
    unfinished = [(i, s) for i, s in statuses if s not in ("completed", "failed", "cancelled")]
    assert not unfinished, f"executions not finished: {unfinished[:10]}"

    # Steps recorded before the first fault ran exactly once.
    recorded = query(database_url, "SELECT execution_id, step_key, created_at FROM steps")
    recorded_keys = {(e, k) for e, k, _ in recorded}
    if first_fault_at is not None:
        before = [(e, k) for e, k, at in recorded if at < first_fault_at and (e, k) in starts]
        report.recorded_before_fault = len(before)
        again = [key for key in before if starts[key] != 1]
        assert not again, f"steps recorded before the fault ran again: {again[:10]}"
    # Every step that ran is recorded (nothing was lost).
    lost = [key for key in starts if key not in recorded_keys]
    assert not lost, f"steps that ran but are not recorded: {lost[:10]}"

    if parent_id is not None and n_children is not None:
        rows = query(
            database_url,
            "SELECT id, batch_index, status FROM executions "
            f"WHERE parent_execution_id = '{parent_id}' AND parent_step_key = '{children_step}'",
        )
        report.children = len(rows)
        indexes = sorted(r[1] for r in rows)
        assert indexes == list(range(n_children)), "children missing or duplicated"
        assert {r[2] for r in rows} <= {"completed", "failed"}, "a child is not final"

    if limit is not None:
        workflow_id, most = limit
        ids = {
            r[0]
            for r in query(
                database_url, f"SELECT id FROM executions WHERE workflow_id = '{workflow_id}'"
            )
        }
        report.peak_concurrency = peak(runs, ids)
        assert report.peak_concurrency <= most, (
            f"{report.peak_concurrency} bodies of {workflow_id} ran at once; the limit is {most}"
        )
    else:
        report.peak_concurrency = peak(runs)
    return report
