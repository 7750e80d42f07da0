"""Fault test 4 of issue 4: a stalled worker. The only worker of a limited queue (limit 3) is
frozen (SIGSTOP) for 5 s — longer than its 2 s lease — in the middle of its children's step
bodies; another worker starts meanwhile and takes over when the leases run out; then the
frozen worker is thawed (SIGCONT) and carries on as if nothing happened.

What must hold:
- what the stalled worker reports for attempts that lost their lease is refused (fencing): the
  server logs "refused a stale report", and no refused attempt is the one that finished its
  execution; or the worker drops such an attempt before reporting, told by its first
  heartbeat after the stall (which comes first is a race; tests/e2e/test_fencing.py shows the
  refusal itself deterministically);
- every step body ran at most twice, every execution completed once, attempt counts show the
  take-over;
- the queue's limit holds for every attempt that owned its execution. A stalled body is not
  one: after the lease ran out the engine re-queued its execution and freed its slot, by
  design, while the frozen process still had the body in the middle. Thawed, that body (and
  at most one more step body per stale attempt, whose previous record was acknowledged before
  the freeze) runs beside the replacement's, over the limit. So do the first step bodies of
  executions handed, while it was frozen, to the claim the worker had parked on the server
  (the slots its lost leases freed can go to that claim; those leases run out in turn). The
  limit is checked on the log without the bodies of attempts the stalled worker abandoned (it
  logs each abandonment when the server refuses the attempt's report); the test also prints
  the peak with them.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections import Counter
from pathlib import Path

import polos
from tests.e2e.conftest import ServerFactory, WorkerFactory, wait_until
from tests.faults import checker
from tests.faults.harness import (
    finished_children,
    freeze,
    log_lines,
    logged_at,
    running_on,
    sql,
    thaw,
    worker_id,
)

MODULE = "tests.faults.apps.fanout"
CHILD = "fault_limited_child"
LIMIT = 3
N = 40
LEASE = 2.0
STALL = 5.0
SECONDS = 0.2  # per step body: the freeze lands in the middle of bodies
TIMEOUT = 45.0

_REFUSED = re.compile(r"refused a stale report for execution (\S+) attempt (\d+) from worker (\S+)")
# A stale attempt is abandoned when the server refuses its report, or earlier, when the
# worker's first heartbeat after the stall names the executions whose leases it lost.
_ABANDONED = re.compile(
    r"abandoning execution (\S+) attempt \d+: "
    r"(?:server answered stale|no longer this worker's)"
)


def _open_bodies(log: Path, pid: int) -> int:
    """Step bodies of process `pid` started and not ended."""
    open_: set[tuple[str, str]] = set()
    for line in log_lines(log):
        execution_id, step_key, kind, _, who = line.split()
        if int(who) != pid:
            continue
        if kind == "start":
            open_.add((execution_id, step_key))
        else:
            open_.discard((execution_id, step_key))
    return len(open_)


def _without_stale_bodies(
    runs: list[checker.Run], pid: int, abandoned: dict[str, list[float]]
) -> list[checker.Run]:
    """The runs minus the bodies of the stalled worker's abandoned attempts: a body of process
    `pid` for execution E that started before `pid` abandoned an attempt of E. The worker's log
    has milliseconds: 1 ms of slack (a new attempt of E in that process starts a body only after
    a claim, a round trip later)."""
    stale_bodies = {
        (r.execution_id, r.step_key, r.at)
        for r in runs
        if r.pid == pid
        and r.kind == "start"
        and any(r.at <= at + 0.001 for at in abandoned.get(r.execution_id, []))
    }
    kept = []
    open_stale: set[tuple[str, str]] = set()
    for r in runs:
        key = (r.execution_id, r.step_key)
        if r.pid == pid and r.kind == "start" and (*key, r.at) in stale_bodies:
            open_stale.add(key)
            continue
        if r.pid == pid and r.kind == "end" and key in open_stale:
            open_stale.discard(key)
            continue
        kept.append(r)
    return kept


def _write(runs: list[checker.Run], path: Path) -> Path:
    path.write_text(
        "".join(f"{r.execution_id} {r.step_key} {r.kind} {r.at:.6f} {r.pid}\n" for r in runs)
    )
    return path


async def test_a_stalled_worker_is_fenced_off(
    start_server: ServerFactory, start_worker: WorkerFactory, tmp_path: Path
) -> None:
    began = time.monotonic()
    server = start_server(lease_seconds=LEASE)
    start_worker(server, MODULE, workflows=["fault_parent"])
    stalled = start_worker(server, MODULE, workflows=[CHILD], capacity=5)
    stalled_id, stalled_pid = worker_id(stalled), stalled.proc.pid
    log = tmp_path / "side-effects.log"

    async with polos.PolosClient(api_url=server.url) as client:
        handle = await client.invoke(
            "fault_parent", {"log": str(log), "n": N, "child": CHILD, "seconds": SECONDS}
        )
        parent_id = handle.id
        wait_until(lambda: finished_children(server, parent_id) >= 6, TIMEOUT, "the first children")

        def frozen_mid_body() -> tuple[float, list[str]] | None:
            """Freeze the worker while it holds the queue's every slot, a body running."""
            if _open_bodies(log, stalled_pid) == 0:
                return None
            at = freeze(stalled)
            held = [e for e, _, _ in running_on(server, stalled_id)]
            if len(held) == LIMIT and _open_bodies(log, stalled_pid) > 0:
                return at, held
            thaw(stalled)  # between two children: a pause of milliseconds, not a stall
            return None

        stopped_at, held = wait_until(frozen_mid_body, TIMEOUT, "a body on the worker")
        start_worker(server, MODULE, workflows=[CHILD], capacity=5)  # the replacement
        # The leases run out: the server re-queues what the stalled worker held.
        wait_until(
            lambda: not {e for e, _, _ in running_on(server, stalled_id)} & set(held),
            TIMEOUT,
            "the stalled worker's leases to run out",
        )
        # The length of the stall is the fault itself, not a wait for some state.
        await asyncio.sleep(max(0.0, stopped_at + STALL - time.time()))
        resumed_at = thaw(stalled)

        row = await client.wait_for_execution(parent_id, timeout=TIMEOUT)
        assert row["status"] == "completed", row
        assert row["result"]["indices"] == list(range(N))
        assert row["result"]["doubles"] == [2 * i for i in range(N)]
        assert row["result"]["errors"] == []

    # Stopped cleanly, the stalled worker finishes what it still had (its stale attempts
    # report, and are refused) before it leaves: after that its log and the server's are
    # complete.
    assert stalled.stop() == 0
    assert server.proc is not None
    refused = [
        (m.group(1), int(m.group(2)))
        for m in _REFUSED.finditer(server.proc.log())
        if m.group(3) == stalled_id
    ]
    # Whether any stale report reaches the server at all is a race after the thaw (below):
    # the heartbeat's answer may make the worker drop every stale attempt first. That the
    # server refuses a stale report is shown deterministically by tests/e2e/test_fencing.py;
    # here every taken-over attempt must be fenced off by one of the two.
    abandoned: dict[str, list[float]] = {}
    for line in stalled.proc.log().splitlines():
        match = _ABANDONED.search(line)
        at = logged_at(line)
        if match and at is not None:
            abandoned.setdefault(match.group(1), []).append(at)
    # The worker abandoned every attempt the server refused. (It may abandon more: an attempt
    # whose completion reached the server just before the freeze is no longer the worker's
    # either, and its first heartbeat after the stall says so.)
    assert set(abandoned) >= {e for e, _ in refused}

    # Every execution completed, by an attempt that was not refused.
    rows = {
        str(r[0]): (str(r[1]), int(r[2]), int(r[3]))
        for r in sql(
            server,
            "SELECT id, status, attempt, retry_count FROM executions "
            f"WHERE parent_execution_id = '{parent_id}'",
        )
    }
    assert len(rows) == N
    assert {status for status, _, _ in rows.values()} == {"completed"}
    assert {retries for _, _, retries in rows.values()} == {0}
    for execution_id, attempt in refused:
        assert rows[execution_id][1] > attempt, (execution_id, attempt, rows[execution_id])
    # What the stalled worker held was taken over (barring a completion already on its way to
    # the server when the worker froze); the stalled worker's parked claim may also have been
    # handed work while it was frozen, which is retried too (a third attempt at most).
    taken_over = [e for e in held if rows[e][1] >= 2]
    assert taken_over, "nothing the stalled worker held was taken over"
    # Each stale attempt of a taken-over execution was fenced off: its report was refused, or
    # the worker dropped it first because its first heartbeat after the stall said the
    # execution was no longer its own (which of the two comes first after the thaw is a race
    # between that heartbeat's answer and the bodies' threads; either way nothing of the
    # stale attempt was recorded, which the checks above and below show).
    assert {e for e, _ in refused} | set(abandoned) >= set(taken_over)
    assert max(attempt for _, attempt, _ in rows.values()) <= 3

    runs = checker.read_log(log)
    fresh = _without_stale_bodies(runs, stalled_pid, abandoned)
    report = checker.check(
        log, server.database_url, first_fault_at=stopped_at, parent_id=parent_id, n_children=N
    )
    # Only executions the stalled worker had a stale attempt of ran a body twice.
    starts = Counter((r.execution_id, r.step_key) for r in runs if r.kind == "start")
    twice = {e for (e, _), c in starts.items() if c == 2}
    assert twice <= set(abandoned), twice - set(abandoned)

    limit_report = checker.check(
        _write(fresh, tmp_path / "without-stale-bodies.log"),
        server.database_url,
        first_fault_at=stopped_at,
        parent_id=parent_id,
        n_children=N,
        limit=(CHILD, LIMIT),
    )
    with_stale = checker.peak(runs, set(rows))
    excluded = sum(1 for r in runs if r.kind == "start") - sum(
        1 for r in fresh if r.kind == "start"
    )
    handed_while_frozen = {e for e, _ in refused} - set(held)
    print(
        f"\n[stall] 1 stall of {resumed_at - stopped_at:.1f} s (lease {LEASE} s) holding "
        f"{len(held)} children ({len(taken_over)} claimed again after their leases ran out); "
        f"{len(handed_while_frozen)} more handed to its parked claim while frozen; "
        f"{len(refused)} stale reports refused, {len(abandoned)} attempts abandoned; "
        f"{excluded} bodies of abandoned attempts; peak with them {with_stale}, without "
        f"{limit_report.peak_concurrency} (limit {LIMIT}); {time.monotonic() - began:.1f} s"
        f"\n[stall] {report}"
    )
