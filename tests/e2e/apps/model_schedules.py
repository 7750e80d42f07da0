"""Scheduled workflows (tests/e2e/test_schedules.py). Served only by the schedule tests' own
servers: every advance of a test clock would fire them."""

from __future__ import annotations

from typing import Any

from polos import SchedulePayload, WorkflowContext, workflow


def _echo(ctx: WorkflowContext, payload: SchedulePayload) -> dict[str, Any]:
    return {
        "type": type(payload).__name__,
        "timestamp": payload.timestamp.isoformat(),
        "last_timestamp": payload.last_timestamp.isoformat() if payload.last_timestamp else None,
        "upcoming": payload.upcoming.isoformat() if payload.upcoming else None,
        "timezone": payload.timezone,
        "key": payload.key,
        "schedule_id": payload.schedule_id,
    }


@workflow(id="sch_every5", schedule="*/5 * * * *")
async def sch_every5(ctx: WorkflowContext, payload: SchedulePayload) -> dict[str, Any]:
    return _echo(ctx, payload)


@workflow(
    id="sch_dict",
    schedule={"cron": "30 * * * *", "timezone": "Asia/Kolkata", "key": "kolkata"},
)
async def sch_dict(ctx: WorkflowContext, payload: SchedulePayload) -> dict[str, Any]:
    return _echo(ctx, payload)


@workflow(id="sch_api", schedule=True)
async def sch_api(ctx: WorkflowContext, payload: SchedulePayload) -> dict[str, Any]:
    """No default schedule: tests create them with polos.schedules.create."""
    return _echo(ctx, payload)
