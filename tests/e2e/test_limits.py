"""Bad input gets a 4xx or a typed error, and the rest keeps working (issue 4): size limits,
values JSON cannot carry, empty batches; idempotent starts from clients and from steps."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

import polos
from tests.e2e.apps import limits
from tests.e2e.conftest import Server, ServerFactory, WorkerFactory

TIMEOUT = 60.0
LIMIT = 10_000


async def _http(method: str, url: str, **kwargs: object) -> httpx.Response:
    async with httpx.AsyncClient() as http:
        return await http.request(method, url, **kwargs)  # type: ignore[arg-type]


@pytest.fixture
def small_limit(
    start_server: ServerFactory, start_worker: WorkerFactory, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Server]:
    """A server that stores values of at most 10,000 bytes, and a worker."""
    monkeypatch.setenv("POLOS_MAX_VALUE_BYTES", str(LIMIT))
    server = start_server()
    monkeypatch.delenv("POLOS_MAX_VALUE_BYTES")
    start_worker(server, "tests.e2e.apps.limits")
    yield server


async def test_an_oversize_payload_is_refused_with_413(small_limit: Server) -> None:
    response = await _http(
        "POST",
        f"{small_limit.url}/api/v1/workflows/limits_target/run",
        json={"payload": {"text": "x" * (LIMIT + 10)}},
    )
    assert response.status_code == 413
    assert "payload is" in response.json()["error"]["message"]
    async with polos.PolosClient(api_url=small_limit.url) as client:
        with pytest.raises(polos.PolosApiError) as caught:
            await limits.limits_target.invoke(client, {"text": "y" * (LIMIT + 10)})
        assert caught.value.status == 413
        # The rest keeps working.
        assert await limits.limits_target.run(client, {"ok": 1}, timeout=TIMEOUT) == {"ok": 1}


async def test_an_oversize_step_result_fails_only_that_child(small_limit: Server) -> None:
    async with polos.PolosClient(api_url=small_limit.url) as client:
        results = await limits.big_in_batch.run(
            client, {"sizes": [10, LIMIT * 2, 20]}, timeout=TIMEOUT
        )
    assert [r["success"] for r in results] == [True, False, True]
    assert results[0]["result"] == {"length": 10} and results[2]["result"] == {"length": 20}
    failed = results[1]
    assert "Step 'make_text' returned" in failed["error"] and f"limit is {LIMIT}" in failed["error"]
    assert failed["error_type"] == "StepExecutionError"


async def test_an_oversize_result_fails_the_execution_once(small_limit: Server) -> None:
    async with polos.PolosClient(api_url=small_limit.url) as client:
        handle = await limits.big_result.invoke(client, {"size": LIMIT * 2})
        row = await client.wait_for_execution(handle.id, TIMEOUT)
    assert row["status"] == "failed"
    assert row["error"]["type"] == "ValueTooLargeError"
    assert f"limit is {LIMIT}" in row["error"]["message"]
    assert row["retry_count"] == 0


async def test_values_json_cannot_carry(client: polos.PolosClient, shared: Server) -> None:
    with pytest.raises(TypeError):  # codec.EncodeError, before anything is sent
        await limits.limits_target.invoke(client, {"x": float("nan")})
    with pytest.raises(TypeError):
        await limits.limits_target.invoke(client, {"x": object()})
    raw = await _http(
        "POST",
        f"{shared.url}/api/v1/workflows/limits_target/run",
        content=b'{"payload": {"x": NaN}}',
        headers={"content-type": "application/json"},
    )
    assert raw.status_code == 422
    # NUL inside a string is JSON (escaped): it round-trips.
    assert await limits.limits_target.run(client, {"s": "a\x00b"}, timeout=TIMEOUT) == {
        "s": "a\x00b"
    }
    # A step returning NaN fails that step with a typed error; a NUL in a step key is refused.
    nan = await client.wait_for_execution((await limits.nan_step.invoke(client, {})).id, TIMEOUT)
    assert nan["status"] == "failed" and "Step 'nan'" in nan["error"]["message"]
    bad_key = await client.wait_for_execution((await limits.nul_key.invoke(client, {})).id, TIMEOUT)
    assert bad_key["status"] == "failed"
    assert bad_key["error"]["type"] == "InvalidStepKeyError" and bad_key["retry_count"] == 0
    # Identifiers with NUL bytes are refused with 4xx by the API.
    for path in ["/api/v1/workflows/a%00b/run", "/api/v1/executions/a%00b"]:
        response = await _http(
            "POST" if path.endswith("run") else "GET", f"{shared.url}{path}", json={}
        )
        assert 400 <= response.status_code < 500, (path, response.text)


async def test_empty_batches(client: polos.PolosClient) -> None:
    result = await limits.empty_batches.run(client, {}, timeout=TIMEOUT)
    assert result == {"waited": [], "fired": []}
    assert await client.batch_invoke([]) == []


async def test_idempotent_starts_from_clients_and_steps(client: polos.PolosClient) -> None:
    first = await limits.limits_target.invoke(client, {"n": 1}, idempotency_key="order-17")
    again = await limits.limits_target.invoke(client, {"n": 2}, idempotency_key="order-17")
    assert again.id == first.id
    row = await client.wait_for_execution(first.id, TIMEOUT)
    assert row["result"] == {"n": 1}  # the second start changed nothing
    # Two parents starting the same keyed child: one child, the first one's.
    a = await limits.start_once.run(client, {"key": "report-1"}, timeout=TIMEOUT)
    b = await limits.start_once.run(client, {"key": "report-1"}, timeout=TIMEOUT)
    assert a == b
    child = await client.wait_for_execution(a, TIMEOUT)
    assert child["workflow_id"] == "limits_target"
    # A client start with the same key names the same execution.
    assert (await client.invoke("limits_target", {}, idempotency_key="report-1")).id == a
    listed = (
        await _http(
            "GET",
            f"{client.api_url}/api/v1/executions",
            params={"workflow_id": "limits_target", "limit": 500},
        )
    ).json()["executions"]
    assert sum(1 for e in listed if e["id"] == a) == 1
