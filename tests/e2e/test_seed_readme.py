"""Every snippet of the seed README runs unchanged (tests/e2e/apps/seed.py holds them)."""

from __future__ import annotations

from typing import Any

import polos
from polos.types.types import BatchStepResult
from tests.e2e.apps import seed
from tests.e2e.conftest import Server

TIMEOUT = 60.0


async def test_batch_invoke_and_wait(client: polos.PolosClient) -> None:
    out = await seed.batch_invoke_and_wait_snippet.run(client, {}, timeout=TIMEOUT)
    assert out["processed"] == [
        {"reviewer": "alice", "approved": True},
        {"reviewer": "bob", "approved": True},
        {"reviewer": "charlie", "approved": True},
    ]
    assert out["result_types"] == ["BatchStepResult"] * 3
    assert len(set(out["execution_ids"])) == 3
    for execution_id, reviewer in zip(
        out["execution_ids"], ["alice", "bob", "charlie"], strict=True
    ):
        child = await client.get_execution(execution_id)
        assert child["status"] == "completed"
        assert child["workflow_id"] == "review"
        assert child["result"] == {"reviewer": reviewer, "approved": True}


async def test_fire_and_forget_batch_invoke(client: polos.PolosClient) -> None:
    handle = await seed.fire_and_forget_snippet.invoke(client, {})
    out = await handle.result(client, timeout=TIMEOUT)
    launched = out["launched"]
    assert len(launched) == 2 and len(set(launched)) == 2
    # The children run on after their parent returned; each completes with its own payload.
    for task_id, execution_id in enumerate(launched, start=1):
        child = await client.wait_for_execution(execution_id, timeout=TIMEOUT)
        assert child["status"] == "completed"
        assert child["workflow_id"] == "task"
        assert child["result"] == {"task_id": task_id, "done": True}
        assert child["parent_execution_id"] == handle.execution_id
        assert child["root_execution_id"] == handle.execution_id


async def test_invoke_and_wait_single_child(client: polos.PolosClient) -> None:
    handle = await seed.invoke_and_wait_snippet.invoke(client, {})
    out = await handle.result(client, timeout=TIMEOUT)
    assert out == {"result": {"echo": "value", "parent": handle.id}}
    parent = await handle.get(client)
    assert parent["status"] == "completed"


async def test_invoke_single_child_without_waiting(client: polos.PolosClient) -> None:
    handle = await seed.invoke_snippet.invoke(client, {})
    out = await handle.result(client, timeout=TIMEOUT)
    assert out["id"] == out["execution_id"]
    assert out["workflow_id"] == "child_workflow"
    assert out["parent_execution_id"] == handle.id
    child = await client.wait_for_execution(out["execution_id"], timeout=TIMEOUT)
    assert child["status"] == "completed"
    assert child["result"] == {"echo": "value", "parent": handle.id}
    assert child["parent_execution_id"] == handle.id


async def test_batch_step_result_fields(client: polos.PolosClient) -> None:
    # The fields the README lists, with its types, on the public class.
    fields = BatchStepResult.model_fields
    assert fields["workflow_id"].annotation is str
    assert fields["execution_id"].annotation is str
    assert fields["success"].annotation is bool
    assert fields["result"].annotation == (Any | None)
    assert fields["error"].annotation == (str | None)
    out = await seed.batch_step_result_fields.run(client, {}, timeout=TIMEOUT)
    ok, failed = out["results"]
    assert ok["workflow_id"] == "flaky_review"
    assert ok["success"] is True
    assert ok["result"] == {"reviewer": "alice", "approved": True}
    assert ok["error"] is None
    assert failed["workflow_id"] == "flaky_review"
    assert failed["success"] is False
    assert failed["result"] is None
    assert "reviewer bob refused" in failed["error"]
    assert ok["execution_id"] != failed["execution_id"]
    for entry in (ok, failed):
        child = await client.get_execution(entry["execution_id"])
        assert child["status"] == ("completed" if entry["success"] else "failed")


async def test_data_processor_fan_out_fan_in(client: polos.PolosClient) -> None:
    data = list(range(95))
    out = await seed.data_processor.run(client, {"data": data}, timeout=TIMEOUT)
    assert out == {"processed": [x * 2 for x in data]}


async def test_seed_snippets_run_through_polos_object(shared: Server) -> None:
    """`from polos import Polos` (client + in-process worker) runs a snippet too."""
    async with polos.Polos(api_url=shared.url) as p:
        out = await seed.data_processor.run(p, {"data": [1, 2, 3]}, timeout=TIMEOUT)
    assert out == {"processed": [2, 4, 6]}
