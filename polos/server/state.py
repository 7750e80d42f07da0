"""What every route needs: the store, the wake-up signals and the settings."""

from __future__ import annotations

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


def state_of(request: Request) -> ServerState:
    state: ServerState = request.app.state.polos
    return state
