"""`ctx.step`'s durable waits: `wait_for` (a duration) and `wait_until` (a date).

A mixin of `Step` (polos/sdk/step.py), which is the public entry point. Short waits sleep in
place; longer ones suspend the execution on a durable timer (`wait_threshold_seconds`).
"""

from __future__ import annotations

import asyncio
import os
from datetime import UTC, datetime

from polos import codec
from polos.model import StepKind
from polos.sdk import clock
from polos.sdk.errors import StepExecutionError
from polos.sdk.step_base import StepSlot, _error_report, _StepBase
from polos.worker import reports


def wait_threshold_seconds() -> float:
    """Waits up to this long sleep in place (holding the slot); longer ones suspend."""
    return float(os.environ.get("POLOS_WAIT_THRESHOLD_SECONDS", "10"))


class _WaitSteps(_StepBase):
    """Durable waits: sleep in place when short, suspend on a durable timer when long."""

    async def wait_for(
        self,
        step_key: str,
        seconds: float | None = None,
        minutes: float | None = None,
        hours: float | None = None,
        days: float | None = None,
        weeks: float | None = None,
    ) -> None:
        """Wait durably. Short waits (up to POLOS_WAIT_THRESHOLD_SECONDS, 10 s) sleep in
        place; longer ones suspend the execution (no slot held) until a durable timer fires,
        also across restarts. Returns None, on the first run and on replay."""
        slot = self._rt.begin(step_key, StepKind.WAIT)
        if slot.recorded is not None:
            return self._recorded_none(slot)
        total = (
            (seconds or 0)
            + (minutes or 0) * 60
            + (hours or 0) * 3600
            + (days or 0) * 86_400
            + (weeks or 0) * 604_800
        )
        if total <= 0:
            message = f"Step '{step_key}': a wait must be positive, not {total} s"
            self._rt.record(_error_report(slot, "ValueError", message))
            raise StepExecutionError(message, step_key=step_key, error_type="ValueError")
        await self._wait(slot, total, None)

    async def wait_until(self, step_key: str, timestamp: datetime) -> None:
        """Wait durably until `timestamp` (a naive one is UTC). A time in the past fails the
        step with StepExecutionError."""
        slot = self._rt.begin(step_key, StepKind.WAIT)
        if slot.recorded is not None:
            return self._recorded_none(slot)
        if timestamp.tzinfo is None:
            timestamp = timestamp.replace(tzinfo=UTC)
        until = timestamp.timestamp()
        total = until - clock.now()
        if total <= 0:
            message = f"Step '{step_key}': wait date {timestamp.isoformat()} is in the past"
            self._rt.record(_error_report(slot, "ValueError", message))
            raise StepExecutionError(message, step_key=step_key, error_type="ValueError")
        await self._wait(slot, total, until)

    async def _wait(self, slot: StepSlot, total: float, until: float | None) -> None:
        if total <= wait_threshold_seconds():
            await self._rt.durable()
            await asyncio.sleep(total)
            ended = datetime.fromtimestamp(clock.now(), UTC).isoformat()
            self._rt.record(
                reports.StepReport(
                    key=slot.key,
                    kind=slot.kind.value,
                    status="completed",
                    position=slot.position,
                    result=codec.dumps({"wait_until": ended}),
                )
            )
            return
        pending = self._pending(slot)
        if until is not None:
            pending.wait_until = until
        else:
            pending.wait_seconds = total
        self._suspend(slot, pending)
