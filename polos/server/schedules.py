"""Cron schedules: every slot fires exactly once while a server runs (the schedule's row is
locked, its `next_fire_at` moved, and the slot's execution started with an idempotency key
derived from the slot — all in one transaction, so several replicas never fire a slot twice).
After downtime, missed slots inside the catch-up window fire once each, in order; older ones are
recorded as skipped.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections import deque
from collections.abc import Iterator
from datetime import UTC, datetime
from itertools import islice
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cronsim import CronSim, CronSimError

from polos.model import Schedule
from polos.server import lifecycle
from polos.store.base import StoreTx

log = logging.getLogger("polos.server.schedules")

# Skipped slots recorded one by one after a long downtime, at most: the newest ones, just
# before the catch-up window (older ones are counted in the log only). A minutely schedule
# down for a year would otherwise write half a million rows.
MAX_SKIPPED_RECORDED = 1000


class ScheduleError(ValueError):
    """A cron expression or a timezone that cannot be used."""


def _zone(timezone: str) -> ZoneInfo:
    try:
        return ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ScheduleError(
            f"unknown timezone {timezone!r} (use an IANA name such as UTC)"
        ) from None


def slots_after(cron: str, timezone: str, after: float) -> Iterator[float]:
    """The slots of `cron` in `timezone` strictly after unix time `after`."""
    zone = _zone(timezone)
    try:
        it = CronSim(cron, datetime.fromtimestamp(after, zone))
    except CronSimError as exc:
        raise ScheduleError(f"invalid cron expression {cron!r}: {exc}") from None
    for moment in it:
        yield moment.timestamp()


def next_slot(cron: str, timezone: str, after: float) -> float:
    return next(slots_after(cron, timezone, after))


def _iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, UTC).isoformat().replace("+00:00", "Z")


async def upsert(
    tx: StoreTx,
    project_id: str,
    workflow_id: str,
    cron: str,
    timezone: str,
    key: str,
    catch_up_seconds: float,
    now: float,
) -> Schedule:
    first = next_slot(cron, timezone, now)  # validates too
    return await tx.upsert_schedule(
        Schedule(
            id=str(uuid.uuid4()),
            project_id=project_id,
            workflow_id=workflow_id,
            key=key,
            cron=cron,
            timezone=timezone,
            catch_up_seconds=catch_up_seconds,
            next_fire_at=first,
            last_fire_at=None,
            created_at=now,
            updated_at=now,
        )
    )


def payload(schedule: Schedule, slot: float, upcoming: float) -> str:
    return json.dumps(
        {
            "timestamp": _iso(slot),
            "last_timestamp": _iso(schedule.last_fire_at),
            "timezone": schedule.timezone,
            "schedule_id": schedule.id,
            "key": schedule.key,
            "upcoming": _iso(upcoming),
        }
    )


async def fire_due(tx: StoreTx, now: float, limit: int) -> int:
    fired = 0
    for schedule in await tx.due_schedules(now, limit):
        fired += await _fire(tx, schedule, now)
    return fired


async def _fire(tx: StoreTx, schedule: Schedule, now: float) -> int:
    oldest_kept = now - schedule.catch_up_seconds
    slot = schedule.next_fire_at
    skipped: deque[float] = deque(maxlen=MAX_SKIPPED_RECORDED)
    more_skipped = 0
    if slot < oldest_kept:
        for candidate in _from(schedule, slot):
            if candidate >= oldest_kept:
                slot = candidate
                break
            if len(skipped) == MAX_SKIPPED_RECORDED:
                more_skipped += 1  # the oldest recorded one makes room
                if more_skipped > 100_000:  # a year of minutes: jump instead of counting
                    # The slots just before the window are what gets recorded.
                    skipped.clear()
                    for newest in _newest_before(schedule, oldest_kept):
                        skipped.appendleft(newest)
                    slot = next_slot(schedule.cron, schedule.timezone, oldest_kept - 1e-6)
                    break
            skipped.append(candidate)
    if skipped or more_skipped:
        log.warning(
            "schedule %s of %r: %d slot(s) older than its catch-up window (%.0f s) skipped",
            schedule.id,
            schedule.workflow_id,
            len(skipped) + more_skipped,
            schedule.catch_up_seconds,
        )
    records: list[tuple[str, float, str, str | None]] = [
        (schedule.id, s, "skipped", None) for s in skipped
    ]
    started = 0
    while slot <= now:
        upcoming = next_slot(schedule.cron, schedule.timezone, slot)
        (submitted,) = await lifecycle.submit(
            tx,
            schedule.project_id,
            [
                lifecycle.SubmitSpec(
                    workflow_id=schedule.workflow_id,
                    payload_json=payload(schedule, slot, upcoming),
                    concurrency_key=schedule.key,
                    idempotency_key=f"schedule:{schedule.id}:{slot!r}",
                )
            ],
            now,
        )
        records.append((schedule.id, slot, "fired", submitted.execution_id))
        schedule.last_fire_at = slot
        started += 1
        slot = upcoming
    await tx.record_slots(records, now)
    await tx.set_schedule_times(schedule.id, slot, schedule.last_fire_at)
    return started


def _newest_before(schedule: Schedule, before: float) -> Iterator[float]:
    """The last MAX_SKIPPED_RECORDED slots strictly before `before`, newest first."""
    zone = _zone(schedule.timezone)
    moments = CronSim(schedule.cron, datetime.fromtimestamp(before, zone), reverse=True)
    earlier = (m.timestamp() for m in moments if m.timestamp() < before)
    yield from islice(earlier, MAX_SKIPPED_RECORDED)


def _from(schedule: Schedule, first: float) -> Iterator[float]:
    yield first
    yield from slots_after(schedule.cron, schedule.timezone, first)
