"""An event-triggered workflow whose worker starts after events were published on its topic
(tests/e2e/test_events.py): a new trigger starts at the end of the topic."""

from __future__ import annotations

from typing import Any

from polos import WorkflowContext, workflow
from polos.events import EventPayload

LATE_TOPIC = "model/trigger/late"


@workflow(id="ev_late", trigger_on_event=LATE_TOPIC)
async def ev_late(ctx: WorkflowContext, payload: EventPayload) -> dict[str, Any]:
    return {"seq": payload.sequence_id, "data": payload.data}
