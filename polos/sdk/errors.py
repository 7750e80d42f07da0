"""Exceptions users see. Messages name the workflow ID and step key they concern."""

from __future__ import annotations


class PolosError(Exception):
    """Base class of the SDK's own errors."""


class StepExecutionError(PolosError):
    """A step failed (after its retries), or a child it waited for failed.

    Raised by `ctx.step.*`; the same message is raised again when the execution replays. When it
    escapes a workflow, the execution fails without workflow-level retries.
    """

    def __init__(self, reason: str, step_key: str | None = None, error_type: str | None = None):
        super().__init__(reason)
        self.reason = reason
        self.step_key = step_key
        self.error_type = error_type


class ValueTooLargeError(PolosError, ValueError):
    """A payload, result or state is larger than the server stores (2 MiB by default)."""


class DuplicateStepKeyError(PolosError):
    """A step key was used twice in one execution. Keys in loops need an index: f"item_{i}"."""


class InvalidStepKeyError(PolosError, ValueError):
    """A step key that cannot be stored: empty, too long, NUL bytes or lone surrogates."""


class WorkflowNotFoundError(PolosError, LookupError):
    """The server does not know this workflow ID (no worker ever registered it)."""

    def __init__(self, message: str, workflow_id: str | None = None) -> None:
        super().__init__(message)
        self.workflow_id = workflow_id


class PayloadValidationError(PolosError, ValueError):
    """The payload does not fit the workflow's payload type. Not retried."""


class WorkflowTimeoutError(PolosError, TimeoutError):
    """`Workflow.run` waited `timeout` seconds without the execution finishing.

    The execution itself goes on; only the client stopped waiting.
    """

    def __init__(self, execution_id: str | None = None, timeout_seconds: float | None = None):
        super().__init__(
            f"Execution timed out after {timeout_seconds} seconds (execution_id: {execution_id})"
        )
        self.execution_id = execution_id
        self.timeout_seconds = timeout_seconds


class WorkflowFailedError(PolosError, RuntimeError):
    """The execution `Workflow.run` waited for ended as failed (or cancelled)."""

    def __init__(
        self,
        message: str,
        execution_id: str | None = None,
        error_type: str | None = None,
        status: str = "failed",
    ) -> None:
        super().__init__(message)
        self.execution_id = execution_id
        self.error_type = error_type
        self.status = status


class ClientCallInWorkflowError(PolosError, RuntimeError):
    """A client call (`Workflow.run`, `Workflow.invoke`) made inside a workflow. Not retried:
    the code has to change (use `ctx.step.invoke_and_wait` / `ctx.step.invoke`)."""


class WorkflowDivergenceError(PolosError):
    """On replay, the code asked for another step than the journal recorded at that place:
    the workflow's code changed under a running execution. Not retried (the code has to be
    fixed, or the change put behind `ctx.step.patched`)."""

    def __init__(
        self,
        message: str,
        workflow_id: str = "",
        position: int = 0,
        recorded: tuple[str, str] | None = None,
        requested: tuple[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.workflow_id = workflow_id
        self.position = position
        self.recorded = recorded  # (step key, kind) in the journal
        self.requested = requested  # (step key, kind) the code asked for


class ExecutionCancelledError(PolosError):
    """The execution was cancelled; raised by the next step it starts."""


class PolosApiError(PolosError):
    """The server refused a request (4xx) or failed (5xx)."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{message} (HTTP {status}, {code})")
        self.status = status
        self.code = code
        self.message = message
