"""A worker rides out a server restart: SIGTERM the server, start it again on the same
database and port; the worker reconnects, and new executions complete. Nothing stored before
the restart is lost."""

from __future__ import annotations

from pathlib import Path

import polos
from polos import protocol
from tests.e2e.apps import engine, errors
from tests.e2e.conftest import ServerFactory, WorkerFactory, async_wait_until

TIMEOUT = 60.0


async def test_worker_rides_out_server_restart(
    start_server: ServerFactory, start_worker: WorkerFactory, tmp_path: Path
) -> None:
    server = start_server(lease_seconds=2.0)
    worker = start_worker(server, ["tests.e2e.apps.errors", "tests.e2e.apps.engine"])
    async with polos.PolosClient(api_url=server.url) as client:
        before = await errors.echo.invoke(client, {"when": "before"})
        assert (await before.result(client, timeout=TIMEOUT)) == {"echo": {"when": "before"}}
        # Children still running while the server is down: their reports wait for it.
        in_flight = await engine.crash_parent.invoke(
            client, {"n": 4, "seconds": 1.5, "log": str(tmp_path / "slow.log")}
        )
        child_ids = [protocol.child_execution_id(in_flight.id, "slow", i) for i in range(4)]

        async def children_running() -> bool:
            try:
                rows = [await client.get_execution(c) for c in child_ids]
            except polos.PolosApiError as exc:  # not submitted yet
                assert exc.status == 404, exc
                return False
            return all(r["status"] == "running" for r in rows)

        await async_wait_until(children_running, TIMEOUT, "the children to run")

        server.stop()
        assert worker.proc.alive()
        server.start()  # same port, same database file

        # Stored before the restart, still there.
        row = await client.get_execution(before.id)
        assert row["status"] == "completed"
        assert row["result"] == {"echo": {"when": "before"}}

        # The worker finds the server again by itself; new executions run, children too.
        for i in range(3):
            out = await errors.echo.run(client, {"when": "after", "i": i}, timeout=TIMEOUT)
            assert out == {"echo": {"when": "after", "i": i}}
        tree = await engine.tree_root.run(client, {"mids": 2, "leaves": 2}, timeout=TIMEOUT)
        assert tree["ok"] and len(tree["mids"]) == 2

        # The fan-out that was in flight finishes, each child in its first attempt.
        row = await client.wait_for_execution(in_flight.id, timeout=TIMEOUT)
        assert row["status"] == "completed", row
        assert row["result"] == {"indexes": [0, 1, 2, 3], "errors": []}
        for c in child_ids:
            child = await client.get_execution(c)
            assert child["status"] == "completed"
            assert child["attempt"] == 1, child
    assert worker.proc.alive()
