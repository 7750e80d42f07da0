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
    gate = tmp_path / "gate"
    n = 40
    gate_from = 10

    def done_lines() -> list[str]:
        return log.read_text().splitlines() if log.exists() else []

    async with polos.PolosClient(api_url=server.url) as client:
        # Children from `gate_from` on wait for the gate file, which appears only after the
        # kill: what the first worker is running of them when it dies cannot finish there,
        # however loaded the machine (an ungated look-then-kill raced the bodies' end).
        handle = await client.invoke(
            "crash_parent",
            {"n": n, "seconds": 0.2, "log": str(log), "gate": str(gate), "gate_from": gate_from},
        )
        child_ids = [protocol.child_execution_id(handle.id, "slow", i) for i in range(n)]
        gated = set(child_ids[gate_from:])

        # The ungated children finished on the first worker; gated ones are running there.
        wait_until(lambda: len(done_lines()) >= gate_from, TIMEOUT, "the ungated children")

        async def running_on_first() -> list[str]:
            rows = await asyncio.gather(*(client.get_execution(c) for c in child_ids))
            return [
                r["id"]
                for r in rows
                if r["status"] == "running" and r["worker_id"] == first_id and r["id"] in gated
            ]

        interrupted = await async_wait_until(
            running_on_first, TIMEOUT, "gated children running on the first worker"
        )
        first.kill9()
        finished_before = len(done_lines())
        assert finished_before == gate_from
        gate.touch()

        second = start_worker(server, modules, workflows=serves, capacity=10)
        parent = await client.wait_for_execution(handle.id, timeout=TIMEOUT)
        assert parent["status"] == "completed", parent
        assert parent["result"] == {"indexes": list(range(n)), "errors": []}

        rows = [await client.get_execution(c) for c in child_ids]
        for i, row in enumerate(rows):
            assert row["status"] == "completed", row
            assert row["result"]["i"] == i
            assert row["parent_execution_id"] == handle.id
        # What the first worker was running when it died was claimed again after its lease ran
        # out and finished by the second one.
        by_id = {r["id"]: r for r in rows}
        for execution_id in interrupted:
            row = by_id[execution_id]
            assert row["result"]["pid"] == second.proc.pid, row
            assert row["attempt"] >= 2, row

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
