"""Fault tests of issue 4, part 3: PostgreSQL stopped and started several times during a fan-out,
on a private throwaway cluster (tests/faults/pgcluster.py; never the shared server on 5432).

Two server replicas share the cluster; three workers run the fan-out. Four outages: a fast
shutdown, an immediate one (a crash: the next start replays the WAL), one while the leases of
a worker killed with SIGKILL run out (so they are recovered when the database is back), and
another immediate one. While the database is down the servers answer 503
`database_unavailable` (workers retry 5xx, clients retry reads); when it is back they
reconnect (new pool connections, and the LISTEN connection of each replica). Everything
finishes, and the checker (tests/faults/checker.py) holds the run to the engine's promises.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import httpx

import polos
from tests.e2e.conftest import Processes, Server, Worker, _make_worker, free_port
from tests.faults import checker
from tests.faults.outages import ends, processes, worker_id
from tests.faults.pgcluster import PgCluster, private_cluster

N = 300
SECONDS = 0.5  # per step body: the fan-out lasts through the outages
CAPACITY = 10
LEASE_SECONDS = 4.0
OUTAGE_SECONDS = 1.0  # shorter than a lease: the live workers keep theirs
PROGRESS = 30  # step bodies that end between two outages
DEADLINE = 20.0
TIMEOUT = 60.0
APP = "tests.faults.apps.fanout"


def _get(server: Server, path: str) -> httpx.Response | None:
    try:
        return httpx.get(f"{server.url}{path}", timeout=5.0)
    except httpx.TransportError:
        return None


async def _until(condition: Any, what: str, timeout: float = DEADLINE) -> float:
    """Poll `condition` (sync) until truthy; returns how long it took."""
    started = time.monotonic()
    while not await asyncio.to_thread(condition):
        if time.monotonic() - started > timeout:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(0.05)
    return time.monotonic() - started


def _listeners(cluster: PgCluster) -> int:
    rows = checker.query(
        cluster.url(),
        "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'polos-listener'",
    )
    return int(rows[0][0])


class Outages:
    """Stops and starts the cluster, checking what the replicas answer meanwhile."""

    def __init__(self, cluster: PgCluster, servers: list[Server], execution_id: str) -> None:
        self.cluster = cluster
        self.servers = servers
        self.path = f"/api/v1/executions/{execution_id}"
        self.notes: list[str] = []
        self.first_at: float | None = None
        self.restarted_at = 0.0

    def _unavailable(self, server: Server) -> bool:
        response = _get(server, self.path)
        if response is None or response.status_code != 503:
            return False
        assert response.json()["error"]["code"] == "database_unavailable", response.text
        return True

    def _available(self) -> bool:
        for server in self.servers:
            response = _get(server, self.path)
            if response is None or response.status_code != 200:
                return False
        return True

    async def outage(self, mode: str, seconds: float = OUTAGE_SECONDS) -> None:
        stopped_at = await asyncio.to_thread(self.cluster.stop, mode)
        if self.first_at is None:
            self.first_at = stopped_at
        for server in self.servers:  # every replica says so, and stays up
            await _until(lambda s=server: self._unavailable(s), "a 503 database_unavailable")
            assert server.proc is not None and server.proc.alive()
        await asyncio.sleep(max(0.0, stopped_at + seconds - time.time()))
        await asyncio.to_thread(self.cluster.start)
        self.restarted_at = time.time()
        down = self.restarted_at - stopped_at
        back = await _until(self._available, "the replicas to reach the database again")
        listen = await _until(
            lambda: _listeners(self.cluster) == len(self.servers), "LISTEN to reconnect"
        )
        self.notes.append(
            f"{mode} stop, {down:.1f} s down, reads again {back:.1f} s and LISTEN "
            f"{listen:.1f} s after the start"
        )


def _held_by(url: str, worker: str) -> list[str]:
    rows = checker.query(
        url, f"SELECT id FROM executions WHERE status = 'running' AND worker_id = '{worker}'"
    )
    return [r[0] for r in rows]


def _lease_expiries(servers: list[Server]) -> int:
    total = 0
    for server in servers:
        assert server.proc is not None
        for line in server.proc.log().splitlines():
            if "whose worker stopped renewing its lease" in line:
                total += int(line.split("re-queued ")[1].split()[0])
    return total


async def test_postgres_stopped_and_started_during_a_fan_out(tmp_path: Path) -> None:
    started = time.monotonic()
    with private_cluster() as cluster, processes(tmp_path) as procs:
        try:
            await _run(cluster, procs, tmp_path, started)
        except BaseException:
            print(f"===== PostgreSQL log {cluster.log_path}\n{cluster.log()[-10000:]}")
            raise


async def _run(cluster: PgCluster, procs: Processes, tmp_path: Path, started: float) -> None:
    url = cluster.create_database("polos")
    servers = [Server(procs, url, free_port(), LEASE_SECONDS) for _ in range(2)]
    for server in servers:
        server.start()
    urls = [s.url for s in servers]
    workers: list[Worker] = []
    for i in range(3):  # attached to replica i % 2 first, the other as a fallback
        home = servers[i % 2]
        failover = ",".join(urls[i % 2 :] + urls[: i % 2])
        workers.append(_make_worker(procs, home, APP, capacity=CAPACITY, api_url=failover))
    victim = workers[2]
    log = tmp_path / "side-effects.log"

    async with polos.PolosClient(api_url=",".join(urls)) as client:
        handle = await client.invoke("fault_parent", {"log": str(log), "n": N, "seconds": SECONDS})
        outages = Outages(cluster, servers, handle.id)

        async def progress(bodies: int = PROGRESS) -> None:
            target = ends(log) + bodies
            await _until(lambda: ends(log) >= target, f"{bodies} more step bodies to end")

        await progress()
        await outages.outage("fast")
        await progress()
        await outages.outage("immediate")
        await progress()

        # A worker dies; its leases run out while the database is down, and are recovered
        # (the executions queued again) once it is back.
        victim_id = worker_id(victim.proc.log())
        held = await asyncio.to_thread(_held_by, url, victim_id)
        assert held, "the worker to kill runs nothing"
        victim.kill9()
        await asyncio.sleep(LEASE_SECONDS / 2)
        await outages.outage("fast", seconds=LEASE_SECONDS)
        await _until(
            lambda: not set(held) & set(_held_by(url, victim_id)), "the leases to be recovered"
        )
        recovered = time.time() - outages.restarted_at
        outages.notes[-1] += (
            f"; the {len(held)} executions of the killed worker queued again within "
            f"{recovered:.1f} s of the start"
        )
        await progress()
        await outages.outage("immediate")

        row = await client.wait_for_execution(handle.id, timeout=TIMEOUT)

    assert row["status"] == "completed", row
    result = row["result"]
    assert result["errors"] == []
    assert result["indices"] == list(range(N))  # complete and in input order
    assert result["doubles"] == [2 * i for i in range(N)]
    assert cluster.stops == 4 and cluster.starts == 5
    report = checker.check(
        log, url, first_fault_at=outages.first_at, parent_id=handle.id, n_children=N
    )
    for worker in workers[:2]:
        assert worker.proc.alive(), worker.proc.log()[-5000:]
        worker.stop()
    expiries = _lease_expiries(servers)
    print(
        f"\nPostgreSQL stopped {cluster.stops} times (+ 1 worker SIGKILL) during a {N}-child "
        f"fan-out on 2 replicas; {expiries} leases expired in all; "
        f"{time.monotonic() - started:.1f} s: {report}"
    )
    for note in outages.notes:
        print(f"  - {note}")
    for server in servers:
        server.stop()  # cleanly, and no traceback in its log
