"""Workflows of the wait tests (tests/e2e/test_waits.py): short waits that sleep in place, long
waits that suspend, `wait_until`. Each body run appends a JSON line to the log named in the
payload (what the waits returned on that run), so the test can compare first runs and replays.
"""

from __future__ import annotations

import json
import os
import time
from datetime import datetime
from typing import Any

from polos import Queue, WorkflowContext, workflow
from tests.e2e.apps.engine import append_line

# One slot: a waiting execution that held it would block every other execution of the queue.
WAIT_QUEUE = Queue("model_wait_q", concurrency_limit=1)


def log_run(path: str | None, **fields: Any) -> None:
    if path:
        append_line(path, json.dumps({"pid": os.getpid(), "at": time.time(), **fields}))


@workflow(id="wait_short")
async def wait_short(ctx: WorkflowContext, payload: dict[str, Any]) -> dict[str, Any]:
    started = time.monotonic()
    value = await ctx.step.wait_for("short", seconds=payload["seconds"])
    slept = time.monotonic() - started
    log_run(payload.get("log"), short=value, slept=slept)
    return {"value": value, "slept": slept}


@workflow(id="wait_long", queue=WAIT_QUEUE)
async def wait_long(ctx: WorkflowContext, payload: dict[str, Any]) -> dict[str, Any]:
    """A short wait, then a long one (`minutes`): the long one suspends; a replay follows."""
    short = await ctx.step.wait_for("short", seconds=0.05)
    log_run(payload.get("log"), phase="before_long", short=short)
    long = await ctx.step.wait_for("long", minutes=payload["minutes"])
    log_run(payload.get("log"), phase="after_long", short=short, long=long)
    return {"short": short, "long": long}


@workflow(id="wait_quick", queue=WAIT_QUEUE)
async def wait_quick(ctx: WorkflowContext, payload: dict[str, Any]) -> dict[str, Any]:
    """Shares wait_long's one-slot queue: runs only if the waiting execution holds no slot."""
    return {"quick": payload["i"]}


@workflow(id="wait_until_wf")
async def wait_until_wf(ctx: WorkflowContext, payload: dict[str, Any]) -> dict[str, Any]:
    """Waits until `payload["at"]` (ISO 8601; given without an offset, it is naive)."""
    at = datetime.fromisoformat(payload["at"])
    value = await ctx.step.wait_until("until", at)
    log_run(payload.get("log"), until=value, naive=at.tzinfo is None)
    return {"value": value, "naive": at.tzinfo is None, "tz": os.environ.get("TZ")}


@workflow(id="wait_secs")
async def wait_secs(ctx: WorkflowContext, payload: dict[str, Any]) -> dict[str, Any]:
    """One wait of `seconds` (long or short depending on POLOS_WAIT_THRESHOLD_SECONDS)."""
    value = await ctx.step.wait_for("w", seconds=payload["seconds"])
    return {"value": value}
