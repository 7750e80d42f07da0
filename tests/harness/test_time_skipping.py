"""Time skipping: `env.advance(...)` fires what falls due, in order, without real waiting.

Durable waits (wait_for, wait_until), suspend timeouts, run timeouts, delayed workflow retries
and schedule slots; the order of timers, also of timers created by what an earlier timer
woke; and the semantics of settle (what counts as settled)."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

import polos
from polos.testing import Environment
from tests import pg
from tests.harness import apps


def moment(iso: str) -> datetime:
    return datetime.fromisoformat(iso.replace("Z", "+00:00"))


async def status(env: Environment, execution_id: str) -> str:
    return str((await env.client.get_execution(execution_id))["status"])


async def test_wait_for_hours_fires_when_the_clock_gets_there() -> None:
    async with Environment(workflows=apps.PLAIN) as env:
        handle = await apps.h_sleeper.invoke(env.client, {"name": "two-hours", "hours": 2})
        start = env.now()
        await env.advance(hours=1, minutes=59)
        assert await status(env, handle.id) == "waiting"
        assert apps.LOG == []
        after = await env.advance(minutes=1)
        assert await status(env, handle.id) == "completed"
        assert apps.LOG == ["two-hours"]
        assert timedelta(hours=2) <= after - start < timedelta(hours=2, seconds=30)


async def test_wait_until_a_moment_of_the_environments_clock() -> None:
    async with Environment(workflows=apps.PLAIN) as env:
        at = env.now() + timedelta(hours=5)
        handle = await apps.h_until.invoke(env.client, {"at": at.isoformat()})
        await env.advance(hours=4)
        assert await status(env, handle.id) == "waiting"
        await env.advance(hours=1)
        assert await handle.result(env.client, timeout=5) == "reached"
        row = await env.client.get_execution(handle.id)
        assert moment(row["completed_at"]) >= at


async def test_workflow_code_sees_the_environments_clock() -> None:
    async with Environment(workflows=apps.PLAIN) as env:
        await env.advance(days=10)  # far from the real time
        handle = await apps.h_clock_reader.invoke(env.client, {})
        await env.settle()
        start = env.now().timestamp()
        await env.advance(days=1)
        assert await status(env, handle.id) == "waiting"  # on the hour it computed itself
        await env.advance(hours=1)
        first, second, third = await handle.result(env.client, timeout=5)
        assert abs(first / 1000 - start) < 60  # ctx.step.now: the environment's time
        assert 86_400 <= (second - first) / 1000 < 86_400 + 60
        assert 3_600 <= (third - second) / 1000 < 3_600 + 60


async def test_suspend_timeout_fires() -> None:
    async with Environment(workflows=apps.PLAIN) as env:
        timing_out = await apps.h_approval.invoke(env.client, {"timeout": 3600})
        resumed = await apps.h_approval.invoke(env.client, {"timeout": 3600})
        await env.settle()
        await env.client.resume("h_approval", resumed.id, "approve", {"ok": True})
        await env.advance(minutes=59)
        assert await status(env, timing_out.id) == "waiting"
        assert await resumed.result(env.client, timeout=5) == {"approved": True}
        await env.advance(minutes=1)
        assert await timing_out.result(env.client, timeout=5) == {
            "approved": False,
            "error_type": "SuspendTimeoutError",
        }


async def test_event_wait_timeout_and_partial_event_batch() -> None:
    async with Environment(workflows=[*apps.PLAIN, apps.h_batcher]) as env:
        heard = await apps.h_listener.invoke(env.client, {"topic": "news"})
        deaf = await apps.h_listener.invoke(env.client, {"topic": "silence"})
        await env.settle()
        await polos.events.publish(env.client, "news", {"data": {"headline": "hi"}})
        for n in range(4):
            await polos.events.publish(env.client, "h-batch", {"data": {"n": n}})
        await env.advance(minutes=9)
        assert await heard.result(env.client, timeout=5) == {"headline": "hi"}
        assert await status(env, deaf.id) == "waiting"
        assert apps.LOG == [[0, 1, 2]]  # a full batch at once; the fourth event waits
        await env.advance(minutes=1)
        assert await deaf.result(env.client, timeout=5) == {"error_type": "EventWaitTimeoutError"}
        assert apps.LOG == [[0, 1, 2], [3]]  # the partial batch, once it is ten minutes old


async def test_run_timeout_cancels() -> None:
    async with Environment(workflows=apps.PLAIN) as env:
        handle = await apps.h_sleeper.invoke(
            env.client, {"name": "late", "hours": 2}, run_timeout_seconds=3600
        )
        await env.advance(hours=1)
        row = await env.client.get_execution(handle.id)
        assert row["status"] == "cancelled"
        assert row["error"]["type"] == "ExecutionTimeoutError"
        await env.advance(hours=2)
        assert apps.LOG == []


async def test_timers_fire_in_order() -> None:
    async with Environment(workflows=apps.PLAIN) as env:
        # Started longest first: the wake-up order is the order of the times, not of starts.
        for name, hours in [("five", 5), ("one", 1), ("four", 4), ("two", 2), ("three", 3)]:
            await apps.h_sleeper.invoke(env.client, {"name": name, "hours": hours})
        await env.advance(hours=5)
        assert apps.LOG == ["one", "two", "three", "four", "five"]


async def test_what_a_timer_wakes_runs_before_later_timers_fire() -> None:
    """h_chain wakes at 1 h and starts a child that waits 1 h more: the child's timer (2 h)
    falls after the 1.5 h sleeper's and before the 2.5 h one, and fires within the same
    advance. A single jump of 3 h would fire the child an hour late."""
    async with Environment(workflows=apps.PLAIN) as env:
        start = env.now()
        chain = await apps.h_chain.invoke(env.client, {"child_hours": 1})
        await apps.h_sleeper.invoke(env.client, {"name": "ninety-minutes", "hours": 1.5})
        await apps.h_sleeper.invoke(env.client, {"name": "150-minutes", "hours": 2.5})
        await env.advance(hours=3)
        assert apps.LOG == ["chain", "ninety-minutes", "chain-child", "150-minutes"]
        assert await chain.result(env.client, timeout=5) == "chain-child"
        row = await env.client.get_execution(chain.id)
        finished = moment(row["completed_at"]) - start
        assert timedelta(hours=2) <= finished < timedelta(hours=2, minutes=1)


async def test_schedule_fires_every_slot_of_a_day_once_in_order() -> None:
    async with Environment(workflows=[apps.h_hourly]) as env:
        start = env.now()
        await env.advance(days=1)
        first = start.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
        expected = [first + timedelta(hours=i) for i in range(24)]
        assert apps.LOG == expected
        response = await env.client.request(
            "GET", "/api/v1/executions", params={"workflow_id": "h_hourly", "limit": "100"}
        )
        rows = response.json()["executions"]
        assert len(rows) == 24
        assert all(r["status"] == "completed" and r["attempt"] == 1 for r in rows)
        # The next day goes on from there.
        await env.advance(hours=2)
        assert apps.LOG[24:] == [first + timedelta(hours=24), first + timedelta(hours=25)]


async def test_delayed_retry_is_skipped_too() -> None:
    async with Environment(workflows=apps.PLAIN, retry_base_delay=600) as env:
        handle = await apps.h_flaky.invoke(env.client, {})
        agenda = await env.settle()
        # The retry waits ten minutes of the environment's time.
        assert await status(env, handle.id) == "queued"
        assert agenda.settled and agenda.next_due_kind == "retry"
        await env.advance(minutes=10)
        assert await handle.result(env.client, timeout=5) == "second attempt"
        assert (await env.client.get_execution(handle.id))["retry_count"] == 1


async def test_advance_by_zero_settles_and_negative_is_refused() -> None:
    async with Environment(workflows=apps.PLAIN, max_retries=0) as env:
        handle = await apps.h_fan_out.invoke(env.client, {"ns": [1, 2, 3]})
        before = env.now()
        after = await env.advance()
        assert after - before < timedelta(seconds=30)
        assert await status(env, handle.id) == "completed"
        with pytest.raises(ValueError, match="only moves forward"):
            await env.advance(seconds=-1)


async def test_combined_units() -> None:
    async with Environment(workflows=apps.PLAIN) as env:
        start = env.now()
        end = await env.advance(weeks=1, days=1, hours=1, minutes=1, seconds=1)
        skipped = end - start
        assert timedelta(days=8, hours=1, minutes=1, seconds=1) <= skipped
        assert skipped < timedelta(days=8, hours=1, minutes=1, seconds=31)


async def test_on_postgresql() -> None:
    """`database_url` may name PostgreSQL: the same agenda, in the same order."""
    url = pg.create_database("polos_harness")
    try:
        async with Environment(workflows=[*apps.PLAIN, apps.h_hourly], database_url=url) as env:
            assert env.database_url == url
            out = await apps.h_fan_out.run(env.client, {"ns": [1, 2, 3]})
            assert out["results"] == [1, 4, 9]
            for name, hours in [("three", 3), ("one", 1), ("two", 2)]:
                await apps.h_sleeper.invoke(env.client, {"name": name, "hours": hours})
            await env.advance(hours=3)
            slots = [entry for entry in apps.LOG if isinstance(entry, datetime)]
            woken = [entry for entry in apps.LOG if isinstance(entry, str)]
            assert woken == ["one", "two", "three"]
            assert len(slots) == 3 and slots == sorted(slots)
    finally:
        pg.drop_database(url)


async def test_short_waits_follow_the_clock_too() -> None:
    """Every wait suspends in the environment (wait_threshold_seconds=0): a five-second wait
    ends when the clock says so, not after five real seconds."""
    async with Environment(workflows=apps.PLAIN) as env:
        handle = await apps.h_sleeper.invoke(env.client, {"name": "short", "hours": 5 / 3600})
        await env.settle()
        assert await status(env, handle.id) == "waiting"
        await env.advance(seconds=5)
        assert await handle.result(env.client, timeout=5) == "short"
