"""Cron schedules (issue 5), against real server and worker processes on SQLite and PostgreSQL,
on the servers' test clocks.

- A declarative schedule (`@workflow(schedule="*/5 * * * *")`, and the dict form with a
  timezone and a key) and one made with `polos.schedules.create(...)`: advancing simulated time
  in steps fires every slot exactly once (`SchedulePayload.timestamp` of each slot, none skipped,
  none twice), with `last_timestamp`/`upcoming` chaining the slots.
- The same with two server replicas on one PostgreSQL database, both clocks moved together (so
  both sweep the same due slots at once): still once each.
- Downtime. The clock offset of a test clock lives in the server process: a restarted server
  starts at the real time again, behind the slots the database already reached. So downtime is
  simulated like this: advance a few minutes (slots fire), stop the server, start it again (its
  clock is back at the real time), then advance by the minutes it lost plus 30 minutes of
  "downtime" in ONE jump, so the server sees 30 minutes pass without a sweep, exactly as after
  a real outage. With a one-minute cron and a 10-minute catch-up window, the slots inside the
  window fire once each, in order, and the older ones are recorded as skipped
  (GET /api/v1/schedules/{id}/slots).
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any

import pytest

import polos
from polos import protocol
from tests.e2e.conftest import Server, ServerFactory, WorkerFactory, async_wait_until
from tests.e2e.model_helpers import (
    TIMEOUT,
    advance_clock,
    db,
    executions_of,
    reach_status,
    server_time,
)

MODULE = "tests.e2e.apps.model_schedules"


def ts(iso: str | None) -> float | None:
    return None if iso is None else datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


async def schedules_of(client: polos.PolosClient) -> dict[str, dict[str, Any]]:
    """The project's schedules by "workflow/key"."""
    response = await client.request("GET", f"{protocol.API_PREFIX}/schedules")
    return {f"{s['workflow_id']}/{s['key']}": s for s in response.json()["schedules"]}


async def slots_of(client: polos.PolosClient, schedule_id: str) -> list[dict[str, Any]]:
    response = await client.request(
        "GET", f"{protocol.API_PREFIX}/schedules/{schedule_id}/slots", params={"limit": "1000"}
    )
    return sorted(response.json()["slots"], key=lambda s: ts(s["slot_at"]) or 0.0)


async def settle(client: polos.PolosClient, now: float) -> None:
    """Until every schedule's next slot is after `now` (what was due has been fired)."""

    async def done() -> bool:
        nexts = [ts(s["next_fire_at"]) or 0.0 for s in (await schedules_of(client)).values()]
        return all(t > now for t in nexts)

    await async_wait_until(done, TIMEOUT, "the due slots to fire")


async def fired_runs(client: polos.PolosClient, workflow_id: str, key: str) -> list[dict[str, Any]]:
    """The completed executions of one schedule, by slot."""
    rows = [r for r in await executions_of(client, workflow_id) if r["payload"]["key"] == key]
    for r in rows:
        if r["status"] != "completed":
            r.update(await reach_status(client, r["id"], "completed"))
    return sorted(rows, key=lambda r: ts(r["payload"]["timestamp"]) or 0.0)


def check_chain(runs: list[dict[str, Any]], slots: list[float], step: float) -> None:
    """Every slot once, in order, with the payload chaining them."""
    assert [ts(r["payload"]["timestamp"]) for r in runs] == slots
    for i, r in enumerate(runs):
        payload, result = r["payload"], r["result"]
        expected_last = slots[i - 1] if i else None
        assert ts(payload["last_timestamp"]) == expected_last, (i, payload)
        assert ts(payload["upcoming"]) == slots[i] + step
        # The workflow received it as a SchedulePayload.
        assert result["type"] == "SchedulePayload"
        assert ts(result["timestamp"]) == slots[i]
        # Claimed once: a jump of the test clock expires no lease by itself.
        assert r["attempt"] == 1, r


async def test_every_slot_fires_exactly_once(
    start_server: ServerFactory, start_worker: WorkerFactory
) -> None:
    server = start_server(test_clock=True)
    start_worker(server, MODULE)
    async with polos.PolosClient(api_url=server.url) as client:
        schedule_id = await polos.schedules.create(
            client, "sch_api", "*/10 * * * *", timezone="America/New_York", key="ny"
        )
        # Creating it again changes nothing: one schedule per (workflow, key).
        assert (
            await polos.schedules.schedules.create(
                client, "sch_api", "*/10 * * * *", timezone="America/New_York", key="ny"
            )
            == schedule_id
        )
        start = await schedules_of(client)
        assert set(start) == {"sch_every5/global", "sch_dict/kolkata", "sch_api/ny"}
        assert start["sch_dict/kolkata"]["timezone"] == "Asia/Kolkata"
        assert start["sch_api/ny"]["id"] == schedule_id
        first = {name: ts(s["next_fire_at"]) or 0.0 for name, s in start.items()}

        now = await server_time(client)
        for _ in range(24):  # one hour in steps of 2.5 minutes
            now = await advance_clock(client, 150)
            await settle(client, now)

        expectations = {
            # (workflow, key): (cron period in seconds, timezone)
            ("sch_every5", "global"): (300, "UTC"),
            # 30 past the hour in Kolkata (UTC+05:30) is on the hour in UTC.
            ("sch_dict", "kolkata"): (3600, "Asia/Kolkata"),
            ("sch_api", "ny"): (600, "America/New_York"),
        }
        for (workflow_id, key), (period, zone) in expectations.items():
            begin = first[f"{workflow_id}/{key}"]
            assert begin % period == 0
            slots = [begin + i * period for i in range(int((now - begin) // period) + 1)]
            assert slots and slots[-1] <= now < slots[-1] + period
            runs = await fired_runs(client, workflow_id, key)
            check_chain(runs, slots, period)
            assert {r["payload"]["timezone"] for r in runs} == {zone}
            sid = start[f"{workflow_id}/{key}"]["id"]
            assert {r["payload"]["schedule_id"] for r in runs} == {sid}
            recorded = await slots_of(client, sid)
            assert [ts(s["slot_at"]) for s in recorded] == slots
            assert {s["status"] for s in recorded} == {"fired"}
            assert [s["execution_id"] for s in recorded] == [r["id"] for r in runs]


# Replicas share a PostgreSQL database (one server serves a SQLite file): PostgreSQL only.
@pytest.mark.parametrize("backend", ["postgres"], indirect=True)
async def test_two_replicas_fire_each_slot_once(
    backend: str, start_server: ServerFactory, start_worker: WorkerFactory
) -> None:
    first = start_server(test_clock=True)
    second = start_server(test_clock=True, database_url=first.database_url)
    start_worker(first, MODULE, api_url=f"{first.url},{second.url}")
    replicas: list[Server] = [first, second]
    clients = [polos.PolosClient(api_url=s.url) for s in replicas]
    try:
        client = clients[0]
        start = await schedules_of(client)
        begin = ts(start["sch_every5/global"]["next_fire_at"]) or 0.0
        for _ in range(24):  # two hours of a five-minute cron, both clocks moved at once
            nows = await asyncio.gather(*(advance_clock(c, 300) for c in clients))
            await settle(client, max(nows))
        now = min(await asyncio.gather(*(server_time(c) for c in clients)))
        slots = [begin + i * 300 for i in range(int((now - begin) // 300) + 1)]
        assert len(slots) >= 24
        runs = await fired_runs(client, "sch_every5", "global")
        check_chain(runs, slots, 300)
        recorded = await slots_of(client, start["sch_every5/global"]["id"])
        assert [ts(s["slot_at"]) for s in recorded] == slots
        assert [s["execution_id"] for s in recorded] == [r["id"] for r in runs]
    finally:
        for c in clients:
            await c.close()


async def test_downtime_fires_missed_slots_in_the_window_and_skips_older_ones(
    start_server: ServerFactory, start_worker: WorkerFactory
) -> None:
    server = start_server(test_clock=True)
    start_worker(server, MODULE)
    async with polos.PolosClient(api_url=server.url) as client:
        schedule_id = await polos.schedules.create(
            client, "sch_api", "* * * * *", key="minutely", catch_up_seconds=600
        )
        begin = ts((await schedules_of(client))["sch_api/minutely"]["next_fire_at"]) or 0.0
        for _ in range(3):
            await settle(client, await advance_clock(client, 60))
        before = await fired_runs(client, "sch_api", "minutely")
        assert [ts(r["payload"]["timestamp"]) for r in before] == [begin + i * 60 for i in range(3)]

        server.stop()
        server.start()  # its clock is the real time again: three minutes behind the schedule
        lost = (begin + 120) - await server_time(client)
        assert 60 < lost < 240, lost
        now = await advance_clock(client, lost + 30 * 60)  # 30 minutes without a sweep
        await settle(client, now)

        slots = await slots_of(client, schedule_id)
        times = [ts(s["slot_at"]) or 0.0 for s in slots]
        # Every minute from the first slot to the last one due, each recorded once.
        assert times == [begin + i * 60 for i in range(len(times))]
        assert times[-1] <= now < times[-1] + 60
        statuses = [s["status"] for s in slots]
        skipped = [t for t, s in zip(times, statuses, strict=True) if s == "skipped"]
        caught_up = [t for t, s in zip(times[3:], statuses[3:], strict=True) if s == "fired"]
        assert statuses[:3] == ["fired"] * 3
        assert statuses[3:] == ["skipped"] * len(skipped) + ["fired"] * len(caught_up)
        # The window is 10 minutes: what is older was skipped, the rest fired once each.
        assert len(caught_up) in (10, 11), caught_up
        assert all(t < now - 600 for t in skipped)
        assert all(t >= now - 600 - 1 for t in caught_up)
        assert len(skipped) >= 15

        runs = await fired_runs(client, "sch_api", "minutely")
        assert [ts(r["payload"]["timestamp"]) for r in runs] == times[:3] + caught_up
        # In order: each caught-up slot's last_timestamp is the slot fired before it.
        fired = times[:3] + caught_up
        for i, r in enumerate(runs[3:], start=3):
            assert ts(r["payload"]["last_timestamp"]) == fired[i - 1]
        by_slot = {ts(s["slot_at"]): s["execution_id"] for s in slots if s["status"] == "fired"}
        assert [by_slot[t] for t in fired] == [r["id"] for r in runs]


async def test_a_long_downtime_records_the_newest_skipped_slots(
    start_server: ServerFactory, start_worker: WorkerFactory
) -> None:
    """Past MAX_SKIPPED_RECORDED skipped slots, the ones recorded are the newest: the skipped
    list reaches the catch-up window without a gap."""
    server = start_server(test_clock=True)
    start_worker(server, MODULE)
    async with polos.PolosClient(api_url=server.url) as client:
        schedule_id = await polos.schedules.create(
            client, "sch_api", "* * * * *", key="long-down", catch_up_seconds=300
        )
        begin = ts((await schedules_of(client))["sch_api/long-down"]["next_fire_at"]) or 0.0
        now = await advance_clock(client, 86_400)  # a day of minutes, one sweep
        await settle(client, now)
        slots = await slots_of(client, schedule_id)
        times = [ts(s["slot_at"]) or 0.0 for s in slots]
        statuses = [s["status"] for s in slots]
        fired = [t for t, s in zip(times, statuses, strict=True) if s == "fired"]
        skipped = [t for t, s in zip(times, statuses, strict=True) if s == "skipped"]
        assert len(fired) in (5, 6), fired  # the 5-minute window
        # The API shows the latest 1,000 slots: consecutive minutes up to the first fired
        # slot, so the newest skipped ones were recorded.
        assert skipped == [fired[0] - 60 * (len(skipped) - i) for i in range(len(skipped))]
        recorded = db(
            server,
            "SELECT COUNT(*), MIN(slot_at) FROM schedule_slots "
            f"WHERE schedule_id = '{schedule_id}' AND status = 'skipped'",
        )
        assert recorded[0][0] == 1000, recorded  # MAX_SKIPPED_RECORDED, of ~1,435 skipped
        assert float(recorded[0][1]) == fired[0] - 60_000
        assert float(recorded[0][1]) > begin
