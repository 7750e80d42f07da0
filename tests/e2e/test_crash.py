"""kill -9 of a worker in the middle of a fan-out: its executions go back to the queue when
their lease runs out, a second worker finishes the job, and nothing is missing."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import polos
from polos import protocol
from tests.e2e.conftest import ServerFactory, WorkerFactory, async_wait_until, wait_until

TIMEOUT = 60.0
LEASE = 2.0


def _worker_id(log: str) -> str:
    match = re.search(r"worker (\S+) serving", log)
    assert match, log
    return match.group(1)


async def test_kill_9_worker_mid_fan_out(
    start_server: ServerFactory, start_worker: WorkerFactory, tmp_path: Path
) -> None:
    server = start_server(lease_seconds=LEASE)
    modules = "tests.e2e.apps.engine"
    serves = ["crash_parent", "slow_child"]
    first = start_worker(server, modules, workflows=serves, capacity=10)
    first_id = _worker_id(first.proc.log())
    log = tmp_path / "slow.log"
    n = 40

    def done_lines() -> list[str]:
        return log.read_text().splitlines() if log.exists() else []

    async with polos.PolosClient(api_url=server.url) as client:
        # Bodies of 1.5 s: the look below and the kill must fall inside the bodies it saw
        # running (with 0.5 s, a loaded machine let all of them finish in between).
        handle = await client.invoke("crash_parent", {"n": n, "seconds": 1.5, "log": str(log)})
        child_ids = [protocol.child_execution_id(handle.id, "slow", i) for i in range(n)]

        # Some children finished, and some are running on the first worker right now.
        wait_until(lambda: len(done_lines()) >= 5, TIMEOUT, "the first children to finish")

        async def running_on_first() -> list[str]:
            rows = await asyncio.gather(*(client.get_execution(c) for c in child_ids))
            return [
                r["id"] for r in rows if r["status"] == "running" and r["worker_id"] == first_id
            ]

        interrupted = await async_wait_until(
            running_on_first, TIMEOUT, "children running on the first worker"
        )
        first.kill9()
        finished_before = len(done_lines())
        assert finished_before < n

        second = start_worker(server, modules, workflows=serves, capacity=10)
        parent = await client.wait_for_execution(handle.id, timeout=TIMEOUT)
        assert parent["status"] == "completed", parent
        assert parent["result"] == {"indexes": list(range(n)), "errors": []}

        rows = [await client.get_execution(c) for c in child_ids]
        for i, row in enumerate(rows):
            assert row["status"] == "completed", row
            assert row["result"]["i"] == i
            assert row["parent_execution_id"] == handle.id
        # What the first worker was running when it died was claimed again and finished by
        # the second one (one of them may have finished in the moment between our look and
        # the kill: then it is the first worker's result, from its only attempt).
        by_id = {r["id"]: r for r in rows}
        taken_over = 0
        for execution_id in interrupted:
            row = by_id[execution_id]
            if row["result"]["pid"] == second.proc.pid:
                assert row["attempt"] >= 2, row
                taken_over += 1
            else:
                assert row["result"]["pid"] == first.proc.pid, row
                assert row["attempt"] == 1, row
        assert taken_over >= 1

    # Every child's body completed at least once (bodies are at-least-once: one killed after
    # its body but before its report may have run twice). A child whose result came from the
    # first worker was not run again by the second.
    lines = done_lines()
    indexes = [int(line.split()[0]) for line in lines]
    assert set(indexes) == set(range(n))
    assert {int(line.split()[1]) for line in lines} == {first.proc.pid, second.proc.pid}
    for i, row in enumerate(rows):
        if row["result"]["pid"] == first.proc.pid:
            assert indexes.count(i) == 1, i
