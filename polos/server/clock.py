"""Work that happens because time passed: durable timers, schedules, expired leases, forgotten
workers, and a periodic wake-up of parked long-polls as a safety net for missed notifications.

The loop sleeps until the next sweep (at most `settings.sweep_interval`), or less when a timer
due sooner is added or the test clock moves (`signals.clock_kick`). A sweep is a few units of
work; with several replicas each due item is taken by one replica's transaction (row locks).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from polos.server import lifecycle, schedules, waits
from polos.server.clocks import Clock
from polos.server.settings import Settings
from polos.server.state import ServerState
from polos.store.base import Store, StoreTx, StoreUnavailable

log = logging.getLogger("polos.server.clock")

# Parked long-polls look at the database again at least this often, whatever notifications
# say: a safety net, never the way work is normally found.
SAFETY_NET_SECONDS = 5.0
# Items one unit of work takes at most; a sweep runs units until less than this is due.
BATCH = 500


async def grant_restart_grace(store: Store, settings: Settings, clock: Clock) -> int:
    """After a restart of the only server, give running executions one lease period for their
    workers to renew, and count every worker as just heard from: the server's downtime is not
    their fault. With a shared database the other replicas kept time: nothing to do."""
    if store.shared:
        return 0

    async def work(tx: StoreTx) -> int:
        now = clock.now()
        await tx.touch_all_workers(now)
        return await tx.extend_all_leases(now + settings.lease_seconds)

    return await store.run(work)


async def sweep(state: ServerState) -> None:
    """One pass over everything due."""
    store, settings, clock = state.store, state.settings, state.clock

    async def timers(tx: StoreTx) -> int:
        return await waits.fire_due(tx, clock.now(), BATCH)

    async def due_schedules(tx: StoreTx) -> int:
        return await schedules.fire_due(tx, clock.now(), 100)

    async def leases(tx: StoreTx) -> int:
        now = clock.lease_now(settings.lease_seconds)  # test-clock jumps expire nothing
        return await lifecycle.expire_leases(tx, settings, now, BATCH)

    while await store.run(timers) >= BATCH:
        pass
    await store.run(due_schedules)
    while await store.run(leases) >= BATCH:
        pass


async def run_clock(state: ServerState) -> None:
    store, settings, clock, signals = state.store, state.settings, state.clock, state.signals

    async def outage_grace(tx: StoreTx) -> int:
        # While the database was away no worker could renew a lease or heartbeat: that is not
        # their fault.
        now = clock.now()
        await tx.touch_all_workers(now)
        return await tx.extend_all_leases(now + settings.lease_seconds)

    clock.on_advance(lambda _seconds: signals.clock_kick.set())
    last_safety_net = asyncio.get_running_loop().time()
    database_was_down = False
    while True:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(settings.sweep_interval):
                await signals.clock_kick.wait()
        signals.clock_kick.clear()
        try:
            if database_was_down:
                extended = await store.run(outage_grace)
                log.info("database back: %d running lease(s) extended by one lease", extended)
                database_was_down = False
                signals.wake_everyone()
            await sweep(state)
        except StoreUnavailable as exc:
            database_was_down = True
            log.warning("clock sweep skipped: %s", exc)
        except Exception:
            log.exception("clock sweep failed; retrying at the next tick")
        now = asyncio.get_running_loop().time()
        if now - last_safety_net >= SAFETY_NET_SECONDS:
            last_safety_net = now
            signals.wake_everyone()
