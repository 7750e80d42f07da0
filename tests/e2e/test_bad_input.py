"""What a user can get wrong, through real processes: each mistake gets a clear error, and
nothing is lost."""

from __future__ import annotations

import httpx
import pytest

import polos
from polos import protocol
from tests.e2e.apps import errors
from tests.e2e.conftest import Server, ServerFactory, WorkerFactory

TIMEOUT = 60.0


async def test_unknown_workflow_id(client: polos.PolosClient, shared: Server) -> None:
    with pytest.raises(polos.WorkflowNotFoundError) as caught:
        await client.invoke("no_such_workflow", {"x": 1})
    assert "no_such_workflow" in str(caught.value)
    assert caught.value.workflow_id == "no_such_workflow"

    async with httpx.AsyncClient(base_url=shared.url) as http:
        response = await http.post(
            f"{protocol.API_PREFIX}/workflows/no_such_workflow/run", json={"payload": {}}
        )
    assert response.status_code == 404
    error = response.json()["error"]
    assert error["code"] == "workflow_not_found"
    assert "no_such_workflow" in error["message"]


async def test_payload_failing_the_pydantic_model(client: polos.PolosClient) -> None:
    handle = await errors.strict_input.invoke(client, {"count": -1})
    row = await client.wait_for_execution(handle.id, timeout=TIMEOUT)
    assert row["status"] == "failed"
    assert row["retry_count"] == 0  # not retried: a retry cannot fix the payload
    assert row["attempt"] == 1
    assert row["error"]["type"] == "PayloadValidationError"
    message = row["error"]["message"]
    assert "strict_input" in message
    # Every field the model rejected is named.
    assert "count" in message and "greater than or equal to 0" in message
    assert "name" in message and "Field required" in message

    with pytest.raises(polos.WorkflowFailedError) as caught:
        await errors.strict_input.run(client, {"count": "many", "name": "x"}, timeout=TIMEOUT)
    assert "count" in str(caught.value)
    assert caught.value.error_type == "PayloadValidationError"

    # A valid payload goes through.
    assert await errors.strict_input.run(client, {"count": 2, "name": "x"}, timeout=TIMEOUT) == {
        "count": 2,
        "name": "x",
    }


@pytest.mark.parametrize(
    "body",
    [b"{not json", b'{"payload": ', b"[1, 2", b"\xff\xfe"],
    ids=["broken-object", "truncated", "broken-array", "not-utf8"],
)
async def test_malformed_json_body(shared: Server, body: bytes) -> None:
    async with httpx.AsyncClient(base_url=shared.url) as http:
        response = await http.post(
            f"{protocol.API_PREFIX}/workflows/echo/run",
            content=body,
            headers={"Content-Type": "application/json"},
        )
    assert 400 <= response.status_code < 500, response.text
    error = response.json()["error"]
    assert error["code"]
    assert "json" in error["message"].lower()


async def test_unknown_field_in_body(shared: Server) -> None:
    async with httpx.AsyncClient(base_url=shared.url) as http:
        response = await http.post(
            f"{protocol.API_PREFIX}/workflows/echo/run", json={"payload": {}, "paylaod": 1}
        )
    assert response.status_code == 422
    assert "paylaod" in response.json()["error"]["message"]


async def test_step_returning_non_json_value(client: polos.PolosClient) -> None:
    handle = await errors.bad_step_value.invoke(client, {})
    row = await client.wait_for_execution(handle.id, timeout=TIMEOUT)
    assert row["status"] == "failed"
    assert row["error"]["type"] == "StepExecutionError"
    assert "make_object" in row["error"]["message"]
    assert "NotJson" in row["error"]["message"]
    assert row["retry_count"] == 0


async def test_run_called_inside_a_workflow(client: polos.PolosClient) -> None:
    handle = await errors.nested_run.invoke(client, {})
    row = await client.wait_for_execution(handle.id, timeout=TIMEOUT)
    assert row["status"] == "failed"
    assert "cannot be called from within a workflow" in row["error"]["message"]
    assert "run()" in row["error"]["message"]
    assert row["error"]["type"] == "ClientCallInWorkflowError"
    assert row["retry_count"] == 0  # the code has to change: not retried
    assert row["attempt"] == 1


async def test_duplicate_step_key(client: polos.PolosClient) -> None:
    handle = await errors.duplicate_key.invoke(client, {})
    row = await client.wait_for_execution(handle.id, timeout=TIMEOUT)
    assert row["status"] == "failed"
    assert row["error"]["type"] == "DuplicateStepKeyError"
    assert "'same'" in row["error"]["message"]
    assert "duplicate_key" in row["error"]["message"]
    assert row["retry_count"] == 0  # a bug in the workflow: not retried
    assert row["attempt"] == 1


async def test_submitted_while_no_worker_runs(
    start_server: ServerFactory, start_worker: WorkerFactory
) -> None:
    server = start_server()
    # A worker makes the workflow known, then leaves.
    worker = start_worker(server, "tests.e2e.apps.errors", workflows=["echo"])
    worker.stop()
    async with polos.PolosClient(api_url=server.url) as client:
        handle = await errors.echo.invoke(client, {"n": 1})
        # Queued, and stays queued: nobody serves it. (The long-poll returns when the
        # execution is final or after its timeout; it must not be final.)
        response = await client.request(
            "GET",
            f"{protocol.API_PREFIX}/executions/{handle.id}/wait",
            params={"timeout": "1.0"},
        )
        assert response.json()["status"] == "queued"

        start_worker(server, "tests.e2e.apps.errors", workflows=["echo"])
        row = await client.wait_for_execution(handle.id, timeout=TIMEOUT)
        assert row["status"] == "completed"
        assert row["result"] == {"echo": {"n": 1}}
        assert row["attempt"] == 1
