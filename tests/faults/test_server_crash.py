"""Fault tests of issue 4, part 2: the server is killed with SIGKILL at chosen points (the fail
points of polos/server/faults.py) during a fan-out, then started again on the same database
and port without the fail point. The workers keep running through the outage; the run
completes; the checker (tests/faults/checker.py) holds it to the engine's promises, with the
first fault at the crash.

- `children_inserted:1`: while the parent's batch of children is being submitted;
- `report_committed:K`: while completions stream in, K reports into the fan-out;
- `parent_woken:1`: while the last child wakes the parent;
- `claim_committed:2`: after a claim of children committed, before the worker got them (they
  come back by lease expiry).

And a client start retried with the same idempotency key after a crash is one execution.
On SQLite and on PostgreSQL.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

import polos
from polos.sdk.transport import TransportError
from tests.e2e.conftest import BACKENDS, Processes, Server, _make_worker, free_port
from tests.faults import checker
from tests.faults.outages import database, ends, processes, wait_for_crash

N = 300
WORKERS = 2
# 40 slots for 300 children: at least 8 waves, each of them two reports per worker (a child's
# second step waits for its first to be acknowledged), so the fan-out takes over 30 reports
# however they are batched, and `report_committed:20` falls in the middle of it.
CAPACITY = 20
# Short, so that claimed executions nobody received come back quickly.
LEASE_SECONDS = 3.0
TIMEOUT = 60.0
APP = "tests.faults.apps.fanout"

CRASHES = [
    ("children_inserted", 1),
    ("report_committed", 20),
    ("parent_woken", 1),
    ("claim_committed", 2),
]


def _start_server(procs: Processes, url: str, fail_points: str | None) -> Server:
    env = {"POLOS_FAIL_POINTS": fail_points} if fail_points else {}
    server = Server(procs, url, free_port(), LEASE_SECONDS, env=env)
    server.start()
    return server


def _restart_without_fail_points(server: Server) -> None:
    server.env = {}
    server.start()  # same port, same database


def _children_done(url: str, parent_id: str) -> int:
    rows = checker.query(
        url,
        "SELECT count(*) FROM executions WHERE status = 'completed' "
        f"AND parent_execution_id = '{parent_id}'",
    )
    return int(rows[0][0])


def _check_result(row: dict[str, Any], n: int) -> None:
    assert row["status"] == "completed", row
    result = row["result"]
    assert result["errors"] == []
    assert result["indices"] == list(range(n))  # complete and in input order
    assert result["doubles"] == [2 * i for i in range(n)]


def _check_workers_rode_it_out(server: Server, pids: list[int]) -> None:
    for worker, pid in zip(server.workers, pids, strict=True):
        assert worker.proc.alive() and worker.proc.pid == pid, worker.proc.log()[-5000:]
        assert "server unreachable" in worker.proc.log(), "the worker never saw the outage"


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize(("point", "count"), CRASHES, ids=[f"{p}:{c}" for p, c in CRASHES])
async def test_server_killed_at_a_fail_point(
    backend: str, point: str, count: int, tmp_path: Path
) -> None:
    started = time.monotonic()
    with database(backend, tmp_path) as url, processes(tmp_path) as procs:
        server = _start_server(procs, url, f"{point}:{count}")
        for _ in range(WORKERS):
            _make_worker(procs, server, APP, capacity=CAPACITY)
        pids = [w.proc.pid for w in server.workers]
        log = tmp_path / "side-effects.log"
        async with polos.PolosClient(api_url=server.url) as client:
            handle = await client.invoke("fault_parent", {"log": str(log), "n": N})
            crashed_at = await wait_for_crash(server, point)
            done_at_crash = _children_done(url, handle.id)
            bodies_at_crash = ends(log)
            _restart_without_fail_points(server)
            row = await client.wait_for_execution(handle.id, timeout=TIMEOUT)
        _check_result(row, N)
        report = checker.check(
            log, url, first_fault_at=crashed_at, parent_id=handle.id, n_children=N
        )
        _check_workers_rode_it_out(server, pids)
        print(
            f"\n[{backend}] SIGKILL at {point}:{count} ({done_at_crash}/{N} children completed, "
            f"{bodies_at_crash} bodies ended at the crash); 1 fault; "
            f"{time.monotonic() - started:.1f} s: {report}"
        )
        for worker in server.workers:
            worker.stop()
        server.stop()  # cleanly, and no traceback in its log


async def _start_until_answered(
    client: polos.PolosClient, payload: dict[str, Any], key: str
) -> tuple[polos.ExecutionHandle, int]:
    """What a careful client does when a start fails in transit: send it again, with the same
    idempotency key, until a server answers. Returns the handle and the attempts made."""
    deadline = time.monotonic() + TIMEOUT
    attempts = 0
    while True:
        attempts += 1
        try:
            return await client.invoke("fault_parent", payload, idempotency_key=key), attempts
        except TransportError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.1)


async def _restart_while_retrying(
    server: Server, client: polos.PolosClient, payload: dict[str, Any], key: str
) -> tuple[polos.ExecutionHandle, int]:
    """Restart the server (in a thread) while the client keeps sending the start."""
    retrying = asyncio.create_task(_start_until_answered(client, payload, key))
    await asyncio.sleep(0.3)  # a few refused attempts while the server is down
    await asyncio.to_thread(_restart_without_fail_points, server)
    return await retrying


@pytest.mark.parametrize("backend", BACKENDS)
async def test_client_start_retried_with_an_idempotency_key(
    backend: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Two crashes: one right after the worker claimed the new execution (`claim_committed`:
    on SQLite before the start itself is answered), one (a plain SIGKILL) right after a
    second start was accepted. After each, the client sends the start again with the same
    key, through the outage until the restarted server answers: the same execution comes
    back, and it is one row."""
    started = time.monotonic()
    n = 5
    with database(backend, tmp_path) as url, processes(tmp_path) as procs:
        server = _start_server(procs, url, "claim_committed:1")
        _make_worker(procs, server, APP, capacity=CAPACITY)
        log = tmp_path / "side-effects.log"
        payload = {"log": str(log), "n": n}
        keys = [f"start-{uuid.uuid4()}", f"start-{uuid.uuid4()}"]
        async with polos.PolosClient(api_url=server.url) as client:
            # The crash may come before the start is answered: on SQLite the worker's parked
            # claim runs in the start's own transaction and is answered first, so the server
            # dies before the client hears back, and the SDK sends the keyed start again
            # through the outage. Either way the answer must name the execution committed
            # before the crash.
            starting = asyncio.create_task(
                client.invoke("fault_parent", payload, idempotency_key=keys[0])
            )
            crashed_at = await wait_for_crash(server, "claim_committed")
            again, tries_1 = await _restart_while_retrying(server, client, payload, keys[0])
            first = await starting
            assert again.id == first.id

            second = await client.invoke("fault_parent", payload, idempotency_key=keys[1])
            assert server.proc is not None
            server.proc.kill9()
            again, tries_2 = await _restart_while_retrying(server, client, payload, keys[1])
            assert again.id == second.id
            # The SDK itself sends a keyed start again through an outage (it is safe); count
            # its retries and this test's own.
            sdk_retries = [
                r
                for r in caplog.records
                if r.name == "polos.client"
                and "POST" in r.getMessage()
                and "/run" in r.getMessage()
            ]
            assert tries_1 + tries_2 + len(sdk_retries) > 2, (
                "no start was refused during the outages"
            )

            rows = [await client.wait_for_execution(h.id, timeout=TIMEOUT) for h in (first, second)]
            # Once final, the key still names the same execution.
            for key, handle in zip(keys, (first, second), strict=True):
                late = await client.invoke("fault_parent", payload, idempotency_key=key)
                assert late.id == handle.id
        for row in rows:
            _check_result(row, n)
        for key, handle in zip(keys, (first, second), strict=True):
            found = checker.query(url, f"SELECT id FROM executions WHERE idempotency_key = '{key}'")
            assert found == [(handle.id,)]
        parents = checker.query(url, "SELECT id FROM executions WHERE workflow_id = 'fault_parent'")
        assert sorted(p[0] for p in parents) == sorted([first.id, second.id])
        reports = [
            checker.check(log, url, first_fault_at=crashed_at, parent_id=h.id, n_children=n)
            for h in (first, second)
        ]
        print(
            f"\n[{backend}] idempotent start across 2 crashes (claim_committed:1, SIGKILL), "
            f"started {tries_1} and {tries_2} times; {time.monotonic() - started:.1f} s: "
            f"{reports[-1]}"
        )
        server.workers[0].stop()
        server.stop()


@pytest.mark.parametrize("backend", BACKENDS)
async def test_a_run_whose_server_dies_after_its_submission_committed(
    backend: str, tmp_path: Path
) -> None:
    """`Workflow.run`'s submission commits without its own fsync on SQLite (the worker's
    parked claim inside it): SIGKILL right after that commit, before the worker or the client
    hears back. The run's request fails (a start without a key is never sent again); after a
    restart the execution is there, once, and it completes."""
    n = 5
    with database(backend, tmp_path) as url, processes(tmp_path) as procs:
        server = _start_server(procs, url, "claim_committed:1")
        _make_worker(procs, server, APP, capacity=CAPACITY)
        log = tmp_path / "side-effects.log"
        async with polos.PolosClient(api_url=server.url) as client:
            running = asyncio.create_task(
                client.start("fault_parent", {"log": str(log), "n": n}, wait_seconds=1.0)
            )
            crashed_at = await wait_for_crash(server, "claim_committed")
            with pytest.raises(TransportError):
                await running
            _restart_without_fail_points(server)
            parents = checker.query(
                url, "SELECT id FROM executions WHERE workflow_id = 'fault_parent'"
            )
            assert len(parents) == 1, parents
            row = await client.wait_for_execution(parents[0][0], timeout=TIMEOUT)
        _check_result(row, n)
        report = checker.check(
            log, url, first_fault_at=crashed_at, parent_id=parents[0][0], n_children=n
        )
        print(f"\n[{backend}] run killed after its submission committed: {report}")
        server.workers[0].stop()
        server.stop()
