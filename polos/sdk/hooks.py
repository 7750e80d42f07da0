"""`on_start` / `on_end` hooks: functions `(ctx, hook_context) -> HookResult` that run around
a workflow, each as a durable step (key `on_start.<name>.<i>` / `on_end.<name>.<i>`).

Fixed against upstream: the payload or the result is replaced only when a hook returns a
modification (pydantic payloads and results pass through untouched, and a `None` result stays
`None`); a hook that fails stops the chain with `StepExecutionError`.
"""

from __future__ import annotations

import enum
import inspect
from collections.abc import Callable
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field

F = TypeVar("F", bound=Callable[..., Any])


class HookAction(enum.StrEnum):
    CONTINUE = "continue"
    FAIL = "fail"


class HookContext(BaseModel):
    model_config = ConfigDict(arbitrary_types_allowed=True)

    workflow_id: str
    session_id: str | None = None
    user_id: str | None = None
    agent_config: Any = None
    steps: list[Any] = Field(default_factory=list)
    current_tool: str | None = None
    current_payload: Any = None
    current_output: Any = None


class HookResult(BaseModel):
    action: HookAction = HookAction.CONTINUE
    modified_payload: Any = None
    modified_output: Any = None
    error_message: str | None = None

    @classmethod
    def continue_with(cls, **modifications: Any) -> HookResult:
        return cls(action=HookAction.CONTINUE, **modifications)

    @classmethod
    def fail(cls, message: str) -> HookResult:
        return cls(action=HookAction.FAIL, error_message=message)


def hook(func: F) -> F:
    """Mark a hook; it must take exactly (ctx, hook_context)."""
    params = list(inspect.signature(func).parameters.values())
    if len(params) != 2:
        raise TypeError(
            f"hook {getattr(func, '__name__', func)!r} must take (ctx, hook_context), "
            f"not {inspect.signature(func)}"
        )
    return func


def normalize(hooks: Any, where: str) -> list[Callable[..., Any]]:
    if hooks is None:
        return []
    items = list(hooks) if isinstance(hooks, list | tuple) else [hooks]
    for h in items:
        if not callable(h) or isinstance(h, str):
            raise TypeError(f"{where}: hooks must be functions, not {h!r}")
        hook(h)
    return items
