"""`Workflow.run` in one request: `POST .../run?wait_seconds=` starts the execution and answers
with it once final; a longer run is waited for with `GET .../wait` as before."""

from __future__ import annotations

import time

import pytest

import polos
from polos import WorkflowFailedError, WorkflowTimeoutError
from tests.e2e.apps import steps

RUN = "/api/v1/workflows/slow_echo/run"


async def test_a_quick_run_is_answered_with_its_final_execution(
    client: polos.PolosClient,
) -> None:
    response = await client.request(
        "POST", RUN, content='{"payload": {"value": 7}}', params={"wait_seconds": "10"}
    )
    data = response.json()
    assert data["created"] is True
    execution = data["execution"]
    assert execution["id"] == data["execution_id"]
    assert execution["status"] == "completed"
    assert execution["result"] == {"echo": 7}


async def test_a_run_longer_than_the_wait_is_answered_without_it(
    client: polos.PolosClient,
) -> None:
    t0 = time.monotonic()
    response = await client.request(
        "POST",
        RUN,
        content='{"payload": {"value": 1, "seconds": 1.5}}',
        params={"wait_seconds": "0.2"},
    )
    data = response.json()
    assert 0.2 <= time.monotonic() - t0 < 1.4
    assert data.get("execution") is None
    final = await client.wait_for_execution(data["execution_id"], timeout=30)
    assert final["result"] == {"echo": 1}


async def test_a_run_again_under_its_idempotency_key_is_answered_with_the_first_at_once(
    client: polos.PolosClient,
) -> None:
    """The second run creates nothing: the route reads the existing execution (final already)
    instead of waiting for a completion that happened before it asked."""
    body = '{"payload": {"value": 9}, "idempotency_key": "run-once-%d"}' % time.time_ns()
    first = (await client.request("POST", RUN, content=body, params={"wait_seconds": "10"})).json()
    assert first["created"] is True
    assert first["execution"]["status"] == "completed"
    t0 = time.monotonic()
    again = (await client.request("POST", RUN, content=body, params={"wait_seconds": "10"})).json()
    assert time.monotonic() - t0 < 5
    assert again["created"] is False
    assert again["execution_id"] == first["execution_id"]
    assert again["execution"]["result"] == {"echo": 9}


async def test_without_wait_seconds_the_answer_is_the_handle_alone(
    client: polos.PolosClient,
) -> None:
    response = await client.request("POST", RUN, content='{"payload": {"value": 2}}')
    assert response.json().get("execution") is None


@pytest.mark.parametrize("bad", ["-1", "61", "soon"])
async def test_a_bad_wait_is_refused(client: polos.PolosClient, bad: str) -> None:
    with pytest.raises(polos.PolosApiError) as caught:
        await client.request(
            "POST", RUN, content='{"payload": {"value": 3}}', params={"wait_seconds": bad}
        )
    assert caught.value.status == 422


async def test_workflow_run_returns_quick_and_slow_results_and_raises_failures(
    client: polos.PolosClient,
) -> None:
    assert await steps.slow_echo.run(client, {"value": "fast"}, timeout=30) == {"echo": "fast"}
    # Longer than the first wait inside the start request (1 s): the rest via GET .../wait.
    slow = await steps.slow_echo.run(client, {"value": "slow", "seconds": 1.3}, timeout=30)
    assert slow == {"echo": "slow"}
    with pytest.raises(WorkflowFailedError, match="asked to fail: bad"):
        await steps.slow_echo.run(client, {"value": "bad", "fail": True}, timeout=30)


async def test_workflow_run_timeout_covers_both_waits(client: polos.PolosClient) -> None:
    t0 = time.monotonic()
    with pytest.raises(WorkflowTimeoutError) as caught:
        await steps.slow_echo.run(client, {"value": "late", "seconds": 3}, timeout=1.5)
    assert 1.5 <= time.monotonic() - t0 < 2.8
    assert "1.5 seconds" in str(caught.value)
