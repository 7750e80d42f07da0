"""Replay divergence detection and `ctx.step.patched` (issue 6), against a real server and
real worker processes, on SQLite and PostgreSQL.

Executions start on a worker running version 1 of their code and suspend on an event; that
worker stops (a deployment); a worker running version 2 replays them once the event comes:

- a step inserted before the wait: the execution fails with WorkflowDivergenceError naming
  the workflow, the position, the recorded step and the step the code asked for; not retried;
- the same change behind `patched`: the old execution takes the old path and completes; a new
  execution takes the new path;
- a refactor asking for the same steps in the same order: completes.
"""

from __future__ import annotations

import uuid
from typing import Any

import polos
from tests.e2e.conftest import Server, ServerFactory, WorkerFactory, wait_until
from tests.e2e.model_helpers import db

MODULE = "tests.e2e.apps.divergence"
TIMEOUT = 60.0
WORKFLOWS = ["div_plain", "div_patched", "div_refactor"]


def status(server: Server, execution_id: str) -> str:
    return str(db(server, f"SELECT status FROM executions WHERE id = '{execution_id}'")[0][0])


async def test_changed_code_diverges_unless_patched(
    start_server: ServerFactory, start_worker: WorkerFactory
) -> None:
    server = start_server()
    old = start_worker(server, MODULE, env={"POLOS_TEST_CODE_VERSION": "1"})
    topics = {w: f"approve-{w}-{uuid.uuid4().hex}" for w in WORKFLOWS}
    async with polos.PolosClient(api_url=server.url) as client:
        handles = {w: await client.invoke(w, {"x": 21, "topic": topics[w]}) for w in WORKFLOWS}
        wait_until(
            lambda: all(status(server, h.id) == "waiting" for h in handles.values()),
            TIMEOUT,
            "every execution to wait for its event",
        )
        assert old.stop() == 0
        start_worker(server, MODULE, env={"POLOS_TEST_CODE_VERSION": "2"})
        for w in WORKFLOWS:
            await polos.events.publish(client, topics[w], {"ok": w})
        rows: dict[str, dict[str, Any]] = {
            w: await client.wait_for_execution(h.id, timeout=TIMEOUT) for w, h in handles.items()
        }

        plain = rows["div_plain"]
        assert plain["status"] == "failed", plain
        assert plain["error"]["type"] == "WorkflowDivergenceError"
        message = plain["error"]["message"]
        for part in (
            "'div_plain'",
            "position 1",
            "'approval' (wait_for_event)",
            "'new_check' (run)",
            "ctx.step.patched",
        ):
            assert part in message, (part, message)
        assert plain["retry_count"] == 0, plain  # not retried

        patched = rows["div_patched"]
        assert patched["status"] == "completed", patched
        assert patched["result"] == {
            "prepared": 42,
            "checked": None,
            "new_path": False,
            "again": False,
            "approved": {"ok": "div_patched"},
        }

        refactor = rows["div_refactor"]
        assert refactor["status"] == "completed", refactor
        assert refactor["result"] == {"prepared": 42, "approved": {"ok": "div_refactor"}}

        # A new execution on version 2 takes the new path, and says so again after the wait.
        topic = f"approve-new-{uuid.uuid4().hex}"
        fresh = await client.invoke("div_patched", {"x": 5, "topic": topic})
        wait_until(lambda: status(server, fresh.id) == "waiting", TIMEOUT, "the new one to wait")
        await polos.events.publish(client, topic, {"ok": "new"})
        row = await client.wait_for_execution(fresh.id, timeout=TIMEOUT)
        assert row["status"] == "completed", row
        assert row["result"] == {
            "prepared": 10,
            "checked": 20,
            "new_path": True,
            "again": True,
            "approved": {"ok": "new"},
        }
        # The markers are in the journal, outside the step order.
        steps = db(
            server,
            "SELECT step_key, kind, position FROM steps "
            f"WHERE execution_id = '{fresh.id}' ORDER BY position, step_key",
        )
        assert [(str(k), str(t), int(p)) for k, t, p in steps] == [
            ("prepare", "run", 0),
            ("new_check", "run", 1),
            ("patched:add-check", "patched", 1),
            ("approval", "wait_for_event", 2),
        ]
