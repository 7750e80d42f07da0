"""Work that happens because time passed: expired leases, forgotten workers.

One sweep per `settings.sweep_interval`; a sweep is one unit of work, so with several replicas
(issue 3) each expired lease is handled by whichever replica's transaction gets it first.
Timers, schedules and timeouts (issue 5) join this module.
"""

from __future__ import annotations

import asyncio
import logging
import time

from polos.server import lifecycle
from polos.server.settings import Settings
from polos.server.signals import Signals
from polos.store.base import Store, StoreTx

log = logging.getLogger("polos.server.clock")


async def grant_restart_grace(store: Store, settings: Settings) -> int:
    """After a restart, give running executions one lease period for their workers to renew,
    and count every worker as just heard from: the server's downtime is not their fault."""

    async def work(tx: StoreTx) -> int:
        now = time.time()
        await tx.touch_all_workers(now)
        return await tx.extend_all_leases(now + settings.lease_seconds)

    return await store.run(work)


async def run_clock(store: Store, signals: Signals, settings: Settings) -> None:
    async def sweep(tx: StoreTx) -> int:
        return await lifecycle.expire_leases(tx, signals, settings, time.time())

    while True:
        await asyncio.sleep(settings.sweep_interval)
        try:
            while await store.run(sweep) >= 1000:
                pass  # more expired than one sweep takes: keep going
        except Exception:
            log.exception("clock sweep failed; retrying at the next tick")
