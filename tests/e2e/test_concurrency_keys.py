"""Concurrency keys (issue 5), against real server and worker processes on SQLite and
PostgreSQL.

A queue with concurrency_limit=2 gives each concurrency key its own two slots: never more than
two executions of one key run at once, and a key that floods the queue does not hold the others
back (50 of key A submitted before 5 of key B: B is done long before A's last). Keys can be set
on `Workflow.invoke`/`run`, `PolosClient.invoke`, per `BatchWorkflowInput` item, and on
`ctx.step.invoke`, `invoke_and_wait`, `batch_invoke(_and_wait)`.
"""

from __future__ import annotations

from pathlib import Path

import polos
from polos.types.types import BatchWorkflowInput
from tests.e2e.apps import model_keys
from tests.e2e.model_helpers import TIMEOUT


def per_key_peaks(lines: list[str]) -> dict[str, int]:
    """The most executions of each key running at once (an end at equal time counts first)."""
    events: dict[str, list[tuple[float, int]]] = {}
    for line in lines:
        kind, stamp, key, *_ = line.split()
        events.setdefault(key, []).append((float(stamp), 0 if kind == "end" else 1))
    peaks = {}
    for key, items in events.items():
        running = peak = 0
        for _, kind in sorted(items):
            running += 1 if kind else -1
            peak = max(peak, running)
        peaks[key] = peak
    return peaks


def ends(lines: list[str], key: str) -> list[float]:
    return sorted(
        float(line.split()[1])
        for line in lines
        if line.startswith("end ") and line.split()[2] == key
    )


async def test_a_flooding_key_does_not_starve_another(
    clock_client: polos.PolosClient, tmp_path: Path
) -> None:
    client = clock_client
    log = tmp_path / "keys.log"
    payload = {"seconds": 0.05, "log": str(log)}
    flood = await client.batch_invoke(
        [
            BatchWorkflowInput(
                id="keyed", payload={**payload, "key": "A", "i": i}, concurrency_key="A"
            )
            for i in range(50)
        ]
    )
    few = [
        await model_keys.keyed.invoke(client, {**payload, "key": "B", "i": i}, concurrency_key="B")
        for i in range(4)
    ]
    few.append(
        await client.invoke(
            "keyed",
            {**payload, "key": "B", "i": 4},
            queue_name="model_keyed_q",
            concurrency_key="B",
        )
    )
    for handle in few + flood:
        row = await client.wait_for_execution(handle.id, timeout=TIMEOUT)
        assert row["status"] == "completed", row
    rows = {h.id: await client.get_execution(h.id) for h in flood + few}
    assert {rows[h.id]["concurrency_key"] for h in flood} == {"A"}
    assert {rows[h.id]["concurrency_key"] for h in few} == {"B"}
    assert {r["queue_name"] for r in rows.values()} == {"model_keyed_q"}

    lines = log.read_text().splitlines()
    assert len(lines) == 2 * 55  # each ran once
    peaks = per_key_peaks(lines)
    assert peaks == {"A": 2, "B": 2}, peaks  # two slots per key, both used
    a_ends, b_ends = ends(lines, "A"), ends(lines, "B")
    # B did not queue behind A's flood: most of A was still to come when B was done.
    still_running = sum(1 for t in a_ends if t > b_ends[-1])
    assert still_running >= 30, (still_running, b_ends[-1], a_ends[-1])


async def test_concurrency_key_on_every_api(clock_client: polos.PolosClient) -> None:
    client = clock_client
    out = await model_keys.keyed.run(
        client, {"key": "k-run", "i": 0}, concurrency_key="k-run", timeout=TIMEOUT
    )
    assert out == {"key": "k-run", "i": 0}

    handle = await model_keys.keyed_parent.invoke(client, {})
    result = await handle.result(client, timeout=TIMEOUT)
    assert result["waited"] == {"key": "k-wait", "i": 1}
    assert result["batch_ok"]
    children = {
        result["fire"]: "k-invoke",
        result["batch"][0]: "k-b0",
        result["batch"][1]: "k-b1",
        result["batch_fire"][0]: "k-bf",
    }
    for execution_id, key in children.items():
        row = await client.wait_for_execution(execution_id, timeout=TIMEOUT)
        assert row["status"] == "completed"
        assert row["concurrency_key"] == key, row
        assert row["queue_name"] == "model_keyed_q"
        assert row["parent_execution_id"] == handle.id
    listed = await client.request(
        "GET", "/api/v1/executions", params={"parent_execution_id": handle.id}
    )
    keys = sorted(r["concurrency_key"] for r in listed.json()["executions"])
    assert keys == ["k-b0", "k-b1", "k-bf", "k-invoke", "k-wait"]
