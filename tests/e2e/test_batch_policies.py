"""Batch failure policies (issue 6): `batch_invoke_and_wait(..., fail_fast=, min_success=)`,
against a real server and worker process, on SQLite and PostgreSQL.

- fail_fast with 20 children, one failing at once and the rest sleeping a minute in a step:
  the parent returns without waiting that minute out; the failed child carries its error, the
  finished ones keep their results, the others are cancelled (their bodies stopped, their
  slots freed); input order; the recorded outcome is what a later replay sees.
- min_success=3 of 20: returns once 3 succeeded (a failure before does not stop it).
- min_success that can no longer be reached returns then.
- a bad min_success is a ValueError in the workflow.
"""

from __future__ import annotations

import time
import uuid
from pathlib import Path
from typing import Any

import polos
from tests.e2e.conftest import Server, ServerFactory, WorkerFactory, wait_until
from tests.e2e.model_helpers import db

MODULE = "tests.e2e.apps.batch_policies"
TIMEOUT = 60.0  # catches a hang; the slow children would take 60 s (plus retries) each
CANCELLED = "ExecutionCancelledError"


def _start(start_server: ServerFactory, start_worker: WorkerFactory) -> Server:
    server = start_server()
    start_worker(server, MODULE, capacity=50)
    return server


def children_by_status(server: Server, parent_id: str) -> dict[str, int]:
    rows = db(
        server,
        "SELECT status, COUNT(*) FROM executions "
        f"WHERE parent_execution_id = '{parent_id}' GROUP BY status",
    )
    return {str(s): int(n) for s, n in rows}


def child_status(server: Server, parent_id: str, index: int) -> str | None:
    rows = db(
        server,
        "SELECT status FROM executions "
        f"WHERE parent_execution_id = '{parent_id}' AND batch_index = {index}",
    )
    return str(rows[0][0]) if rows else None


def lines(log: Path) -> list[str]:
    return log.read_text().splitlines() if log.exists() else []


def assert_nothing_runs_on(server: Server, parent_id: str, log: Path) -> None:
    """Every child is final, no slot is held, and every slow body that started was stopped
    (none ran to its end)."""
    counts = children_by_status(server, parent_id)
    assert set(counts) <= {"completed", "failed", "cancelled"}, counts
    usage = db(
        server, "SELECT COALESCE(SUM(running), 0) FROM queue_usage WHERE queue_name = 'bp_child'"
    )
    assert usage == [(0,)]

    def stopped() -> bool:
        text = lines(log)
        started = {x.split()[1] for x in text if x.startswith("start ")}
        ended = {x.split()[1] for x in text if x.startswith(("stopped ", "end "))}
        return started == ended

    wait_until(stopped, 30.0, "the cancelled children's bodies to stop", interval=0.1)
    assert not [x for x in lines(log) if x.startswith("end ")], lines(log)


async def test_fail_fast_returns_at_the_first_failure(
    start_server: ServerFactory, start_worker: WorkerFactory, tmp_path: Path
) -> None:
    server = _start(start_server, start_worker)
    log = tmp_path / "bodies.log"
    go, after = f"go-{uuid.uuid4().hex}", f"after-{uuid.uuid4().hex}"
    modes = ["slow"] * 20
    modes[0] = modes[1] = "ok"
    modes[7] = "fail_after_go"
    async with polos.PolosClient(api_url=server.url) as client:
        began = time.monotonic()
        handle = await client.invoke(
            "bp_parent",
            {"modes": modes, "log": str(log), "go": go, "after": after, "fail_fast": True},
        )
        # The quick ones finish first; the slow ones are in their minute-long step.
        wait_until(
            lambda: (
                child_status(server, handle.id, 0) == "completed"
                and child_status(server, handle.id, 1) == "completed"
                and sum(1 for x in lines(log) if x.startswith("start ")) == 17
            ),
            TIMEOUT,
            "the quick children to finish and the slow ones to start",
        )
        await polos.events.publish(client, go, {"now": True})
        wait_until(
            lambda: (
                db(server, f"SELECT status FROM executions WHERE id = '{handle.id}'")
                == [("waiting",)]
                and child_status(server, handle.id, 7) == "failed"
            ),
            TIMEOUT,
            "the parent to pass the batch and wait for `after`",
        )
        waited = time.monotonic() - began
        assert waited < 45, f"the parent waited {waited:.1f} s: the slow children's minute?"
        assert_nothing_runs_on(server, handle.id, log)

        # A replay (woken by `after`) sees what was recorded.
        await polos.events.publish(client, after, {"now": True})
        row = await client.wait_for_execution(handle.id, timeout=TIMEOUT)
    assert row["status"] == "completed", row
    seen, replayed = row["result"]["seen"], row["result"]["replayed"]
    assert replayed == seen
    assert [s["success"] for s in seen] == [i in (0, 1) for i in range(20)]
    assert [s["result"] for s in seen[:2]] == [{"i": 0}, {"i": 1}]
    assert seen[7]["error_type"] == "StepExecutionError", seen[7]
    assert "child 7 failed" in seen[7]["error"]
    for i, s in enumerate(seen):
        if i not in (0, 1, 7):
            assert s["error_type"] == CANCELLED, (i, s)
            assert "fail_fast" in s["error"], s
    assert children_by_status(server, handle.id) == {"completed": 2, "failed": 1, "cancelled": 17}


async def test_min_success_returns_once_enough_succeeded(
    start_server: ServerFactory, start_worker: WorkerFactory, tmp_path: Path
) -> None:
    server = _start(start_server, start_worker)
    log = tmp_path / "bodies.log"
    go = f"go-{uuid.uuid4().hex}"
    modes = ["slow"] * 20
    modes[4] = "fail"
    for i in (2, 5, 9):
        modes[i] = "ok_after_go"
    async with polos.PolosClient(api_url=server.url) as client:
        began = time.monotonic()
        handle = await client.invoke(
            "bp_parent", {"modes": modes, "log": str(log), "go": go, "min_success": 3}
        )
        # A failure does not end a min_success batch by itself.
        wait_until(
            lambda: (
                child_status(server, handle.id, 4) == "failed"
                and sum(1 for x in lines(log) if x.startswith("start ")) == 16
            ),
            TIMEOUT,
            "child 4 to fail and the slow ones to start",
        )
        assert db(server, f"SELECT status FROM executions WHERE id = '{handle.id}'") == [
            ("waiting",)
        ]
        await polos.events.publish(client, go, {"now": True})
        row = await client.wait_for_execution(handle.id, timeout=TIMEOUT)
        assert time.monotonic() - began < 45
    assert row["status"] == "completed", row
    seen = row["result"]["seen"]
    assert [s["success"] for s in seen] == [i in (2, 5, 9) for i in range(20)]
    assert [seen[i]["result"] for i in (2, 5, 9)] == [{"i": 2}, {"i": 5}, {"i": 9}]
    assert seen[4]["error_type"] == "StepExecutionError"
    assert {seen[i]["error_type"] for i in range(20) if i not in (2, 4, 5, 9)} == {CANCELLED}
    assert "min_success=3" in seen[0]["error"]
    assert_nothing_runs_on(server, handle.id, log)
    assert children_by_status(server, handle.id) == {"completed": 3, "failed": 1, "cancelled": 16}


async def test_min_success_out_of_reach_returns_then(
    start_server: ServerFactory, start_worker: WorkerFactory, tmp_path: Path
) -> None:
    server = _start(start_server, start_worker)
    log = tmp_path / "bodies.log"
    modes = ["fail"] * 18 + ["slow"] * 2
    async with polos.PolosClient(api_url=server.url) as client:
        began = time.monotonic()
        payload = {"modes": modes, "log": str(log), "min_success": 3}
        handle = await client.invoke("bp_parent", payload)
        row = await client.wait_for_execution(handle.id, timeout=TIMEOUT)
        assert time.monotonic() - began < 45
        assert row["status"] == "completed", row
        seen = row["result"]["seen"]
        assert [s["error_type"] for s in seen] == ["StepExecutionError"] * 18 + [CANCELLED] * 2
        assert "can no longer be reached" in seen[19]["error"]
        assert_nothing_runs_on(server, row["id"], log)


async def test_a_bad_min_success_is_a_value_error(
    start_server: ServerFactory, start_worker: WorkerFactory
) -> None:
    server = _start(start_server, start_worker)
    async with polos.PolosClient(api_url=server.url) as client:
        for bad in (0, 2, -1, True):
            result: Any = await client.wait_for_execution(
                (await client.invoke("bp_bad_policy", {"min_success": bad})).id, timeout=TIMEOUT
            )
            assert result["status"] == "completed", result
            assert (
                "min_success must be an int from 1 to the number of workflows (1)"
                in (result["result"])
            )
