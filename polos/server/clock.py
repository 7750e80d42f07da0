"""Work that happens because time passed: expired leases, forgotten workers, and a periodic
wake-up of parked long-polls as a safety net for missed notifications.

One sweep per `settings.sweep_interval`; a sweep is one unit of work, and with several replicas
each expired lease is taken by one replica's transaction (row locks, see the stores).
Timers, schedules and timeouts (issue 5) join this module.
"""

from __future__ import annotations

import asyncio
import logging
import time

from polos.server import lifecycle
from polos.server.settings import Settings
from polos.server.signals import Signals
from polos.store.base import Store, StoreTx, StoreUnavailable

log = logging.getLogger("polos.server.clock")

# Parked long-polls look at the database again at least this often, whatever notifications
# say: a safety net, never the way work is normally found.
SAFETY_NET_SECONDS = 5.0


async def grant_restart_grace(store: Store, settings: Settings) -> int:
    """After a restart of the only server, give running executions one lease period for their
    workers to renew, and count every worker as just heard from: the server's downtime is not
    their fault. With a shared database the other replicas kept time: nothing to do."""
    if store.shared:
        return 0

    async def work(tx: StoreTx) -> int:
        now = time.time()
        await tx.touch_all_workers(now)
        return await tx.extend_all_leases(now + settings.lease_seconds)

    return await store.run(work)


async def run_clock(store: Store, signals: Signals, settings: Settings) -> None:
    async def sweep(tx: StoreTx) -> int:
        return await lifecycle.expire_leases(tx, settings, time.time())

    async def outage_grace(tx: StoreTx) -> int:
        # While the database was away no worker could renew a lease or heartbeat: that is not
        # their fault.
        now = time.time()
        await tx.touch_all_workers(now)
        return await tx.extend_all_leases(now + settings.lease_seconds)

    last_safety_net = time.monotonic()
    database_was_down = False
    while True:
        await asyncio.sleep(settings.sweep_interval)
        try:
            if database_was_down:
                extended = await store.run(outage_grace)
                log.info("database back: %d running lease(s) extended by one lease", extended)
                database_was_down = False
                signals.wake_everyone()
            while await store.run(sweep) >= 1000:
                pass  # more expired than one sweep takes: keep going
        except StoreUnavailable as exc:
            database_was_down = True
            log.warning("clock sweep skipped: %s", exc)
        except Exception:
            log.exception("clock sweep failed; retrying at the next tick")
        if time.monotonic() - last_safety_net >= SAFETY_NET_SECONDS:
            last_safety_net = time.monotonic()
            signals.wake_everyone()
