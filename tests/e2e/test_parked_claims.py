"""Parked claims: a worker's long-poll claim is answered by the transaction that makes work
ready (on SQLite it runs inside it), and a claim whose worker hung up takes nothing."""

from __future__ import annotations

import asyncio
import time

import httpx

from tests.e2e.conftest import ServerFactory
from tests.e2e.protocol_helpers import register_protocol_worker

WORKFLOW = "parked_claim_probe"


async def _register(http: httpx.AsyncClient) -> str:
    return await register_protocol_worker(http, WORKFLOW, "probe")


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


async def _claim(http: httpx.AsyncClient, worker_id: str, wait: float) -> list[str]:
    response = await http.post(
        f"/api/v1/workers/{worker_id}/claim", json={"max": 5, "wait_seconds": wait}
    )
    assert response.status_code == 200, response.text
    return [e["id"] for e in response.json()["executions"]]


async def test_work_submitted_after_a_claim_that_took_less_than_it_asked_is_found_at_once(
    start_server: ServerFactory,
) -> None:
    """A claim that took fewer than it asked for lets the worker's next claim skip looking
    (PostgreSQL) only while nothing was signalled: a submission in between is found at once."""
    server = start_server()
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
        worker_id = await _register(http)
        first = await _submit(http)
        assert await _claim(http, worker_id, 5) == [first]  # asked for 5, took 1
        second = await _submit(http)
        # Without waiting at all: the claim must look, since a submission was signalled
        # after the first claim looked (skipping, it would answer empty at once).
        assert await _claim(http, worker_id, 0) == [second]


async def test_work_submitted_after_a_parked_claim_took_less_than_it_asked_is_found_at_once(
    start_server: ServerFactory,
) -> None:
    """The same for a claim answered while parked (on SQLite inside the submission's
    transaction): what the next submission makes ready is found by a claim that does not
    wait, and a further one parks and is woken."""
    server = start_server()
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
        worker_id = await _register(http)
        parked = asyncio.create_task(_claim(http, worker_id, 20))
        await asyncio.sleep(0.3)  # parked by now
        first = await _submit(http)
        assert await parked == [first]  # asked for 5, took 1
        second = await _submit(http)
        assert await _claim(http, worker_id, 0) == [second]
        # Took 1 of 5 again, then nothing is signalled: the next claim finds nothing, parks,
        # and the next submission wakes it.
        waiting = asyncio.create_task(_claim(http, worker_id, 20))
        await asyncio.sleep(0.3)
        assert not waiting.done()
        third = await _submit(http)
        assert await waiting == [third]


async def test_after_a_claim_that_took_less_than_it_asked_the_next_one_parks_and_is_woken(
    start_server: ServerFactory,
) -> None:
    server = start_server()
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
        worker_id = await _register(http)
        first = await _submit(http)
        assert await _claim(http, worker_id, 5) == [first]
        # Nothing new: the next claim waits its whole (short) long-poll and gets nothing.
        t0 = time.monotonic()
        assert await _claim(http, worker_id, 0.5) == []
        assert time.monotonic() - t0 >= 0.4
        claim = asyncio.create_task(_claim(http, worker_id, 20))
        await asyncio.sleep(0.3)  # parked by now
        assert not claim.done()
        t0 = time.monotonic()
        second = await _submit(http)
        assert await claim == [second]
        assert time.monotonic() - t0 < 5
        # And the first claim's execution was not handed out twice.
        row = (await http.get(f"/api/v1/executions/{first}")).json()
        assert row["attempt"] == 1


async def test_a_claim_of_a_worker_that_left_is_told_so(start_server: ServerFactory) -> None:
    """The claim reads its worker in its own transaction only: a worker that deregistered
    (the server still knows which project it was in) gets 404, at once or while parked, and
    what is submitted meanwhile stays queued for the others."""
    server = start_server()
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
        leaving = await _register(http)
        staying = await _register(http)
        parked = asyncio.create_task(
            http.post(f"/api/v1/workers/{leaving}/claim", json={"max": 5, "wait_seconds": 20})
        )
        await asyncio.sleep(0.3)  # parked by now
        assert not parked.done()
        assert (await http.delete(f"/api/v1/workers/{leaving}")).status_code == 204
        execution_id = await _submit(http)
        response = await asyncio.wait_for(parked, 10)
        assert response.status_code == 404, response.text
        assert response.json()["error"]["code"] == "worker_not_found"
        again = await http.post(
            f"/api/v1/workers/{leaving}/claim", json={"max": 5, "wait_seconds": 0}
        )
        assert again.status_code == 404, again.text
        assert again.json()["error"]["code"] == "worker_not_found"
        row = (await http.get(f"/api/v1/executions/{execution_id}")).json()
        assert row["status"] == "queued", row
        taken = await http.post(
            f"/api/v1/workers/{staying}/claim", json={"max": 5, "wait_seconds": 5}
        )
        assert [e["id"] for e in taken.json()["executions"]] == [execution_id]
