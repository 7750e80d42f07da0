"""Pins the public SDK surface: what `polos` and `polos.types.types` export."""

from __future__ import annotations

import inspect

import polos
from polos.types.types import BatchStepResult, BatchWorkflowInput

EXPECTED = {
    "BatchEventPayload",
    "BatchStepResult",
    "EventPayload",
    "HookAction",
    "HookContext",
    "HookResult",
    "SchedulePayload",
    "WorkflowState",
    "batch_invoke",
    "events",
    "hook",
    "schedules",
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
    "WorkflowDivergenceError",
    "WorkflowFailedError",
    "WorkflowNotFoundError",
    "WorkflowTimeoutError",
    "get_all_workflows",
    "get_workflow",
    "queue",
    "workflow",
}


def test_exports() -> None:
    assert set(polos.__all__) == EXPECTED
    for name in EXPECTED:
        assert getattr(polos, name) is not None


def test_seed_imports() -> None:
    from polos import (
        Polos,
        PolosClient,
        StepExecutionError,
        Worker,
        WorkflowContext,
        queue,
        workflow,
    )

    assert all([Polos, PolosClient, StepExecutionError, Worker, WorkflowContext, queue, workflow])


def test_batch_models_fields() -> None:
    assert set(BatchWorkflowInput.model_fields) >= {
        "id",
        "payload",
        "initial_state",
        "run_timeout_seconds",
    }
    assert set(BatchStepResult.model_fields) >= {
        "workflow_id",
        "execution_id",
        "success",
        "result",
        "error",
    }


def test_step_run_signature_matches_upstream() -> None:
    from polos.sdk.step import Step

    params = inspect.signature(Step.run).parameters
    assert params["max_retries"].default == 2
    assert params["base_delay"].default == 1.0
    assert params["max_delay"].default == 10.0


def test_workflow_run_signature_matches_upstream() -> None:
    params = inspect.signature(polos.Workflow.run).parameters
    assert list(params)[:8] == [
        "self",
        "client",
        "payload",
        "queue",
        "concurrency_key",
        "session_id",
        "user_id",
        "timeout",
    ]
    assert params["timeout"].default == 600.0
