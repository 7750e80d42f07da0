"""Parked claims: a worker's long-poll claim is answered by the transaction that makes work
ready (on SQLite it runs inside it), and a claim whose worker hung up takes nothing."""

from __future__ import annotations

import asyncio
import time

import httpx

from tests.e2e.conftest import ServerFactory

WORKFLOW = "parked_claim_probe"


async def _register(http: httpx.AsyncClient) -> str:
    response = await http.post(
        "/api/v1/workers",
        json={"capacity": 10, "workflows": [{"workflow_id": WORKFLOW, "queue_name": "probe"}]},
    )
    assert response.status_code == 200, response.text
    worker_id: str = response.json()["worker_id"]
    return worker_id


async def _submit(http: httpx.AsyncClient) -> str:
    response = await http.post(f"/api/v1/workflows/{WORKFLOW}/run", json={"payload": {"n": 1}})
    assert response.status_code == 200, response.text
    execution_id: str = response.json()["execution_id"]
    return execution_id


async def test_a_parked_claim_takes_what_is_submitted_while_it_waits(
    start_server: ServerFactory,
) -> None:
    server = start_server()
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
        worker_id = await _register(http)
        claim = asyncio.create_task(
            http.post(f"/api/v1/workers/{worker_id}/claim", json={"max": 5, "wait_seconds": 20})
        )
        await asyncio.sleep(0.3)  # parked by now
        assert not claim.done()
        t0 = time.monotonic()
        execution_id = await _submit(http)
        response = await claim
        assert response.status_code == 200, response.text
        assert time.monotonic() - t0 < 5
        claimed = response.json()["executions"]
        assert [e["id"] for e in claimed] == [execution_id]
        assert claimed[0]["attempt"] == 1
        row = (await http.get(f"/api/v1/executions/{execution_id}")).json()
        assert row["status"] == "running"
        assert row["worker_id"] == worker_id


async def test_a_claim_whose_worker_hung_up_takes_nothing(start_server: ServerFactory) -> None:
    server = start_server()
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
        worker_id = await _register(http)
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as gone:
            claim = asyncio.create_task(
                gone.post(f"/api/v1/workers/{worker_id}/claim", json={"max": 5, "wait_seconds": 20})
            )
            await asyncio.sleep(0.3)
            claim.cancel()  # the worker hangs up while its claim is parked
        await asyncio.sleep(0.5)  # the server notices the closed connection
        execution_id = await _submit(http)
        await asyncio.sleep(0.5)
        row = (await http.get(f"/api/v1/executions/{execution_id}")).json()
        assert row["status"] == "queued", row
        assert row["attempt"] == 0
        # A live claim still gets it.
        response = await http.post(
            f"/api/v1/workers/{worker_id}/claim", json={"max": 5, "wait_seconds": 5}
        )
        assert [e["id"] for e in response.json()["executions"]] == [execution_id]
