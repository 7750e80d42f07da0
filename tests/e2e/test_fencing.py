"""Fencing over HTTP, step by step: a worker whose lease ran out and whose execution another
worker claimed again is refused for everything it reports about its old attempt (steps alone,
which the server applies in one statement, and an outcome), the server says so in its log, and
only the new attempt's records count.

The fault test of a stalled worker (tests/faults/test_stalled_worker.py) shows the same from
real worker processes, but there which comes first after the thaw — the stale report, or the
heartbeat answer that makes the worker drop the attempt without reporting — is a race. Here the
"worker" is this test speaking the protocol, so the stale report is certain to be sent."""

from __future__ import annotations

import json

import httpx

from tests.e2e.conftest import ServerFactory, async_wait_until
from tests.e2e.protocol_helpers import register_protocol_worker

WORKFLOW = "fencing_probe"
LEASE = 1.0


async def _register(http: httpx.AsyncClient) -> str:
    return await register_protocol_worker(http, WORKFLOW, "probe")


async def _claim_one(http: httpx.AsyncClient, worker_id: str) -> dict[str, object]:
    response = await http.post(
        f"/api/v1/workers/{worker_id}/claim", json={"max": 1, "wait_seconds": 0}
    )
    assert response.status_code == 200, response.text
    executions = response.json()["executions"]
    assert len(executions) == 1, executions
    claimed: dict[str, object] = executions[0]
    return claimed


def _step(key: str, value: object) -> dict[str, object]:
    return {"key": key, "kind": "run", "status": "completed", "result": json.dumps(value)}


async def _report(
    http: httpx.AsyncClient, worker_id: str, item: dict[str, object]
) -> dict[str, object]:
    response = await http.post(f"/api/v1/workers/{worker_id}/reports", json={"items": [item]})
    assert response.status_code == 200, response.text
    results = response.json()["results"]
    assert len(results) == 1, results
    result: dict[str, object] = results[0]
    return result


async def test_reports_of_an_attempt_that_lost_its_lease_are_refused(
    start_server: ServerFactory,
) -> None:
    server = start_server(lease_seconds=LEASE)
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
        old_worker = await _register(http)
        submitted = await http.post(f"/api/v1/workflows/{WORKFLOW}/run", json={"payload": {}})
        assert submitted.status_code == 200, submitted.text
        execution_id = submitted.json()["execution_id"]
        first = await _claim_one(http, old_worker)
        assert (first["id"], first["attempt"]) == (execution_id, 1)
        # While it holds the lease, its step records are taken.
        ok = await _report(
            http, old_worker, {"execution_id": execution_id, "attempt": 1, "steps": [_step("a", 1)]}
        )
        assert ok["status"] == "ok", ok

        # The old worker falls silent (no heartbeat): the lease runs out, the execution goes
        # back to the queue and a new worker takes it as attempt 2.
        async def requeued() -> bool:
            row = (await http.get(f"/api/v1/executions/{execution_id}")).json()
            return bool(row["status"] == "queued")

        await async_wait_until(requeued, 30, "the lease to run out")
        new_worker = await _register(http)
        second = await _claim_one(http, new_worker)
        assert (second["id"], second["attempt"]) == (execution_id, 2)
        # The journal it replays holds what attempt 1 recorded while it owned the execution.
        journal = second["journal"]
        assert isinstance(journal, list)
        assert [entry["key"] for entry in journal] == ["a"]

        # Everything the old attempt reports now is refused: steps alone ...
        stale_steps = await _report(
            http, old_worker, {"execution_id": execution_id, "attempt": 1, "steps": [_step("b", 2)]}
        )
        # ... an outcome with its last step ...
        stale_outcome = await _report(
            http,
            old_worker,
            {
                "execution_id": execution_id,
                "attempt": 1,
                "steps": [_step("c", 3)],
                "outcome": {"type": "complete", "result": json.dumps("from the old attempt")},
            },
        )
        # ... and the old worker naming the new attempt's number does not make it the owner.
        forged = await _report(
            http,
            old_worker,
            {
                "execution_id": execution_id,
                "attempt": 2,
                "outcome": {"type": "complete", "result": json.dumps("forged")},
            },
        )
        for refused in (stale_steps, stale_outcome, forged):
            assert refused["status"] == "stale", refused
            assert refused["execution_id"] == execution_id

        done = await _report(
            http,
            new_worker,
            {
                "execution_id": execution_id,
                "attempt": 2,
                "steps": [_step("b", 20)],
                "outcome": {"type": "complete", "result": json.dumps("from the new attempt")},
            },
        )
        assert done["status"] == "ok", done
        row = (await http.get(f"/api/v1/executions/{execution_id}")).json()
        assert row["status"] == "completed", row
        assert row["result"] == "from the new attempt"
        assert row["attempt"] == 2
        steps = (
            await http.get(
                f"/api/v1/executions/{execution_id}/steps", params={"include_results": "true"}
            )
        ).json()["steps"]

    assert {s["key"]: s["result"] for s in steps} == {"a": 1, "b": 20}
    assert server.proc is not None
    refusals = [
        line
        for line in server.proc.log().splitlines()
        if f"refused a stale report for execution {execution_id}" in line
        and f"from worker {old_worker}" in line
    ]
    assert len(refusals) == 3, refusals
