"""Workflow-level retries and hooks (issue 5), against real server and worker processes on
SQLite and PostgreSQL.

- An unexpected exception escaping a workflow is retried by the server up to POLOS_MAX_RETRIES
  times (default 2) with backoff (1 s, 2 s, ...); a step recorded before the failure is not run
  again. A StepExecutionError escaping is final at once (retry_count 0).
- `on_start`/`on_end` hooks run as durable steps (once, whatever the replays); a pydantic
  payload and result pass through untouched unless a hook returns a modification; a None
  result stays None (upstream made it {}); a FAIL stops the workflow before its body runs.
"""

from __future__ import annotations

import asyncio
import itertools
from pathlib import Path

import pytest

import polos
from tests.e2e.apps import model_retries
from tests.e2e.apps.model_retries import LoggedOrder, Receipt
from tests.e2e.conftest import ServerFactory, WorkerFactory
from tests.e2e.model_helpers import TIMEOUT, advance_clock, log_lines, reach_status


async def test_unexpected_exceptions_are_retried_with_backoff(
    clock_client: polos.PolosClient, tmp_path: Path
) -> None:
    client = clock_client
    recovers, gives_up = tmp_path / "recovers.log", tmp_path / "gives_up.log"
    ok = await model_retries.rt_flaky.invoke(client, {"log": str(recovers), "fail_times": 2})
    bad = await model_retries.rt_flaky.invoke(client, {"log": str(gives_up), "fail_times": 5})
    ok_row, bad_row = await asyncio.gather(
        client.wait_for_execution(ok.id, timeout=TIMEOUT),
        client.wait_for_execution(bad.id, timeout=TIMEOUT),
    )
    assert ok_row["status"] == "completed", ok_row
    assert ok_row["result"] == {"retry_count": 2}
    assert ok_row["retry_count"] == 2
    assert bad_row["status"] == "failed", bad_row
    assert bad_row["retry_count"] == 2  # 3 attempts in all
    assert bad_row["error"] == {
        "type": "RuntimeError",
        "message": "unexpected failure on retry 2",
    }
    for log in (recovers, gives_up):
        lines = log_lines(log)
        runs = [line for line in lines if "retry_count" in line]
        assert [line["retry_count"] for line in runs] == [0, 1, 2]
        assert sum(1 for line in lines if line.get("step") == "once") == 1  # not re-run
        gaps = [b["at"] - a["at"] for a, b in itertools.pairwise(runs)]
        assert gaps[0] >= 0.9 and gaps[1] >= 1.9, gaps  # backoff 1 s, then 2 s


async def test_step_execution_error_is_final(
    clock_client: polos.PolosClient, tmp_path: Path
) -> None:
    log = tmp_path / "final.log"
    handle = await model_retries.rt_step_fails.invoke(clock_client, {"log": str(log)})
    row = await clock_client.wait_for_execution(handle.id, timeout=TIMEOUT)
    assert row["status"] == "failed"
    assert row["error"]["type"] == "StepExecutionError"
    assert "this step always fails" in row["error"]["message"]
    assert row["retry_count"] == 0
    assert row["attempt"] == 1
    assert len(log_lines(log)) == 1


async def test_max_retries_setting(
    start_server: ServerFactory, start_worker: WorkerFactory, tmp_path: Path
) -> None:
    server = start_server(env={"POLOS_MAX_RETRIES": "0"})
    start_worker(server, "tests.e2e.apps.model_retries")
    log = tmp_path / "no_retry.log"
    async with polos.PolosClient(api_url=server.url) as client:
        handle = await model_retries.rt_flaky.invoke(client, {"log": str(log), "fail_times": 1})
        row = await client.wait_for_execution(handle.id, timeout=TIMEOUT)
    assert row["status"] == "failed"
    assert row["retry_count"] == 0
    assert row["error"]["type"] == "RuntimeError"
    assert [line["retry_count"] for line in log_lines(log) if "retry_count" in line] == [0]


# --------------------------------------------------------------------------- hooks


async def test_hooks_pass_models_through_and_run_once(
    clock_client: polos.PolosClient, tmp_path: Path
) -> None:
    client = clock_client
    log = tmp_path / "hooks.log"
    handle = await model_retries.hk_plain.invoke(
        client, LoggedOrder(item="pen", quantity=3, log=str(log))
    )
    await reach_status(client, handle.id, "waiting")
    await advance_clock(client, 5 * 60 + 1)
    receipt = await handle.result(client, timeout=TIMEOUT)
    assert receipt == Receipt(item="pen", total=30)
    row = await client.get_execution(handle.id)
    assert row["result"] == {"item": "pen", "total": 30}
    assert row["attempt"] == 2  # the wait made it replay

    lines = log_lines(log)
    starts = [line for line in lines if line.get("hook") == "on_start"]
    ends = [line for line in lines if line.get("hook") == "on_end"]
    bodies = [line for line in lines if "body" in line]
    assert len(starts) == 1 and len(ends) == 1  # hooks are steps: not run again on replay
    assert starts[0]["workflow_id"] == "hk_plain"
    assert starts[0]["payload"] == {"item": "pen", "quantity": 3, "log": str(log)}
    assert ends[0]["output"] == {"item": "pen", "total": 30}
    assert [b["body"] for b in bodies] == ["LoggedOrder", "LoggedOrder"]  # a model each time


async def test_hooks_modify_payload_and_result(
    clock_client: polos.PolosClient, tmp_path: Path
) -> None:
    log = tmp_path / "modify.log"
    receipt = await model_retries.hk_modify.run(
        clock_client, LoggedOrder(item="ink", quantity=3, log=str(log)), timeout=TIMEOUT
    )
    # on_start doubled the quantity (3 -> 6, total 60); on_end added 1000.
    assert receipt == Receipt(item="ink", total=1060)
    lines = log_lines(log)
    assert [line["quantity"] for line in lines if "body" in line] == [6]
    assert [line["output"] for line in lines if line.get("hook") == "on_end"] == [
        {"item": "ink", "total": 1060}
    ]


async def test_none_result_stays_none_through_on_end(
    clock_client: polos.PolosClient, tmp_path: Path
) -> None:
    log = tmp_path / "none.log"
    handle = await model_retries.hk_none.invoke(clock_client, {"log": str(log)})
    assert await handle.result(clock_client, timeout=TIMEOUT) is None
    row = await clock_client.get_execution(handle.id)
    assert row["status"] == "completed"
    assert row["result"] is None
    assert [line["output"] for line in log_lines(log)] == [None]


async def test_a_failing_hook_stops_the_workflow(
    clock_client: polos.PolosClient, tmp_path: Path
) -> None:
    log = tmp_path / "refused.log"
    handle = await model_retries.hk_refused.invoke(clock_client, {"log": str(log)})
    with pytest.raises(polos.WorkflowFailedError, match="refused by the on_start hook"):
        await handle.result(clock_client, timeout=TIMEOUT)
    row = await clock_client.get_execution(handle.id)
    assert row["status"] == "failed"
    assert row["error"]["type"] == "StepExecutionError"
    assert row["retry_count"] == 0
    lines = log_lines(log)
    assert [line.get("hook") for line in lines] == ["on_start"]  # the first hook ran, no body
