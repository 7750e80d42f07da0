"""Scheduled workflows: run a workflow on a cron.

- `daily_cleanup`: `schedule="0 3 * * *"`, a cron string: every day at 03:00 UTC.
- `morning_report`: `schedule={"cron": "0 8 * * 1-5", "timezone": "America/New_York"}`:
  weekdays at 8:00 in New York (daylight saving time included).
- `hourly_sync`: `schedule="0 * * * *"`, every hour.
- `schedulable_reminder`: `schedule=True`, no schedule of its own; main.py gives it some with
  `schedules.create(...)`, one per key (a user, a tenant...).

A worker serving a workflow with a cron registers its schedule (key "global") with the
server. The server starts one execution per slot, exactly once, with a `SchedulePayload`:
the slot (`timestamp`), the previous one (`last_timestamp`), the next one (`upcoming`),
`timezone`, `schedule_id` and `key`. A scheduled workflow cannot be given a queue (it runs on
its own, unlimited one, with the schedule's key as concurrency key): runs of slots caught up
after downtime may run side by side.

Each run also announces itself on the topic `schedules/runs` (`ctx.step.publish_event`),
which main.py follows to show the slots firing.
"""

from datetime import datetime

from pydantic import BaseModel

from polos import SchedulePayload, WorkflowContext, workflow

RUNS_TOPIC = "schedules/runs"

# ============================================================================ results


class CleanupResult(BaseModel):
    timestamp: datetime
    records_cleaned: int
    files_cleaned: int


class ReportResult(BaseModel):
    timestamp: datetime
    report_id: str
    metrics_count: int


class SyncResult(BaseModel):
    timestamp: datetime
    records_synced: int


class ReminderResult(BaseModel):
    timestamp: datetime
    message: str
    sent: bool


async def announce(ctx: WorkflowContext, payload: SchedulePayload, summary: dict) -> None:
    """Tell whoever follows `schedules/runs` that this slot ran."""
    await ctx.step.publish_event(
        "announce_run",
        topic=RUNS_TOPIC,
        data={
            "workflow_id": ctx.workflow_id,
            "execution_id": ctx.execution_id,
            "key": payload.key,
            "slot": payload.timestamp.isoformat(),
            **summary,
        },
        event_type="scheduled_run",
    )


# ============================================================================ daily cleanup


def cleanup_old_records() -> dict:
    return {"count": 150, "status": "completed"}


def cleanup_temp_files() -> dict:
    return {"count": 25, "status": "completed"}


@workflow(id="daily_cleanup", schedule="0 3 * * *")
async def daily_cleanup(ctx: WorkflowContext, payload: SchedulePayload) -> CleanupResult:
    """Every day at 03:00 UTC."""
    records = await ctx.step.run("cleanup_old_records", cleanup_old_records)
    files = await ctx.step.run("cleanup_temp_files", cleanup_temp_files)
    result = CleanupResult(
        timestamp=payload.timestamp,
        records_cleaned=records.get("count", 0),
        files_cleaned=files.get("count", 0),
    )
    await announce(
        ctx,
        payload,
        {"records_cleaned": result.records_cleaned, "files_cleaned": result.files_cleaned},
    )
    return result


# ============================================================================ morning report


def gather_daily_metrics() -> dict:
    return {"active_users": 1250, "new_signups": 45, "revenue": 12500.00, "orders": 320}


def generate_report(metrics: dict, slot: str) -> dict:
    return {"id": f"report-{slot[:10]}", "metrics": metrics}


def send_report(report: dict) -> dict:
    return {"sent": True, "report_id": report.get("id")}


@workflow(
    id="morning_report",
    schedule={"cron": "0 8 * * 1-5", "timezone": "America/New_York"},
)
async def morning_report(ctx: WorkflowContext, payload: SchedulePayload) -> ReportResult:
    """Weekdays at 8:00 New York time."""
    metrics = await ctx.step.run("gather_metrics", gather_daily_metrics)
    report = await ctx.step.run(
        "generate_report", generate_report, metrics, payload.timestamp.isoformat()
    )
    await ctx.step.run("send_report", send_report, report)
    await announce(ctx, payload, {"report_id": report["id"]})
    return ReportResult(
        timestamp=payload.timestamp, report_id=report["id"], metrics_count=len(metrics)
    )


# ============================================================================ hourly sync


def sync_external_data() -> dict:
    return {"count": 500, "status": "synced"}


@workflow(id="hourly_sync", schedule="0 * * * *")
async def hourly_sync(ctx: WorkflowContext, payload: SchedulePayload) -> SyncResult:
    """At minute 0 of every hour."""
    result = await ctx.step.run("sync_external_data", sync_external_data)
    await announce(ctx, payload, {"records_synced": result.get("count", 0)})
    return SyncResult(timestamp=payload.timestamp, records_synced=result.get("count", 0))


# ============================================================================ reminder


@workflow(id="schedulable_reminder", schedule=True)
async def schedulable_reminder(ctx: WorkflowContext, payload: SchedulePayload) -> ReminderResult:
    """No schedule of its own: `schedules.create(...)` gives it one per key."""
    message = f"Scheduled reminder for {payload.key}!"
    await ctx.step.run("send_reminder", lambda: {"to": payload.key, "message": message})
    await announce(ctx, payload, {"message": message})
    return ReminderResult(timestamp=payload.timestamp, message=message, sent=True)
