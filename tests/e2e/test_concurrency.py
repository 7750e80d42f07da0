"""Two worker processes share a queue whose concurrency limit is 2: never more than two
executions of it run at once, across both workers."""

from __future__ import annotations

from pathlib import Path

import polos
from polos.types.types import BatchWorkflowInput
from tests.e2e.conftest import ServerFactory, WorkerFactory, wait_until

TIMEOUT = 60.0


def max_overlap(lines: list[str]) -> int:
    events = []
    for line in lines:
        kind, stamp, *_ = line.split()
        # At equal times an end counts first: the slot is freed before the next one starts.
        events.append((float(stamp), 0 if kind == "end" else 1))
    running = peak = 0
    for _, kind in sorted(events):
        running += 1 if kind == 1 else -1
        peak = max(peak, running)
    return peak


async def test_queue_limit_holds_across_two_workers(
    start_server: ServerFactory, start_worker: WorkerFactory, tmp_path: Path
) -> None:
    """Both workers take part by construction, not by luck of which parked claim wins a freed
    slot (no fairness between claimers is promised): the first worker can run one execution
    at a time and is running one when the second, which could run five, starts. From then on
    the second worker asks for more than the queue's free slot, and only the limit, held
    across the two processes, keeps it at what is left."""
    server = start_server()
    first = start_worker(server, "tests.e2e.apps.engine", workflows=["limited"], capacity=1)
    log = tmp_path / "limited.log"
    n = 12
    async with polos.PolosClient(api_url=server.url) as client:
        handles = await client.batch_invoke(
            [
                # 12 x 0.4 s one at a time on the first worker: the second one's start (about
                # a second) is well inside that.
                BatchWorkflowInput(id="limited", payload={"i": i, "seconds": 0.4, "log": str(log)})
                for i in range(n)
            ]
        )
        wait_until(lambda: log.exists() and log.read_text().startswith("start"), TIMEOUT, "a start")
        second = start_worker(server, "tests.e2e.apps.engine", workflows=["limited"], capacity=5)
        for i, handle in enumerate(handles):
            row = await client.wait_for_execution(handle.id, timeout=TIMEOUT)
            assert row["status"] == "completed", row
            assert row["result"] == {"i": i}
            assert row["queue_name"] == "limited_q"

    lines = log.read_text().splitlines()
    assert len(lines) == 2 * n  # each execution ran once: one start and one end
    assert sorted(int(line.split()[2]) for line in lines if line.startswith("start")) == list(
        range(n)
    )
    assert max_overlap(lines) <= 2
    assert max_overlap(lines) == 2  # the limit is 2, not 1: both slots were used
    pids = {int(line.split()[3]) for line in lines}
    # Both workers took part, so the limit held across processes, not inside one.
    assert pids == {first.proc.pid, second.proc.pid}


async def test_worker_capacity_bounds_running_executions(
    start_server: ServerFactory, start_worker: WorkerFactory, tmp_path: Path
) -> None:
    """A worker claims in cohorts of half its capacity and frees a slot when an execution's
    last report is sent: still never more than `max_concurrent_workflows` run at once, and
    every slot gets used."""
    server = start_server()
    start_worker(server, "tests.e2e.apps.engine", workflows=["occupant"], capacity=3)
    log = tmp_path / "occupant.log"
    n = 15
    async with polos.PolosClient(api_url=server.url) as client:
        handles = await client.batch_invoke(
            [
                BatchWorkflowInput(
                    id="occupant", payload={"i": i, "seconds": 0.15, "log": str(log)}
                )
                for i in range(n)
            ]
        )
        for i, handle in enumerate(handles):
            row = await client.wait_for_execution(handle.id, timeout=TIMEOUT)
            assert row["status"] == "completed", row
            assert row["result"] == {"i": i}

    lines = log.read_text().splitlines()
    assert len(lines) == 2 * n
    assert max_overlap(lines) <= 3
    assert max_overlap(lines) == 3  # a claim asks for at most 2; a second one fills the rest
