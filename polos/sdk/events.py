"""Events (`polos.events`): publish on topics, stream topics and runs, and the payload models
of event waits and event-triggered workflows.

A stream starts at the beginning of its topic (or of the run, for `stream_workflow`) unless a
cursor is given, so nothing published before the stream opened is missed; it follows a server
restart by reconnecting from the last event it delivered.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from datetime import datetime
from types import SimpleNamespace
from typing import Any

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from polos import codec, protocol
from polos.sdk.client import ClientLike, api_error, as_client
from polos.sdk.transport import StreamRefused, TransportError

log = logging.getLogger("polos.events")


class EventData(BaseModel):
    """An event to publish."""

    event_type: str | None = None
    data: dict[str, Any] = Field(default_factory=dict)


class EventItem(BaseModel):
    model_config = ConfigDict(extra="ignore")

    id: str
    sequence_id: int
    topic: str
    event_type: str | None = None
    data: Any = Field(default_factory=dict)
    created_at: datetime


class EventPayload(EventItem):
    """What `wait_for_event` returns, and the payload of a workflow triggered by one event."""


class BatchEventPayload(BaseModel):
    """The payload of a workflow triggered by a batch of events."""

    events: list[EventItem] = Field(default_factory=list)


class StreamEvent(BaseModel):
    model_config = ConfigDict(extra="ignore")

    id: str | None = None
    sequence_id: int | None = None
    topic: str | None = None
    event_type: str | None = None
    data: Any = Field(default_factory=dict)
    created_at: str | None = None


def _event_json(event: EventData | dict[str, Any]) -> protocol.PublishedEvent:
    if isinstance(event, EventData):
        return protocol.PublishedEvent(event_type=event.event_type, data=event.data)
    if "data" in event or "event_type" in event:
        return protocol.PublishedEvent(
            event_type=event.get("event_type"), data=codec.to_json_value(event.get("data"))
        )
    return protocol.PublishedEvent(data=codec.to_json_value(event))


async def batch_publish(
    client: ClientLike,
    topic: str,
    events: list[EventData | dict[str, Any]],
    execution_id: str | None = None,
    root_execution_id: str | None = None,
) -> list[int]:
    """Publish several events in one request; returns their sequence numbers."""
    if not events:
        return []
    c = as_client(client)
    body = protocol.PublishRequest(
        topic=topic,
        events=[_event_json(e) for e in events],
        execution_id=execution_id,
        root_execution_id=root_execution_id,
    )
    response = await c.request(
        "POST",
        f"{protocol.API_PREFIX}/events/publish",
        content=codec.dumps(body.model_dump(exclude_none=True)),
    )
    return protocol.PublishResponse.model_validate_json(response.content).sequence_ids


async def publish(
    client: ClientLike,
    topic: str,
    event_data: EventData | dict[str, Any],
    execution_id: str | None = None,
    root_execution_id: str | None = None,
) -> int | None:
    """Publish one event; returns its sequence number."""
    ids = await batch_publish(client, topic, [event_data], execution_id, root_execution_id)
    return ids[0] if ids else None


async def _stream(
    client: ClientLike, params: dict[str, str], run_id: str | None
) -> AsyncIterator[StreamEvent]:
    c = as_client(client)
    delay = 0.05
    while True:
        try:
            async for line in c.transport.stream_lines(
                f"{protocol.API_PREFIX}/events/stream", params
            ):
                if not line.startswith("data: "):
                    continue
                try:
                    event = StreamEvent.model_validate(orjson.loads(line[6:]))
                except (orjson.JSONDecodeError, ValidationError):
                    continue
                if event.sequence_id is not None:
                    params["last_sequence_id"] = str(event.sequence_id)
                    params.pop("last_timestamp", None)
                delay = 0.05
                yield event
                if run_id is not None and event.event_type == "workflow_finish":
                    return
            if run_id is not None:
                continue  # the server closed early (restarting): carry on from the cursor
            return
        except StreamRefused as refused:
            raise api_error(refused.response) from None
        except TransportError as exc:
            log.warning("event stream interrupted (%s); reconnecting in %.2f s", exc, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 2.0)


def _cursor(
    params: dict[str, str], last_sequence_id: int | None, last_timestamp: datetime | None
) -> dict[str, str]:
    if last_sequence_id is not None:
        params["last_sequence_id"] = str(last_sequence_id)
    elif last_timestamp is not None:
        params["last_timestamp"] = last_timestamp.isoformat()
    return params


def stream_topic(
    client: ClientLike,
    topic: str,
    last_sequence_id: int | None = None,
    last_timestamp: datetime | None = None,
) -> AsyncIterator[StreamEvent]:
    """Every event of `topic`, from the beginning (or after the cursor), then live."""
    return _stream(client, _cursor({"topic": topic}, last_sequence_id, last_timestamp), None)


def stream_workflow(
    client: ClientLike,
    workflow_id: str,
    workflow_run_id: str,
    last_sequence_id: int | None = None,
    last_timestamp: datetime | None = None,
) -> AsyncIterator[StreamEvent]:
    """The events of one run (its start, suspends, published events, finish), from its
    beginning; ends after its `workflow_finish` (whose data has status, result and error)."""
    params = {"workflow_id": workflow_id, "workflow_run_id": workflow_run_id}
    return _stream(client, _cursor(params, last_sequence_id, last_timestamp), workflow_run_id)


# Upstream's singleton namespace (`polos.events.events.publish(...)`).
events = SimpleNamespace(
    publish=publish,
    batch_publish=batch_publish,
    stream_topic=stream_topic,
    stream_workflow=stream_workflow,
)
