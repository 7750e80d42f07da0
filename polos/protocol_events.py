"""Wire models of the events API: publishing events to a topic and reading a topic's events."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from polos.protocol_base import Identifier, _Strict


class PublishedEvent(_Strict):
    event_type: Identifier | None = None
    data: Any = None


class PublishRequest(_Strict):
    topic: Identifier
    events: list[PublishedEvent]
    execution_id: Identifier | None = None
    root_execution_id: Identifier | None = None


class PublishResponse(BaseModel):
    sequence_ids: list[int]
    created_at: str


class EventView(BaseModel):
    id: str
    sequence_id: int
    topic: str
    event_type: str | None = None
    data: Any = None
    created_at: str


class EventList(BaseModel):
    events: list[EventView]
    next_sequence_id: int
