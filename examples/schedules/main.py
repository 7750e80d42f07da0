"""Scheduled workflows: create schedules, run a scheduled workflow by hand, and (on a server
started with --test-clock) move the server's time forward to watch slots fire.

Run with (a server and `python worker.py` running):
    python main.py

With `polos-server start --test-clock` the last demo moves the server's clock forward
(`polos.testing.advance_clock`) instead of waiting for minutes and hours to pass; without it,
that demo is skipped and the schedules fire in real time.
"""

import asyncio
import contextlib
import sys
import time
import traceback
from datetime import UTC, datetime, timedelta
from typing import Any

from dotenv import load_dotenv
from workflows import RUNS_TOPIC, CleanupResult, daily_cleanup, hourly_sync, morning_report

from polos import PolosApiError, PolosClient, SchedulePayload, events, schedules
from polos.testing import advance_clock, server_time

load_dotenv()

FOLLOW_TIMEOUT_SECONDS = 30.0
REMINDER_KEY = "demo-user-123"
USERS = [
    {"id": "user-alice", "cron": "0 8 * * *", "tz": "America/New_York"},
    {"id": "user-bob", "cron": "0 9 * * *", "tz": "Europe/London"},
    {"id": "user-charlie", "cron": "0 7 * * *", "tz": "Asia/Tokyo"},
]


class CheckFailed(Exception):
    """A demo's outcome is not the expected one."""


def expect(what: str, actual: object, expected: object) -> None:
    """Stop the demos (main.py then exits with status 1) when `actual` is not `expected`."""
    if actual != expected:
        raise CheckFailed(f"{what}: expected {expected!r}, got {actual!r}")


def print_header(title: str) -> None:
    print("\n" + "=" * 60)
    print(title)
    print("=" * 60)


def print_section(title: str) -> None:
    print(f"\n--- {title} ---")


def hhmm(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


async def list_schedules(client: PolosClient, workflow_id: str) -> dict[str, dict[str, Any]]:
    """The schedules of `workflow_id` on the server, by key (GET /api/v1/schedules)."""
    response = await client.request("GET", "/api/v1/schedules", params={"workflow_id": workflow_id})
    return {s["key"]: s for s in response.json()["schedules"]}


async def schedule_slots(client: PolosClient, schedule_id: str) -> list[dict[str, Any]]:
    """The latest 100 slots of a schedule, newest first: `slot_at`, `status` ("fired" or
    "skipped"), `execution_id` (GET /api/v1/schedules/{id}/slots)."""
    response = await client.request("GET", f"/api/v1/schedules/{schedule_id}/slots")
    slots: list[dict[str, Any]] = response.json()["slots"]
    return slots


async def wait_for_run(
    client: PolosClient, workflow_id: str, key: str, slot: datetime
) -> events.StreamEvent:
    """The announcement of `workflow_id`'s run for `slot` (schedule `key`) on schedules/runs."""
    async with asyncio.timeout(FOLLOW_TIMEOUT_SECONDS):
        stream = events.stream_topic(client, RUNS_TOPIC)
        async with contextlib.aclosing(stream):
            async for event in stream:
                data = event.data
                if (
                    data.get("workflow_id") == workflow_id
                    and data.get("key") == key
                    and datetime.fromisoformat(data["slot"]) == slot
                ):
                    return event
    raise RuntimeError(f"the stream of {RUNS_TOPIC!r} ended")


async def demo_declared_schedules(client: PolosClient) -> None:
    print_header("Schedules Declared on Workflows")
    print("The worker registered these when it started (schedule key 'global'):")
    for wf in (daily_cleanup, morning_report, hourly_sync):
        print(f"  {wf.id}: schedule={wf.schedule!r}")
        declared = wf.schedule if isinstance(wf.schedule, dict) else {"cron": wf.schedule}
        on_server = (await list_schedules(client, wf.id)).get("global")
        if on_server is None:
            raise CheckFailed(f"the server has no 'global' schedule for {wf.id}")
        expect(
            f"{wf.id}'s schedule on the server",
            (on_server["cron"], on_server["timezone"]),
            (declared["cron"], declared.get("timezone", "UTC")),
        )
        print(f"    on the server: next slot {on_server['next_fire_at']}")


async def demo_create_schedule(client: PolosClient) -> None:
    print_header("Create Schedule Demo")
    print("'schedulable_reminder' has schedule=True: it has no schedule of its own, and")
    print("schedules.create() gives it one per key.")

    print_section("Creating a schedule for 'schedulable_reminder'")
    cron, tz, key = "* * * * *", "UTC", REMINDER_KEY
    print("  Workflow: schedulable_reminder")
    print(f"  Cron: {cron} (every minute)")
    print(f"  Timezone: {tz}")
    print(f"  Key: {key}")
    schedule_id = await schedules.create(
        client, workflow="schedulable_reminder", cron=cron, timezone=tz, key=key
    )
    print("\n  Schedule created!")
    print(f"  Schedule ID: {schedule_id}")
    on_server = (await list_schedules(client, "schedulable_reminder")).get(key)
    expect("the schedule on the server", on_server and on_server["id"], schedule_id)
    expect("its cron", on_server and on_server["cron"], cron)


async def demo_create_per_user_schedules(client: PolosClient) -> None:
    print_header("Per-User Schedules Demo")
    print("One workflow, one schedule per user, each in the user's time zone.")

    print_section("Creating per-user schedules")
    ids = {}
    for user in USERS:
        schedule_id = await schedules.create(
            client,
            workflow="schedulable_reminder",
            cron=user["cron"],
            timezone=user["tz"],
            key=user["id"],
        )
        ids[user["id"]] = schedule_id
        print(f"  {user['id']}: {user['cron']} ({user['tz']}) -> {schedule_id}")
    print("\n  Alice: 8 AM New York time, Bob: 9 AM London time, Charlie: 7 AM Tokyo time")

    print_section("Creating a schedule again with the same key changes it (no duplicate)")
    again = await schedules.create(
        client,
        workflow="schedulable_reminder",
        cron="30 8 * * *",
        timezone="America/New_York",
        key="user-alice",
    )
    print(f"  user-alice: 30 8 * * * (America/New_York) -> {again}")
    expect("user-alice's schedule ID after the change", again, ids["user-alice"])
    on_server = await list_schedules(client, "schedulable_reminder")
    expect("user-alice's cron on the server", on_server["user-alice"]["cron"], "30 8 * * *")
    for user in USERS:
        expect(f"{user['id']}'s schedule", on_server[user["id"]]["id"], ids[user["id"]])
    print(f"  schedulable_reminder has {len(on_server)} schedules: {sorted(on_server)}")


async def demo_manual_trigger_with_schedule_payload(client: PolosClient) -> None:
    print_header("Manual Trigger with SchedulePayload Demo")
    print("A scheduled workflow can be run by hand with a SchedulePayload: handy to test it")
    print("without waiting for its slot.")

    print_section("Running 'daily_cleanup' with manual SchedulePayload")
    now = datetime.now(UTC).replace(microsecond=0)
    payload = SchedulePayload(
        timestamp=now,
        last_timestamp=now - timedelta(days=1),
        timezone="UTC",
        schedule_id="manual-test-schedule",
        key="manual-test",
        upcoming=now + timedelta(days=1),
    )
    print(f"  Timestamp: {payload.timestamp}")
    print(f"  Last run: {payload.last_timestamp}")
    print(f"  Timezone: {payload.timezone}")
    print(f"  Schedule ID: {payload.schedule_id}")
    print(f"  Key: {payload.key}")
    print(f"  Next run: {payload.upcoming}")

    result = await daily_cleanup.run(client, payload)

    print_section("Result")
    print(f"  Timestamp: {result.timestamp}")
    print(f"  Records cleaned: {result.records_cleaned}")
    print(f"  Files cleaned: {result.files_cleaned}")
    expect(
        "daily_cleanup's result",
        result,
        CleanupResult(timestamp=now, records_cleaned=150, files_cleaned=25),
    )


async def demo_test_clock(client: PolosClient) -> None:
    print_header("Slots Firing (test clock)")
    try:
        now = await server_time(client)
    except PolosApiError as exc:
        if exc.status != 404:
            raise
        print("The server was not started with --test-clock: skipping this demo.")
        print("The schedules fire in real time: schedulable_reminder runs every minute")
        print(f"for {REMINDER_KEY}, hourly_sync every hour...")
        return
    print("The server runs on a test clock: main.py moves its time forward, and every")
    print("slot passed fires once, as if the time had really passed.")
    print(f"  Server time: {hhmm(datetime.fromtimestamp(now, UTC))}")

    print_section(f"Three minutes of the every-minute reminder ({REMINDER_KEY})")
    for _ in range(3):
        started = time.perf_counter()
        now = await advance_clock(client, 60)
        # The slot just passed: the last whole minute.
        slot = datetime.fromtimestamp(now // 60 * 60, UTC)
        event = await wait_for_run(client, "schedulable_reminder", REMINDER_KEY, slot)
        print(
            f"  +60 s -> {hhmm(datetime.fromtimestamp(now, UTC))}: reminder fired for slot "
            f"{slot:%H:%M} ({time.perf_counter() - started:.2f} s, "
            f"execution {event.data['execution_id'][:8]}...)"
        )

    print_section("Fast-forward to the next 03:00 UTC: daily_cleanup's slot")
    current = datetime.fromtimestamp(now, UTC)
    next_cleanup = current.replace(hour=3, minute=0, second=0, microsecond=0)
    # At least 2 hours ahead: the jump then spans more than the reminder's catch-up window
    # (1 hour), whatever the time of day.
    while next_cleanup < current + timedelta(hours=2):
        next_cleanup += timedelta(days=1)
    jump = next_cleanup.timestamp() - now + 1
    now = await advance_clock(client, jump)
    print(f"  Advanced {jump / 3600:.1f} h -> {hhmm(datetime.fromtimestamp(now, UTC))}")
    event = await wait_for_run(client, "daily_cleanup", "global", next_cleanup)
    print(f"  daily_cleanup ran for its {hhmm(next_cleanup)} slot:")
    print(f"    Records cleaned: {event.data['records_cleaned']}")
    print(f"    Files cleaned: {event.data['files_cleaned']}")
    expect("records cleaned", event.data["records_cleaned"], 150)
    expect("files cleaned", event.data["files_cleaned"], 25)
    print("  A jump looks like downtime to the scheduler: of the slots it skipped over,")
    print("  those within the catch-up window (1 hour by default) fire once each, in order")
    print("  (the every-minute reminder catches up its last 60); older ones are recorded as")
    print("  skipped, not run.")

    print_section(f"The reminder's slots ({REMINDER_KEY}), newest first")
    reminder = (await list_schedules(client, "schedulable_reminder"))[REMINDER_KEY]
    deadline = time.monotonic() + FOLLOW_TIMEOUT_SECONDS
    while True:  # a schedule's slots are recorded together, when it fires
        slots = await schedule_slots(client, reminder["id"])
        if slots and datetime.fromisoformat(slots[0]["slot_at"]) >= next_cleanup:
            break
        if time.monotonic() > deadline:
            raise CheckFailed(f"the reminder's {hhmm(next_cleanup)} slot was not recorded")
        await asyncio.sleep(0.1)
    fired = slots[:60]
    print(f"  fired:   {fired[-1]['slot_at']} .. {fired[0]['slot_at']} ({len(fired)} slots)")
    print(f"  skipped: {slots[60]['slot_at']} and older")
    # The 60 minutes up to 03:00 (the catch-up window) fired, the minute before was skipped.
    window = [next_cleanup - timedelta(minutes=i) for i in range(60)]
    expect(
        "the newest 60 slots",
        [(datetime.fromisoformat(s["slot_at"]), s["status"]) for s in fired],
        [(minute, "fired") for minute in window],
    )
    expect("the slot before the catch-up window", slots[60]["status"], "skipped")
    runs = await asyncio.gather(
        *(client.wait_for_execution(s["execution_id"], FOLLOW_TIMEOUT_SECONDS) for s in fired)
    )
    expect("the caught-up runs", {r["status"] for r in runs}, {"completed"})
    print(f"  All {len(runs)} caught-up reminders ran; the skipped slots started nothing.")


async def main() -> int:
    print("=" * 60)
    print("Scheduled Workflow Examples")
    print("=" * 60)
    print("\nThis demo showcases scheduled workflow patterns:")
    print("  1. Schedules declared on workflows (cron string, cron + time zone)")
    print("  2. Creating schedules dynamically with schedules.create()")
    print("  3. Per-user/per-entity schedules")
    print("  4. Manually triggering a scheduled workflow with SchedulePayload")
    print("  5. Slots firing, on a server started with --test-clock")

    async with PolosClient() as client:
        try:
            await demo_declared_schedules(client)
            await demo_create_schedule(client)
            await demo_create_per_user_schedules(client)
            await demo_manual_trigger_with_schedule_payload(client)
            await demo_test_clock(client)
        except Exception:
            print("\nA demo failed:", file=sys.stderr)
            traceback.print_exc()
            return 1

    print("\n" + "=" * 60)
    print("All demos completed!")
    print("=" * 60)
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
