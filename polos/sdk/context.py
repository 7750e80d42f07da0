"""`WorkflowContext`: what a workflow function receives as `ctx`."""

from __future__ import annotations

import asyncio
import contextvars
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict

if TYPE_CHECKING:
    from polos.sdk.step import Step, StepRuntime

# The attempt running on this task; set by the worker around a workflow function. Client calls
# such as `Workflow.run` refuse to run while it is set.
_current_attempt: contextvars.ContextVar[StepRuntime | None] = contextvars.ContextVar(
    "polos_current_attempt", default=None
)


def current_attempt() -> StepRuntime | None:
    return _current_attempt.get()


def set_current_attempt(runtime: StepRuntime | None) -> contextvars.Token[StepRuntime | None]:
    return _current_attempt.set(runtime)


def _parse_created_at(value: datetime | str | float | None) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value
    if isinstance(value, int | float):
        return datetime.fromtimestamp(value, UTC)
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


class WorkflowContext:
    """The execution a workflow function runs in. Everything durable goes through `ctx.step`."""

    step: Step

    def __init__(
        self,
        workflow_id: str,
        execution_id: str,
        deployment_id: str | None,
        session_id: str | None,
        user_id: str | None = None,
        parent_execution_id: str | None = None,
        root_execution_id: str | None = None,
        root_workflow_id: str | None = None,
        retry_count: int = 0,
        created_at: datetime | str | float | None = None,
        workflow_type: str = "workflow",
        otel_traceparent: str | None = None,
        otel_span_id: str | None = None,
        state_schema: type[BaseModel] | None = None,
        initial_state: BaseModel | dict[str, Any] | None = None,
        cancel_event: asyncio.Event | None = None,
        channels: list[Any] | None = None,
        channel_context: Any = None,
    ) -> None:
        self.workflow_id = workflow_id
        self.execution_id = execution_id
        self.deployment_id = deployment_id
        self.session_id = session_id
        self.user_id = user_id
        self.parent_execution_id = parent_execution_id
        self.root_execution_id = root_execution_id or execution_id
        self.root_workflow_id = root_workflow_id or workflow_id
        self.retry_count = retry_count
        self.created_at = _parse_created_at(created_at)
        self.workflow_type = workflow_type
        self.otel_traceparent = otel_traceparent
        self.otel_span_id = otel_span_id
        self.cancel_event = cancel_event
        self.channels = channels or []
        self.channel_context = channel_context
        self.state_schema = state_schema
        self.state: BaseModel | None = None
        if state_schema is not None:
            if isinstance(initial_state, state_schema):
                self.state = initial_state
            elif initial_state is not None:
                self.state = state_schema.model_validate(
                    initial_state.model_dump()
                    if isinstance(initial_state, BaseModel)
                    else initial_state
                )
            else:
                self.state = state_schema()

    def to_dict(self) -> dict[str, Any]:
        return {
            "workflow_id": self.workflow_id,
            "execution_id": self.execution_id,
            "deployment_id": self.deployment_id,
            "parent_execution_id": self.parent_execution_id,
            "root_execution_id": self.root_execution_id,
            "root_workflow_id": self.root_workflow_id,
            "retry_count": self.retry_count,
            "created_at": self.created_at.isoformat() if self.created_at else None,
            "session_id": self.session_id,
            "user_id": self.user_id,
        }

    def __repr__(self) -> str:
        return (
            f"WorkflowContext(workflow_id={self.workflow_id!r}, execution_id={self.execution_id!r})"
        )


class WorkflowState(BaseModel):
    """A base for `state_schema=` classes: assignments are validated."""

    model_config = ConfigDict(validate_assignment=True)
