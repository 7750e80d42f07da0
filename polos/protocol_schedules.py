"""Wire models of the schedules API (cron schedules and their fired or skipped slots) and of
the test clock (`/api/v1/testing/...`, used by `polos.testing`)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, Field

from polos.protocol_base import Identifier, _Strict


class ScheduleRequest(_Strict):
    workflow_id: Identifier
    cron: Annotated[str, Field(min_length=1, max_length=200)]
    timezone: Identifier = "UTC"
    key: Identifier = "global"
    catch_up_seconds: Annotated[float, Field(ge=0, le=86_400 * 366)] = 3600.0


class ScheduleView(BaseModel):
    id: str
    workflow_id: str
    key: str
    cron: str
    timezone: str
    catch_up_seconds: float
    next_fire_at: str
    last_fire_at: str | None = None


class ScheduleResponse(BaseModel):
    schedule_id: str
    schedule: ScheduleView


class ScheduleList(BaseModel):
    schedules: list[ScheduleView]


class ScheduleSlotView(BaseModel):
    slot_at: str
    status: Literal["fired", "skipped"]
    execution_id: str | None = None


class ScheduleSlotList(BaseModel):
    slots: list[ScheduleSlotView]


class ClockAdvance(_Strict):
    seconds: Annotated[float, Field(ge=0, le=86_400 * 3650)]


class ClockView(BaseModel):
    now: float
    offset: float


class ClockAgenda(BaseModel):
    """The test clock's view of the work (`GET /api/v1/testing/agenda`; `polos.testing`).

    `settled`: nothing is running, no queued execution is due for a workflow a live worker
    serves, and no timer or schedule slot is due (`running == runnable == due == 0`).
    `next_due_at` is the earliest moment something falls due by itself: a durable timer (a
    wait, a wait or suspend timeout, a run timeout, a partial event batch), a schedule slot or
    a delayed retry; `next_due_kind` says which."""

    now: float
    offset: float
    settled: bool
    running: int
    # Queued, due, and served by a live worker: a worker will take them.
    runnable: int
    # Queued and due, but no live worker serves their workflow: they wait for one.
    unserved: int
    # Timers and schedule slots due by `now` and not fired yet.
    due: int
    next_due_at: float | None = None
    next_due_kind: str | None = None
    # Some of the executions that keep it from being settled ("workflow_id execution_id status").
    busy: list[str] = []
