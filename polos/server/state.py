"""What every route needs: the store, the wake-up signals and the settings."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from fastapi import Request

from polos.server.clocks import Clock
from polos.server.metrics import Metrics
from polos.server.settings import Settings
from polos.server.signals import Signals
from polos.store.base import Store


@dataclass(slots=True)
class ServerState:
    store: Store
    signals: Signals
    settings: Settings
    clock: Clock
    metrics: Metrics
    # worker id -> its project. A worker's project never changes (registering an ID of another
    # project is refused), so this cache is safe across replicas.
    worker_projects: dict[str, str] = field(default_factory=dict)
    # worker id -> the work signal its last claim took before looking, when that claim took
    # fewer executions than it asked for (it saw all the work it could take). While that
    # signal is not set, the worker's next claim has nothing to find and parks without
    # looking (routes/workers.py, `claim`). Stores that park claims inside the transaction
    # making work ready (SQLite) do not use it.
    claims_exhausted: dict[str, asyncio.Event] = field(default_factory=dict)


def state_of(request: Request) -> ServerState:
    state: ServerState = request.app.state.polos
    return state
