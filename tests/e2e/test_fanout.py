"""Fan-out and durability through real processes: 1,000 children, failures inside a batch,
grandchildren, exactly-once recorded steps across replays, falsy step results."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import polos
from polos import protocol
from tests.e2e.apps import engine

TIMEOUT = 120.0


async def _get_many(client: polos.PolosClient, ids: list[str]) -> list[dict[str, Any]]:
    limit = asyncio.Semaphore(32)

    async def one(execution_id: str) -> dict[str, Any]:
        async with limit:
            return await client.get_execution(execution_id)

    return await asyncio.gather(*(one(i) for i in ids))


async def test_thousand_children(client: polos.PolosClient, tmp_path: Path) -> None:
    n = 1000
    log = tmp_path / "children.log"
    handle = await engine.fan_parent.invoke(client, engine.FanOutIn(n=n, log=str(log)))
    summary = await handle.result(client, timeout=TIMEOUT)

    # Rebuilt into the parent's return model on this side, and the children's results were
    # rebuilt into theirs inside the parent (results[i].result.some_field).
    assert isinstance(summary, engine.FanOutSummary)
    assert summary.all_success
    assert summary.count == n
    assert summary.result_types == ["ChildOut"]
    assert summary.some_fields == [i * 3 for i in range(n)]  # input order
    assert summary.labels == [f"child-{i}" for i in range(n)]
    expected_ids = [protocol.child_execution_id(handle.id, "children", i) for i in range(n)]
    assert summary.execution_ids == expected_ids

    # Every child ran its body exactly once (no crash here, so no reason to run twice).
    lines = log.read_text().splitlines()
    assert len(lines) == n
    ran = {int(line.split()[0]): line.split()[1] for line in lines}
    assert ran == dict(enumerate(expected_ids))

    children = await _get_many(client, expected_ids)
    for i, child in enumerate(children):
        assert child["status"] == "completed"
        assert child["workflow_id"] == "fan_child"
        assert child["result"] == {"some_field": i * 3, "label": f"child-{i}"}
        assert child["parent_execution_id"] == handle.id
        assert child["root_execution_id"] == handle.id
        assert child["retry_count"] == 0
        assert child["attempt"] == 1  # claimed once

    # Fetched through a handle, the result is the typed model again.
    fetched = await handle.get(client)
    assert fetched["status"] == "completed"
    assert isinstance(fetched["result"], engine.FanOutSummary)
    assert fetched["result"].some_fields[999] == 2997


async def test_failing_child_in_batch(client: polos.PolosClient) -> None:
    handle = await engine.mixed_batch.invoke(client, {"n": 5, "bad": 2})
    out = await handle.result(client, timeout=TIMEOUT)
    parent = await client.get_execution(handle.id)
    assert parent["status"] == "completed"
    results = out["results"]
    assert [r["success"] for r in results] == [True, True, False, True, True]
    for i, r in enumerate(results):
        if i == 2:
            assert r["result"] is None
            assert "item 2 is broken beyond repair" in r["error"]
        else:
            assert r["result"] == {"i": i, "ok": True}
            assert r["error"] is None
    failed = await client.get_execution(results[2]["execution_id"])
    assert failed["status"] == "failed"
    assert failed["error"]["type"] == "ValueError"
    assert failed["error"]["message"] == "item 2 is broken beyond repair"


async def test_grandchildren_ids(client: polos.PolosClient) -> None:
    handle = await engine.tree_root.invoke(client, {"mids": 3, "leaves": 2})
    out = await handle.result(client, timeout=TIMEOUT)
    root_id = handle.id
    assert out["ok"]
    assert out["execution_id"] == root_id
    assert out["parent_execution_id"] is None
    assert out["root_execution_id"] == root_id

    root = await client.get_execution(root_id)
    assert root["status"] == "completed"
    assert root["parent_execution_id"] is None
    assert root["root_execution_id"] == root_id

    assert len(out["mids"]) == 3
    leaf_count = 0
    for i, mid in enumerate(out["mids"]):
        assert mid["path"] == str(i)
        assert mid["parent_execution_id"] == root_id
        assert mid["root_execution_id"] == root_id
        mid_row = await client.get_execution(mid["execution_id"])
        assert mid_row["status"] == "completed"
        assert mid_row["workflow_id"] == "tree_mid"
        assert mid_row["parent_execution_id"] == root_id
        assert mid_row["root_execution_id"] == root_id
        assert len(mid["leaves"]) == 2
        for j, leaf in enumerate(mid["leaves"]):
            assert leaf["path"] == f"{i}.{j}"
            assert leaf["parent_execution_id"] == mid["execution_id"]
            assert leaf["root_execution_id"] == root_id
            leaf_row = await client.get_execution(leaf["execution_id"])
            assert leaf_row["status"] == "completed"
            assert leaf_row["workflow_id"] == "tree_leaf"
            assert leaf_row["parent_execution_id"] == mid["execution_id"]
            assert leaf_row["root_execution_id"] == root_id
            assert leaf_row["root_workflow_id"] == "tree_root"
            leaf_count += 1
    assert leaf_count == 6


async def test_recorded_step_runs_once_across_replay(
    client: polos.PolosClient, tmp_path: Path
) -> None:
    path = tmp_path / "side_effects.log"
    handle = await engine.side_effect_parent.invoke(client, {"path": str(path)})
    out = await handle.result(client, timeout=TIMEOUT)
    assert out == {"before": "written", "after": 3}
    lines = path.read_text().splitlines()
    # The body ran (at least) twice: before the batch wait and on the replay after it...
    assert lines.count("body") >= 2
    # ...but each recorded step's side effect happened once.
    assert lines.count("before") == 1
    assert lines.count("after") == 1
    assert lines.index("before") < lines.index("after")
    row = await client.get_execution(handle.id)
    assert row["status"] == "completed"
    assert row["attempt"] >= 2  # claimed again after the children woke it: a real replay


async def test_falsy_step_results_replay_as_themselves(
    client: polos.PolosClient, tmp_path: Path
) -> None:
    path = tmp_path / "falsy.log"
    handle = await engine.falsy_steps.invoke(client, {"path": str(path)})
    out = await handle.result(client, timeout=TIMEOUT)
    assert out["child_path"] == "falsy"
    # The values the final (replaying) attempt got back from the journal.
    assert out["values"] == {
        "zero": 0,
        "empty_dict": {},
        "empty_list": [],
        "empty_str": "",
        "false": False,
    }
    assert out["types"] == {
        "zero": "int",
        "empty_dict": "dict",
        "empty_list": "list",
        "empty_str": "str",
        "false": "bool",
    }
    # Each step ran once: a falsy record was not mistaken for "no record".
    assert sorted(path.read_text().splitlines()) == sorted(engine.FALSY)
    row = await client.get_execution(handle.id)
    assert row["attempt"] >= 2
