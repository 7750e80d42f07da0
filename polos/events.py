"""`polos.events`: the public path of polos/sdk/events.py (upstream's module path)."""

from polos.sdk.events import (
    BatchEventPayload,
    EventData,
    EventItem,
    EventPayload,
    StreamEvent,
    batch_publish,
    events,
    publish,
    stream_topic,
    stream_workflow,
)

__all__ = [
    "BatchEventPayload",
    "EventData",
    "EventItem",
    "EventPayload",
    "StreamEvent",
    "batch_publish",
    "events",
    "publish",
    "stream_topic",
    "stream_workflow",
]
