"""Suspend / resume (issue 5), against real server and worker processes on SQLite and
PostgreSQL.

- `client.resume` and `ctx.step.resume` end a suspension; the step returns the resume event as a
  dict (the data under "data"); the suspension's data is published as `suspend_{key}`.
- A resume sent before the suspension is registered is kept, not lost (upstream lost it).
- A suspend timeout is enforced (upstream never enforced it): StepExecutionError with
  error_type SuspendTimeoutError.
- Keys belong to one execution: two executions (also a parent and its child) suspending with
  the same key are resumed separately.
"""

from __future__ import annotations

import uuid

import pytest

import polos
from tests.e2e.apps import model_suspend
from tests.e2e.model_helpers import TIMEOUT, advance_clock, events_of, reach_status


def own_topic(workflow_id: str, execution_id: str) -> str:
    return f"workflow/{workflow_id}/{execution_id}"


async def test_client_resume(clock_client: polos.PolosClient) -> None:
    client = clock_client
    handle = await model_suspend.sus_approval.invoke(client, {"amount": 42})
    row = await reach_status(client, handle.id, "waiting")
    assert row["worker_id"] is None
    announced = await events_of(client, own_topic("sus_approval", handle.id))
    suspend = [e for e in announced if e["event_type"] == "suspend_approve"]
    assert [e["data"] for e in suspend] == [{"amount": 42, "reason": "needs a human"}]

    await client.resume("sus_approval", handle.id, "approve", {"approved": True, "by": "ann"})
    out = await handle.result(client, timeout=TIMEOUT)
    assert out["data"] == {"approved": True, "by": "ann"}
    assert out["event_type"] == "resume_approve"
    assert out["topic"] == own_topic("sus_approval", handle.id)
    assert out["keys"] == ["created_at", "data", "event_type", "id", "sequence_id", "topic"]


async def test_step_resume_from_another_workflow(clock_client: polos.PolosClient) -> None:
    client = clock_client
    waiting = await model_suspend.sus_approval.invoke(client, {"amount": 1})
    await reach_status(client, waiting.id, "waiting")
    resumer = await model_suspend.sus_resumer.run(
        client,
        {
            "key": "approve",
            "execution_id": waiting.id,
            "workflow_id": "sus_approval",
            "data": {"approved": "by a workflow"},
        },
        timeout=TIMEOUT,
    )
    assert resumer == {"resumed": waiting.id}
    out = await waiting.result(client, timeout=TIMEOUT)
    assert out["data"] == {"approved": "by a workflow"}


async def test_resume_before_the_suspension_registered_is_kept(
    clock_client: polos.PolosClient,
) -> None:
    client = clock_client
    gate = f"model/gate/{uuid.uuid4().hex[:12]}"
    handle = await model_suspend.sus_approval.invoke(client, {"gate_topic": gate})
    await reach_status(client, handle.id, "waiting")  # on the gate: not suspended yet
    await client.resume("sus_approval", handle.id, "approve", {"early": True})
    await polos.events.publish(client, gate, {"go": True})
    out = await handle.result(client, timeout=TIMEOUT)
    assert out["data"] == {"early": True}


async def test_suspend_timeout(clock_client: polos.PolosClient) -> None:
    client = clock_client
    caught = await model_suspend.sus_approval.invoke(client, {"timeout": 600, "catch": True})
    escaped = await model_suspend.sus_approval.invoke(client, {"timeout": 600})
    await reach_status(client, caught.id, "waiting")
    await reach_status(client, escaped.id, "waiting")
    await advance_clock(client, 601)

    out = await caught.result(client, timeout=TIMEOUT)
    assert out["error_type"] == "SuspendTimeoutError"
    assert "timed out" in out["message"]
    row = await client.wait_for_execution(escaped.id, timeout=TIMEOUT)
    assert row["status"] == "failed"
    assert row["error"]["type"] == "StepExecutionError"
    assert row["retry_count"] == 0
    with pytest.raises(polos.WorkflowFailedError, match="timed out"):
        await escaped.result(client, timeout=TIMEOUT)
    # A resume after the timeout changes nothing.
    await client.resume("sus_approval", escaped.id, "approve", {"too": "late"})
    assert (await client.get_execution(escaped.id))["status"] == "failed"


async def test_same_key_in_two_executions_does_not_collide(
    clock_client: polos.PolosClient,
) -> None:
    client = clock_client
    a = await model_suspend.sus_approval.invoke(client, {"amount": 1})
    b = await model_suspend.sus_approval.invoke(client, {"amount": 2})
    await reach_status(client, a.id, "waiting")
    await reach_status(client, b.id, "waiting")
    await client.resume("sus_approval", a.id, "approve", {"for": "a"})
    assert (await a.result(client, timeout=TIMEOUT))["data"] == {"for": "a"}
    # The resume resolved every wait it matched in the transaction that published it.
    assert (await client.get_execution(b.id))["status"] == "waiting"
    await client.resume("sus_approval", b.id, "approve", {"for": "b"})
    assert (await b.result(client, timeout=TIMEOUT))["data"] == {"for": "b"}

    # A parent and its child in one tree, both suspended with the key "approve".
    parent = await model_suspend.sus_tree.invoke(client, {})
    await reach_status(client, parent.id, "waiting")
    child_id = (await _child_of(client, parent.id))["id"]
    await reach_status(client, child_id, "waiting")
    await client.resume("sus_approval", child_id, "approve", {"for": "child"})
    child = await client.wait_for_execution(child_id, timeout=TIMEOUT)
    assert child["result"]["data"] == {"for": "child"}
    assert (await client.get_execution(parent.id))["status"] == "waiting"
    await client.resume("sus_tree", parent.id, "approve", {"for": "parent"})
    assert await parent.result(client, timeout=TIMEOUT) == {
        "child": child_id,
        "data": {"for": "parent"},
    }


async def _child_of(client: polos.PolosClient, parent_id: str) -> dict[str, object]:
    from tests.e2e.conftest import async_wait_until

    async def find() -> dict[str, object] | None:
        response = await client.request(
            "GET", "/api/v1/executions", params={"parent_execution_id": parent_id}
        )
        rows = response.json()["executions"]
        return rows[0] if rows else None

    row: dict[str, object] = await async_wait_until(find, TIMEOUT, "the child execution")
    return row
