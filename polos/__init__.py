"""Polos: durable workflows as plain async Python functions.

    from polos import workflow, WorkflowContext, Polos

The public contract is what this module and `polos.types.types` export (a test pins it).
"""

from polos.sdk.client import ExecutionHandle, PolosClient
from polos.sdk.context import WorkflowContext
from polos.sdk.errors import (
    DuplicateStepKeyError,
    ExecutionCancelledError,
    PayloadValidationError,
    PolosApiError,
    PolosError,
    StepExecutionError,
    WorkflowFailedError,
    WorkflowNotFoundError,
    WorkflowTimeoutError,
)
from polos.sdk.polos import Polos
from polos.sdk.queue import Queue, queue
from polos.sdk.workflow import Workflow, get_all_workflows, get_workflow, workflow
from polos.types.types import BatchStepResult, BatchWorkflowInput
from polos.worker.worker import Worker

__all__ = [
    "BatchStepResult",
    "BatchWorkflowInput",
    "DuplicateStepKeyError",
    "ExecutionCancelledError",
    "ExecutionHandle",
    "PayloadValidationError",
    "Polos",
    "PolosApiError",
    "PolosClient",
    "PolosError",
    "Queue",
    "StepExecutionError",
    "Worker",
    "Workflow",
    "WorkflowContext",
    "WorkflowFailedError",
    "WorkflowNotFoundError",
    "WorkflowTimeoutError",
    "get_all_workflows",
    "get_workflow",
    "queue",
    "workflow",
]

__version__ = "0.1.0"
