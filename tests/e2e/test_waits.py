"""Waits (issue 5), against real server and worker processes on SQLite and PostgreSQL.

- A short `wait_for` (up to POLOS_WAIT_THRESHOLD_SECONDS) sleeps in place: one attempt.
- A long one suspends: the execution is `waiting`, holds no worker or queue slot, and a durable
  timer wakes it; the test clock moves time instead of the test waiting.
- `wait_until`: a naive datetime is UTC (the worker runs in a +05:30 timezone, so reading it as
  local time would show), an aware one keeps its offset, a past one fails the step.
- The waits return None on the first run and on the replay alike.
- A timer survives a server restart, and one that came due while the server was down fires.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

import polos
from tests.e2e.apps import model_waits
from tests.e2e.conftest import MODEL_WORKER_TZ, Server, ServerFactory, WorkerFactory
from tests.e2e.model_helpers import (
    TIMEOUT,
    advance_clock,
    db,
    log_lines,
    reach_status,
    server_time,
)


async def test_short_wait_sleeps_in_place(clock_client: polos.PolosClient, tmp_path: Path) -> None:
    log = tmp_path / "short.log"
    handle = await model_waits.wait_short.invoke(clock_client, {"seconds": 0.4, "log": str(log)})
    out = await handle.result(clock_client, timeout=TIMEOUT)
    assert out["value"] is None
    assert out["slept"] >= 0.4
    row = await clock_client.get_execution(handle.id)
    assert row["status"] == "completed"
    assert row["attempt"] == 1, row  # never suspended: claimed once, no replay
    assert len(log_lines(log)) == 1


async def test_long_wait_suspends_without_a_slot_and_the_clock_fires_it(
    clock_server: Server, clock_client: polos.PolosClient, tmp_path: Path
) -> None:
    client = clock_client
    log = tmp_path / "long.log"
    # Both run in a queue with ONE slot: the second can only start once the first waits.
    long = await model_waits.wait_long.invoke(client, {"minutes": 30, "log": str(log)})
    shorter = await model_waits.wait_long.invoke(client, {"minutes": 20})
    row = await reach_status(client, long.id, "waiting")
    assert row["worker_id"] is None
    await reach_status(client, shorter.id, "waiting")
    # A third execution of the one-slot queue runs to the end while both wait.
    assert await model_waits.wait_quick.run(client, {"i": 7}, timeout=TIMEOUT) == {"quick": 7}
    usage = db(
        clock_server,
        "SELECT COALESCE(SUM(running), 0) FROM queue_usage WHERE queue_name = 'model_wait_q'",
    )
    assert usage == [(0,)]

    # 25 minutes later the 20-minute wait is over, the 30-minute one is not (both timers are
    # taken by the same sweep: once `shorter` is done, `long` was looked at too).
    await advance_clock(client, 25 * 60)
    assert await shorter.result(client, timeout=TIMEOUT) == {"short": None, "long": None}
    assert (await client.get_execution(long.id))["status"] == "waiting"

    await advance_clock(client, 5 * 60 + 1)
    assert await long.result(client, timeout=TIMEOUT) == {"short": None, "long": None}
    row = await client.get_execution(long.id)
    assert row["attempt"] == 2, row  # the first run, then the replay after the timer

    # The same values on the first run and on the replay.
    lines = log_lines(log)
    assert [line["phase"] for line in lines] == ["before_long", "before_long", "after_long"]
    assert all(line["short"] is None for line in lines)
    assert lines[-1]["long"] is None


async def test_wait_until_naive_is_utc_and_aware_keeps_its_offset(
    clock_client: polos.PolosClient,
) -> None:
    client = clock_client
    now = await server_time(client)
    naive = datetime.fromtimestamp(now + 3600, UTC).replace(tzinfo=None)
    plus_two = timezone(timedelta(hours=2))
    aware = datetime.fromtimestamp(now + 7200, plus_two)
    h_naive = await model_waits.wait_until_wf.invoke(client, {"at": naive.isoformat()})
    h_aware = await model_waits.wait_until_wf.invoke(client, {"at": aware.isoformat()})
    await reach_status(client, h_naive.id, "waiting")
    await reach_status(client, h_aware.id, "waiting")

    await advance_clock(client, 3600 + 1)
    out = await h_naive.result(client, timeout=TIMEOUT)
    # Read as local time (+05:30) it would have been in the past: a failed step.
    assert out == {"value": None, "naive": True, "tz": MODEL_WORKER_TZ}
    assert (await client.get_execution(h_aware.id))["status"] == "waiting"

    await advance_clock(client, 3600)
    assert await h_aware.result(client, timeout=TIMEOUT) == {
        "value": None,
        "naive": False,
        "tz": MODEL_WORKER_TZ,
    }


async def test_wait_until_in_the_past_fails_the_step(clock_client: polos.PolosClient) -> None:
    past = datetime.now(UTC) - timedelta(minutes=1)
    handle = await model_waits.wait_until_wf.invoke(clock_client, {"at": past.isoformat()})
    row = await clock_client.wait_for_execution(handle.id, timeout=TIMEOUT)
    assert row["status"] == "failed", row
    assert row["error"]["type"] == "StepExecutionError"
    assert "in the past" in row["error"]["message"]
    assert row["retry_count"] == 0  # StepExecutionError escaping is final
    with pytest.raises(polos.WorkflowFailedError, match="in the past"):
        await handle.result(clock_client, timeout=TIMEOUT)


async def test_timers_survive_a_server_restart(
    start_server: ServerFactory, start_worker: WorkerFactory
) -> None:
    """Two waiting executions when the server stops: one on a real 2-second timer (the worker's
    threshold is lowered to 0.5 s, so it suspends), which comes due while the server is down or
    just after; one on a 30-minute timer, fired by the restarted server's test clock. The clock
    offset lives in the server process: the restarted server starts at the real time again,
    which is where the 30-minute timer was registered from."""
    server = start_server(test_clock=True)
    start_worker(server, "tests.e2e.apps.model_waits", env={"POLOS_WAIT_THRESHOLD_SECONDS": "0.5"})
    async with polos.PolosClient(api_url=server.url) as client:
        real = await model_waits.wait_secs.invoke(client, {"seconds": 2})
        long = await model_waits.wait_long.invoke(client, {"minutes": 30})
        await reach_status(client, real.id, "waiting")
        await reach_status(client, long.id, "waiting")

        server.stop()
        server.start()  # same port, same database

        assert await real.result(client, timeout=TIMEOUT) == {"value": None}
        assert (await client.get_execution(long.id))["status"] == "waiting"
        await advance_clock(client, 30 * 60 + 1)
        assert await long.result(client, timeout=TIMEOUT) == {"short": None, "long": None}
        for handle in (real, long):
            row = await client.get_execution(handle.id)
            assert row["attempt"] == 2, row  # suspended once, woken once
