"""What every route needs: the store, the wake-up signals and the settings."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Request

from polos.server.settings import Settings
from polos.server.signals import Signals
from polos.store.base import Store


@dataclass(slots=True)
class ServerState:
    store: Store
    signals: Signals
    settings: Settings


def state_of(request: Request) -> ServerState:
    state: ServerState = request.app.state.polos
    return state
