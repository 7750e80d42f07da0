"""polos.testing.Environment: an in-process server (real app, real SQLite) and worker.

Starting, running workflows through `env.client` (run, invoke, result, batch children, fire-
and-forget children), what `settle()` waits for, a self-contained configuration (POLOS_*
variables ignored), `workflows=` and `database_url=`, and a fast shutdown also with work in
flight."""

from __future__ import annotations

import asyncio
import os
import time

import pytest

import polos
from polos import WorkflowFailedError
from polos.testing import Environment, SettleTimeoutError
from tests.harness import apps

# Generous bounds that catch a poll wait or a grace period (seconds), not speed.
SHUTDOWN_BOUND = 2.0


async def test_run_invoke_and_result() -> None:
    # max_retries=0: the failure below is final at once (no retry delays).
    async with Environment(workflows=apps.PLAIN, max_retries=0) as env:
        greeting = await apps.h_greet.run(env.client, {"name": "ada"})
        assert greeting == apps.Greeting(text="hello ada", length=3)

        handle = await apps.h_square.invoke(env.client, {"n": 7})
        assert await handle.result(env.client) == 49
        row = await env.client.get_execution(handle.id)
        assert row["status"] == "completed" and row["result"] == 49

        # The environment itself goes wherever a client goes.
        assert await apps.h_square.run(env, {"n": 3}) == 9
        # By workflow ID, through the client.
        by_id = await env.client.invoke("h_square", {"n": 4})
        assert await env.client.wait_for_result(by_id.id) == 16

        with pytest.raises(WorkflowFailedError, match="negative: -1"):
            await apps.h_square.run(env.client, {"n": -1})


async def test_batch_children_in_input_order() -> None:
    async with Environment(workflows=apps.PLAIN, max_retries=0) as env:
        out = await apps.h_fan_out.run(env.client, {"ns": [1, 2, -3, 4, 5]})
        assert out["results"] == [1, 4, None, 16, 25]
        assert [e is not None for e in out["errors"]] == [False, False, True, False, False]
        assert "negative: -3" in out["errors"][2]


async def test_settle_waits_for_fire_and_forget_children() -> None:
    async with Environment(workflows=apps.PLAIN) as env:
        children = [{"name": f"c{i}", "hours": 1} for i in range(3)]
        ids = await apps.h_fire_and_forget.run(env.client, {"children": children})
        agenda = await env.settle()
        # Every child ran until its wait: waiting, holding nothing; the next thing due is
        # their timers.
        assert agenda.settled and agenda.running == 0 and agenda.runnable == 0
        assert agenda.next_due_kind == "wake"
        for child in ids:
            assert (await env.client.get_execution(child))["status"] == "waiting"
        await env.advance(hours=1)
        assert sorted(apps.LOG) == ["c0", "c1", "c2"]
        for child in ids:
            assert (await env.client.get_execution(child))["status"] == "completed"


async def test_ignores_polos_environment_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    bad = {
        "POLOS_API_URL": "http://127.0.0.1:9",
        "POLOS_PROJECT_ID": "someone-else",
        "POLOS_API_KEY": "not-a-key",
        "POLOS_DEPLOYMENT_ID": "elsewhere",
        "POLOS_MAX_RETRIES": "not-a-number",
        "POLOS_MAX_CONCURRENT_WORKFLOWS": "0",
        "POLOS_WAIT_THRESHOLD_SECONDS": "100000",
        "POLOS_SQLITE_SYNCHRONOUS": "bogus",
        "POLOS_DATABASE_URL": "postgresql://nobody@127.0.0.1:9/none",
        "POLOS_LEASE_SECONDS": "-1",
        "POLOS_TEST_CLOCK": "0",
    }
    for name, value in bad.items():
        monkeypatch.setenv(name, value)
    async with Environment(workflows=apps.PLAIN) as env:
        assert env.client.api_url == env.url != bad["POLOS_API_URL"]
        assert env.client.project_id == "default" and env.client.api_key is None
        assert env.worker.deployment_id is None and env.worker.capacity == 100
        assert env.settings.max_workflow_retries == 2
        assert env.database_url.startswith("sqlite:///")
        assert await apps.h_greet.run(env.client, {"name": "x"}) == apps.Greeting(
            text="hello x", length=1
        )
        # Waits follow the environment's clock (the threshold of 100000 s is not used).
        handle = await apps.h_sleeper.invoke(env.client, {"name": "s", "hours": 2})
        await env.advance(hours=2)
        assert await handle.result(env.client, timeout=5) == "s"
    # Given back as they were.
    assert {name: os.environ.get(name) for name in bad} == bad


async def test_workflows_restricts_what_the_worker_serves(tmp_path: object) -> None:
    url = f"sqlite:///{tmp_path}/shared.db"
    # A first environment registers h_square in the database...
    async with Environment(workflows=[apps.h_square], database_url=url) as env:
        assert await apps.h_square.run(env.client, {"n": 2}) == 4
    # ...a second one on the same database serves only h_greet: h_square is known, so it is
    # queued, and settle() does not wait for it (no live worker serves it).
    async with Environment(workflows=[apps.h_greet], database_url=url) as env:
        handle = await apps.h_square.invoke(env.client, {"n": 3})
        agenda = await env.settle()
        assert agenda.settled and agenda.unserved == 1 and agenda.runnable == 0
        assert (await env.client.get_execution(handle.id))["status"] == "queued"
        assert await apps.h_greet.run(env.client, {"name": "y"}) == apps.Greeting(
            text="hello y", length=1
        )


async def test_serves_every_defined_workflow_by_default() -> None:
    async with Environment() as env:
        assert {"h_greet", "h_hourly"} <= set(env.worker.workflows)
        assert set(polos.get_all_workflows()) == set(env.worker.workflows)
        assert await apps.h_square.run(env.client, {"n": 5}) == 25


async def test_settle_gives_up_naming_what_still_runs() -> None:
    async with Environment(workflows=apps.PLAIN, settle_timeout=0.3) as env:
        handle = await apps.h_busy.invoke(env.client, {"seconds": 60})
        with pytest.raises(SettleTimeoutError, match=r"not settled after 0\.3 s") as info:
            await env.settle()
        assert info.value.agenda.running == 1
        assert any(handle.id in line for line in info.value.agenda.busy)


async def test_shuts_down_fast() -> None:
    began = time.monotonic()
    async with Environment():
        pass
    assert time.monotonic() - began < SHUTDOWN_BOUND

    # With work in flight: a step that would take a minute, and a suspended execution.
    async with Environment(workflows=apps.PLAIN) as env:
        await apps.h_busy.invoke(env.client, {"seconds": 60})
        await apps.h_sleeper.invoke(env.client, {"name": "z", "hours": 5})
        leaving = time.monotonic()
    assert time.monotonic() - leaving < SHUTDOWN_BOUND


async def test_environments_are_isolated() -> None:
    async with Environment(workflows=apps.PLAIN) as first:
        handle = await apps.h_square.invoke(first.client, {"n": 6})
        assert await handle.result(first.client) == 36
        first_db = first.database_url
    async with Environment(workflows=apps.PLAIN) as second:
        assert second.database_url != first_db
        assert (await second.agenda()).settled
        with pytest.raises(polos.PolosApiError):
            await second.client.get_execution(handle.id)


async def test_a_wait_with_a_value_the_server_refuses_fails_its_own_call() -> None:
    """A topic over 255 characters, a negative timeout, a wait of 190 years, a suspension
    whose resume event type would be too long: each fails its step call (ValueError) instead
    of a report request the server refuses, and the execution goes on."""
    # (Before the check, the refused report left the run hanging: the bound catches that.)
    async with Environment(workflows=apps.PLAIN, max_retries=0) as env, asyncio.timeout(60):
        failures = await apps.h_bad_waits.run(env.client, {})
    assert len(failures) == 4, failures
    assert all(f.startswith("ValueError: Step '") for f in failures), failures
    assert "wait_topic" in failures[0]
    assert "wait_timeout_seconds" in failures[1]
    assert "wait_seconds" in failures[2]
    assert "wait_event_type" in failures[3]
