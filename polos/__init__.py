"""Polos: durable workflows as plain async Python functions.

    from polos import workflow, WorkflowContext, Polos

The public contract is what this module and `polos.types.types` export (a test pins it).
"""

from polos import events, schedules
from polos.sdk.client import ExecutionHandle, PolosClient, batch_invoke
from polos.sdk.context import WorkflowContext, WorkflowState
from polos.sdk.errors import (
    DuplicateStepKeyError,
    ExecutionCancelledError,
    PayloadValidationError,
    PolosApiError,
    PolosError,
    StepExecutionError,
    WorkflowDivergenceError,
    WorkflowFailedError,
    WorkflowNotFoundError,
    WorkflowTimeoutError,
)
from polos.sdk.events import BatchEventPayload, EventPayload
from polos.sdk.hooks import HookAction, HookContext, HookResult, hook
from polos.sdk.polos import Polos
from polos.sdk.queue import Queue, queue
from polos.sdk.schedules import SchedulePayload
from polos.sdk.workflow import Workflow, get_all_workflows, get_workflow, workflow
from polos.types.types import BatchStepResult, BatchWorkflowInput
from polos.worker.worker import Worker

__all__ = [
    "BatchEventPayload",
    "BatchStepResult",
    "BatchWorkflowInput",
    "DuplicateStepKeyError",
    "EventPayload",
    "ExecutionCancelledError",
    "ExecutionHandle",
    "HookAction",
    "HookContext",
    "HookResult",
    "PayloadValidationError",
    "Polos",
    "PolosApiError",
    "PolosClient",
    "PolosError",
    "Queue",
    "SchedulePayload",
    "StepExecutionError",
    "Worker",
    "Workflow",
    "WorkflowContext",
    "WorkflowDivergenceError",
    "WorkflowFailedError",
    "WorkflowNotFoundError",
    "WorkflowState",
    "WorkflowTimeoutError",
    "batch_invoke",
    "events",
    "get_all_workflows",
    "get_workflow",
    "hook",
    "queue",
    "schedules",
    "workflow",
]

__version__ = "0.1.0"
