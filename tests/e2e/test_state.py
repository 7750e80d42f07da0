"""Workflow state (issue 5), against real server and worker processes on SQLite and PostgreSQL.

`state_schema` gives `ctx.state` (from `initial_state`, else the schema's defaults). The state is
saved with every suspension, failure and completion and shown by `get_execution()["state"]`. A
replay rebuilds it from `initial_state` by re-running the code, so mutations are applied once
(upstream saved it only on completion).
"""

from __future__ import annotations

from pathlib import Path

import polos
from tests.e2e.apps import model_state
from tests.e2e.model_helpers import TIMEOUT, log_lines, reach_status

FRESH = {"count": 0, "items": [], "note": "fresh"}


async def test_state_is_saved_on_suspend_and_completion(
    clock_client: polos.PolosClient, tmp_path: Path
) -> None:
    client = clock_client
    log = tmp_path / "state.log"
    handle = await model_state.st_counter.invoke(
        client, {"log": str(log)}, initial_state={"count": 5, "note": "given"}
    )
    row = await reach_status(client, handle.id, "waiting")
    assert row["state"] == {"count": 6, "items": ["start"], "note": "given"}

    await client.resume("st_counter", handle.id, "pause", {"go": True})
    out = await handle.result(client, timeout=TIMEOUT)
    # 5 + 1 + 10 once: the replay started again from initial_state, not from the saved state.
    assert out == {"count": 16, "items": ["start", "resumed"]}
    row = await client.get_execution(handle.id)
    assert row["state"] == {"count": 16, "items": ["start", "resumed"], "note": "after the pause"}
    # Both body runs started from initial_state (validated into the schema).
    starts = [line["start"] for line in log_lines(log)]
    assert starts == [{"count": 5, "items": [], "note": "given"}] * 2


async def test_state_defaults_and_saved_on_failure(clock_client: polos.PolosClient) -> None:
    client = clock_client
    handle = await model_state.st_counter.invoke(client, {"fail": True})
    row = await reach_status(client, handle.id, "waiting")
    assert row["state"] == {**FRESH, "count": 1, "items": ["start"]}
    await client.resume("st_counter", handle.id, "pause", {})
    row = await client.wait_for_execution(handle.id, timeout=TIMEOUT)
    assert row["status"] == "failed"
    assert row["error"]["type"] == "StepExecutionError"
    assert row["state"] == {"count": 11, "items": ["start", "resumed"], "note": "after the pause"}


async def test_state_of_a_workflow_without_schema_is_none(clock_client: polos.PolosClient) -> None:
    from tests.e2e.apps import model_waits

    handle = await model_waits.wait_short.invoke(clock_client, {"seconds": 0.01})
    await handle.result(clock_client, timeout=TIMEOUT)
    assert (await clock_client.get_execution(handle.id))["state"] is None
