"""Schedules (`polos.schedules`): run a workflow on a cron, and the payload it receives.

Each slot fires exactly once while a server runs; after downtime, missed slots inside the
catch-up window (default one hour) fire once each, in order, and older ones are skipped (and
recorded as skipped: `GET /api/v1/schedules/{id}/slots`).
"""

from __future__ import annotations

from datetime import datetime
from types import SimpleNamespace

from pydantic import BaseModel, ConfigDict

from polos import codec, protocol
from polos.sdk.client import ClientLike, as_client
from polos.sdk.workflow import Workflow


class SchedulePayload(BaseModel):
    """What a scheduled workflow receives: the slot it runs for, and its neighbours."""

    model_config = ConfigDict(extra="ignore")

    timestamp: datetime
    last_timestamp: datetime | None = None
    timezone: str = "UTC"
    schedule_id: str = ""
    key: str = "global"
    upcoming: datetime | None = None


async def create(
    client: ClientLike,
    workflow: str | Workflow,
    cron: str,
    timezone: str = "UTC",
    key: str = "global",
    catch_up_seconds: float = 3600.0,
) -> str:
    """Create (or change) the schedule `key` of `workflow`; returns the schedule's ID."""
    body = protocol.ScheduleRequest(
        workflow_id=workflow.id if isinstance(workflow, Workflow) else workflow,
        cron=cron,
        timezone=timezone,
        key=key,
        catch_up_seconds=catch_up_seconds,
    )
    response = await as_client(client).request(
        "POST", f"{protocol.API_PREFIX}/schedules", content=codec.dumps(body.model_dump())
    )
    return protocol.ScheduleResponse.model_validate_json(response.content).schedule_id


# Upstream's singleton namespace (`polos.schedules.schedules.create(...)`).
schedules = SimpleNamespace(create=create)
