"""`ctx.step`'s event primitives: `publish_event`, `publish_workflow_event`, `wait_for_event`,
and `suspend`/`resume` (a wait for a human, built on events).

A mixin of `Step` (polos/sdk/step.py), which is the public entry point. Published events are
stored with the step's record; waits for an event suspend the execution (no slot held).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from polos import codec, protocol
from polos.model import StepKind
from polos.sdk.step_base import StepSlot, _raise_recorded, _StepBase
from polos.worker import reports

if TYPE_CHECKING:
    from polos.sdk.events import EventPayload


class _EventSteps(_StepBase):
    """Publishing events, waiting for them, and suspending until resumed."""

    def _event_data(self, slot: StepSlot, data: Any) -> str:
        return self._storable(slot, data if data is not None else {}, "event data")

    async def publish_event(
        self, step_key: str, topic: str, data: Any, event_type: str | None = None
    ) -> None:
        """Publish an event on `topic`, once (the event is stored with the step's record)."""
        slot = self._rt.begin(step_key, StepKind.PUBLISH)
        if slot.recorded is not None:
            return self._recorded_none(slot)
        event = protocol.EventPublish(
            topic=topic, event_type=event_type, data=self._event_data(slot, data)
        )
        self._rt.record(
            reports.StepReport(
                key=slot.key,
                kind=slot.kind.value,
                status="completed",
                position=slot.position,
                result="null",
            ),
            events=[event],
        )

    async def publish_workflow_event(
        self, step_key: str, data: Any, event_type: str | None = None
    ) -> None:
        """Publish on this run's topic (the root execution's), which `stream_workflow` reads."""
        ctx = self._ctx
        topic = f"workflow/{ctx.root_workflow_id}/{ctx.root_execution_id}"
        await self.publish_event(step_key, topic, data, event_type)

    async def wait_for_event(
        self, step_key: str, topic: str, timeout: int | None = None
    ) -> EventPayload:
        """Wait (suspended, no slot held) for the next event on `topic`: the first one after
        this execution started, or after the last one it took from this topic. An event that
        arrives before the wait is registered is not lost. After `timeout` seconds the step
        fails with StepExecutionError (EventWaitTimeoutError)."""
        from polos.sdk.events import EventPayload

        slot = self._rt.begin(step_key, StepKind.WAIT_EVENT)
        if slot.recorded is not None:
            if slot.recorded.status == "failed":
                _raise_recorded(slot.recorded)
            return EventPayload.model_validate(codec.loads(slot.recorded.result))
        pending = self._pending(slot)
        pending.wait_topic = topic
        pending.wait_after_seq = self._rt.consumed_up_to(topic)
        pending.wait_timeout_seconds = timeout
        self._suspend(slot, pending)

    # -- suspend / resume --------------------------------------------------------------

    async def suspend(
        self,
        step_key: str,
        data: dict[str, Any] | BaseModel | None = None,
        timeout: int | None = None,
    ) -> dict[str, Any]:
        """Pause for a human (or any outside party): publishes `suspend_{step_key}` with
        `data` on this execution's topic and waits, holding no slot, for `resume_{step_key}`
        (`client.resume(...)`). Returns the resume event as a dict: its payload is in
        `["data"]`. A resume sent before the suspension registered is kept. After `timeout`
        seconds the step fails with StepExecutionError (SuspendTimeoutError)."""
        slot = self._rt.begin(step_key, StepKind.SUSPEND)
        if slot.recorded is not None:
            if slot.recorded.status == "failed":
                _raise_recorded(slot.recorded)
            value: dict[str, Any] = codec.loads(slot.recorded.result)
            return value
        ctx = self._ctx
        topic = f"workflow/{ctx.workflow_id}/{ctx.execution_id}"
        pending = self._pending(slot)
        pending.wait_topic = topic
        pending.wait_event_type = f"resume_{step_key}"
        pending.wait_timeout_seconds = timeout
        # Checked before the announcement is built: `suspend_{key}` is as long as the resume.
        self._check_pending(slot, pending)
        announce = protocol.EventPublish(
            topic=topic, event_type=f"suspend_{step_key}", data=self._event_data(slot, data)
        )
        self._suspend(slot, pending, [], [announce])

    async def resume(
        self,
        step_key: str,
        suspend_step_key: str,
        suspend_execution_id: str,
        suspend_workflow_id: str,
        data: Any,
    ) -> None:
        """Resume another execution's `suspend(suspend_step_key)`, once."""
        await self.publish_event(
            step_key,
            f"workflow/{suspend_workflow_id}/{suspend_execution_id}",
            data,
            event_type=f"resume_{suspend_step_key}",
        )
