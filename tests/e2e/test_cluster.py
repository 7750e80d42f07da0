"""Several server replicas on one PostgreSQL database (issue 3): three replicas, three workers
attached to different replicas, one 5,000-child fan-out whose children share a queue limited
to 3. Work submitted through one replica reaches workers parked on the others (LISTEN/NOTIFY),
children finishing anywhere wake the parent, the limit holds across the cluster, and killing a
replica (SIGKILL) in the middle does not stop the run."""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path

import polos
from tests.e2e.apps import cluster
from tests.e2e.conftest import (
    Processes,
    Server,
    _make_server,
    _make_worker,
    async_wait_until,
    new_database,
)

N = 5000
LIMIT = 3
TIMEOUT = 240.0


def _start_cluster(procs: Processes, tmp: Path, replicas: int = 3) -> list[Server]:
    url = new_database("postgres", tmp)
    return [_make_server(procs, url, lease_seconds=3.0) for _ in range(replicas)]


def _check_log(log: Path) -> tuple[Counter[int], int]:
    """(how many times each child's body ran, most bodies running at once)."""
    events: list[tuple[float, int]] = []
    ran: Counter[int] = Counter()
    for line in log.read_text().splitlines():
        kind, index, _pid, at = line.split()
        if kind == "start":
            ran[int(index)] += 1
            events.append((float(at), 1))
        else:
            events.append((float(at), -1))
    running = peak = 0
    for _, delta in sorted(events, key=lambda e: (e[0], e[1])):  # ends before starts
        running += delta
        peak = max(peak, running)
    return ran, peak


async def _run_fan_out(client: polos.PolosClient, log: Path) -> polos.ExecutionHandle:
    return await cluster.cluster_parent.invoke(client, {"n": N, "log": str(log)})


async def _check_outcome(client: polos.PolosClient, handle: polos.ExecutionHandle) -> None:
    row = await client.wait_for_execution(handle.id, timeout=TIMEOUT)
    assert row["status"] == "completed", row
    assert row["result"]["failed"] == []
    assert row["result"]["indices"] == list(range(N))  # complete and in input order


def _stop(servers: list[Server]) -> None:
    for server in servers:
        for worker in server.workers:
            if worker.proc.alive():
                worker.stop()
    for server in servers:
        if server.proc is not None and server.proc.alive():
            server.stop()


async def test_three_replicas_share_one_fan_out(procs: Processes, tmp_path: Path) -> None:
    servers = _start_cluster(procs, tmp_path)
    try:
        for server in servers:  # one worker per replica, attached to that replica only
            _make_worker(procs, server, "tests.e2e.apps.cluster", capacity=50)
        log = tmp_path / "bodies.log"
        # Submitted through replica 0: the workers parked on replicas 1 and 2 hear of it.
        async with polos.PolosClient(api_url=servers[0].url) as client:
            handle = await _run_fan_out(client, log)
            await _check_outcome(client, handle)
        ran, peak = _check_log(log)
        assert sorted(ran) == list(range(N))
        assert set(ran.values()) == {1}, "a child's body ran more than once"
        assert peak <= LIMIT, f"{peak} bodies ran at once; the queue's limit is {LIMIT}"
        # The workers of every replica took part.
        pids = {line.split()[2] for line in log.read_text().splitlines()}
        assert len(pids) == 3
    finally:
        _stop(servers)


async def test_a_replica_killed_mid_fan_out(procs: Processes, tmp_path: Path) -> None:
    servers = _start_cluster(procs, tmp_path)
    urls = [s.url for s in servers]
    try:
        for i, server in enumerate(servers):
            # Attached to its own replica first, the others as fallbacks.
            failover = ",".join(urls[i:] + urls[:i])
            _make_worker(procs, server, "tests.e2e.apps.cluster", capacity=50, api_url=failover)
        log = tmp_path / "bodies.log"
        async with polos.PolosClient(api_url=",".join(urls)) as client:
            handle = await _run_fan_out(client, log)

            async def quarter_done() -> bool:
                await asyncio.sleep(0)
                return log.exists() and log.read_text().count("\nend ") >= N // 4

            await async_wait_until(quarter_done, TIMEOUT, "a quarter of the children")
            servers[1].proc.kill9()  # type: ignore[union-attr]
            await _check_outcome(client, handle)
        ran, peak = _check_log(log)
        assert sorted(ran) == list(range(N))
        # The workers moved to the surviving replicas: no lease ran out, no body ran twice.
        assert set(ran.values()) == {1}, "a child's body ran more than once"
        assert peak <= LIMIT, f"{peak} bodies ran at once; the queue's limit is {LIMIT}"
    finally:
        _stop([s for s in servers if s is not servers[1]])
