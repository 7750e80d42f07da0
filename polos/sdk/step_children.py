"""`ctx.step`'s child-workflow primitives: `invoke`, `invoke_and_wait`, `batch_invoke` and
`batch_invoke_and_wait`, with what builds their submissions and handles and rebuilds the
children's results on replay.

A mixin of `Step` (polos/sdk/step.py), which is the public entry point; it lives apart because
starting children (one or a batch, with or without waiting) is the largest group of primitives.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from polos import codec, protocol
from polos.model import StepKind
from polos.sdk.errors import StepExecutionError
from polos.sdk.step_base import StepSlot, _raise_recorded, _StepBase
from polos.sdk.workflow import Workflow, get_workflow
from polos.types.types import BatchStepResult, BatchWorkflowInput
from polos.worker import reports

if TYPE_CHECKING:
    from polos.sdk.client import ExecutionHandle


class _ChildSteps(_StepBase):
    """Starting child executions, alone or in batches, waiting for them or not."""

    def _submission(
        self,
        slot: StepSlot,
        index: int,
        workflow: str | Workflow,
        payload: Any,
        *,
        initial_state: Any,
        queue: str | None,
        concurrency_key: str | None,
        run_timeout_seconds: float | None,
        wait: bool,
        idempotency_key: str | None = None,
    ) -> protocol.ChildSubmission:
        if isinstance(workflow, Workflow):
            wf: Workflow | None = workflow
            workflow_id = workflow.id
        elif isinstance(workflow, str):
            workflow_id = workflow
            wf = get_workflow(workflow)
        else:
            raise TypeError(
                f"step {slot.key!r}: workflow must be a workflow ID or a Workflow, "
                f"not {type(workflow).__name__}"
            )
        payload_text = self._storable(slot, payload, f"payload for workflow {workflow_id!r}")
        state_text = (
            None
            if initial_state is None
            else self._storable(slot, initial_state, f"initial state for workflow {workflow_id!r}")
        )
        return protocol.ChildSubmission(
            step_key=slot.key,
            index=index,
            workflow_id=workflow_id,
            payload=payload_text,
            queue_name=queue or (wf.queue_name if wf else None),
            queue_concurrency_limit=wf.queue_concurrency_limit if wf else None,
            concurrency_key=concurrency_key,
            initial_state=state_text,
            run_timeout_seconds=run_timeout_seconds,
            wait=wait,
            idempotency_key=idempotency_key,
        )

    def _handle(self, submission: protocol.ChildSubmission) -> ExecutionHandle:
        from polos.sdk.client import ExecutionHandle

        ctx = self._ctx
        if submission.idempotency_key:
            execution_id = protocol.idempotent_execution_id(
                self._rt.project_id, submission.idempotency_key
            )
        else:
            execution_id = protocol.child_execution_id(
                ctx.execution_id, submission.step_key, submission.index
            )
        return ExecutionHandle(
            id=execution_id,
            workflow_id=submission.workflow_id,
            parent_execution_id=ctx.execution_id,
            root_workflow_id=ctx.root_workflow_id,
            root_execution_id=ctx.root_execution_id,
            session_id=ctx.session_id,
            user_id=ctx.user_id,
            step_key=submission.step_key,
        )

    @staticmethod
    def _handles(entry: protocol.JournalEntry) -> list[ExecutionHandle]:
        from polos.sdk.client import ExecutionHandle

        if entry.status == "failed":
            _raise_recorded(entry)
        return [ExecutionHandle.model_validate(h) for h in codec.loads(entry.result) or []]

    async def invoke(
        self,
        step_key: str,
        workflow: str | Workflow,
        payload: Any,
        initial_state: BaseModel | dict[str, Any] | None = None,
        queue: str | None = None,
        concurrency_key: str | None = None,
        run_timeout_seconds: int | None = None,
        idempotency_key: str | None = None,
    ) -> ExecutionHandle:
        """Start a child execution and go on (fire-and-forget); returns its handle.

        The child is submitted at most once whatever happens to this execution. With an
        `idempotency_key`, every start with that key in the project (by any client or step)
        is the same execution: an existing one is returned instead of starting another.
        """
        slot = self._rt.begin(step_key, StepKind.INVOKE)
        if slot.recorded is not None:
            return self._handles(slot.recorded)[0]
        submission = self._submission(
            slot,
            0,
            workflow,
            payload,
            initial_state=initial_state,
            queue=queue,
            concurrency_key=concurrency_key,
            run_timeout_seconds=run_timeout_seconds,
            wait=False,
            idempotency_key=idempotency_key,
        )
        handle = self._handle(submission)
        self._rt.record(
            reports.StepReport(
                key=slot.key,
                kind=slot.kind.value,
                status="completed",
                position=slot.position,
                result=codec.dumps([handle.model_dump(mode="json")]),
            ),
            [submission],
        )
        return handle

    async def invoke_and_wait(
        self,
        step_key: str,
        workflow: str | Workflow,
        payload: Any,
        initial_state: BaseModel | dict[str, Any] | None = None,
        queue: str | None = None,
        concurrency_key: str | None = None,
        run_timeout_seconds: int | None = None,
    ) -> Any:
        """Start a child execution and return its result (rebuilt into its return type).

        This execution is suspended meanwhile (it holds no worker or queue slot). A child that
        fails raises `StepExecutionError` with the child's error.
        """
        slot = self._rt.begin(step_key, StepKind.INVOKE_WAIT)
        workflow_id = workflow.id if isinstance(workflow, Workflow) else workflow
        if slot.recorded is not None:
            entry = slot.recorded
            if entry.status == "failed":
                error = entry.error
                raise StepExecutionError(
                    f"Step '{step_key}': child workflow {workflow_id!r} failed: "
                    f"{error.type if error else 'Error'}: {error.message if error else ''}",
                    step_key=step_key,
                    error_type=error.type if error else None,
                )
            return _rebuild_child_result(
                workflow_id, codec.loads(entry.result), entry.output_schema
            )
        submission = self._submission(
            slot,
            0,
            workflow,
            payload,
            initial_state=initial_state,
            queue=queue,
            concurrency_key=concurrency_key,
            run_timeout_seconds=run_timeout_seconds,
            wait=True,
        )
        self._rt.suspend(self._pending(slot), [submission])

    def _batch_submissions(
        self, slot: StepSlot, workflows: Sequence[BatchWorkflowInput], wait: bool
    ) -> list[protocol.ChildSubmission]:
        submissions = []
        for index, item in enumerate(workflows):
            if not isinstance(item, BatchWorkflowInput):
                raise TypeError(
                    f"step {slot.key!r}: item {index} is a {type(item).__name__}, "
                    "expected BatchWorkflowInput"
                )
            submissions.append(
                self._submission(
                    slot,
                    index,
                    item.id,
                    item.payload,
                    initial_state=item.initial_state,
                    queue=item.queue,
                    concurrency_key=item.concurrency_key,
                    run_timeout_seconds=item.run_timeout_seconds,
                    wait=wait,
                )
            )
        return submissions

    async def batch_invoke(
        self, step_key: str, workflows: list[BatchWorkflowInput]
    ) -> list[ExecutionHandle]:
        """Start many children at once and go on; returns their handles in input order."""
        slot = self._rt.begin(step_key, StepKind.BATCH_INVOKE)
        if slot.recorded is not None:
            return self._handles(slot.recorded)
        if not workflows:
            return []
        submissions = self._batch_submissions(slot, workflows, wait=False)
        handles = [self._handle(s) for s in submissions]
        self._rt.record(
            reports.StepReport(
                key=slot.key,
                kind=slot.kind.value,
                status="completed",
                position=slot.position,
                result=codec.dumps([h.model_dump(mode="json") for h in handles]),
            ),
            submissions,
        )
        return handles

    async def batch_invoke_and_wait(
        self,
        step_key: str,
        workflows: list[BatchWorkflowInput],
        fail_fast: bool = False,
        min_success: int | None = None,
    ) -> list[BatchStepResult]:
        """Start many children at once and return every outcome, in input order.

        Failures are values: a failed child is `success=False` with its error; this call does
        not raise for it. This execution is suspended meanwhile (no slot held).

        By default it waits until every child is final (retries included). With
        `fail_fast=True` it returns as soon as one child has failed for good; with
        `min_success=k`, as soon as k children succeeded, or once k can no longer be reached.
        The children not final by then are cancelled (their slots freed at once) and appear
        as `success=False` with an `ExecutionCancelledError`; the others keep their outcomes.
        What was recorded is what every replay returns.
        """
        if not isinstance(fail_fast, bool):
            raise TypeError(f"fail_fast must be a bool, not {fail_fast!r}")
        if min_success is not None and (
            isinstance(min_success, bool)
            or not isinstance(min_success, int)
            or not 1 <= min_success <= len(workflows)
        ):
            raise ValueError(
                f"min_success must be an int from 1 to the number of workflows "
                f"({len(workflows)}), not {min_success!r}"
            )
        slot = self._rt.begin(step_key, StepKind.BATCH_WAIT)
        if slot.recorded is not None:
            entry = slot.recorded
            if entry.status == "failed":
                _raise_recorded(entry)
            return [_batch_result(item) for item in codec.loads(entry.result) or []]
        if not workflows:
            return []
        submissions = self._batch_submissions(slot, workflows, wait=True)
        pending = self._pending(slot)
        pending.fail_fast = fail_fast
        pending.min_success = min_success
        self._suspend(slot, pending, submissions)


def _rebuild_child_result(workflow_id: str, value: Any, schema: str | None) -> Any:
    wf = get_workflow(workflow_id)
    if wf is not None:
        return wf.decode_result(value, schema)
    return codec.rebuild(value, None, schema)


def _batch_result(item: dict[str, Any]) -> BatchStepResult:
    error = item.get("error")
    success = bool(item.get("success"))
    return BatchStepResult(
        workflow_id=item["workflow_id"],
        execution_id=item["execution_id"],
        success=success,
        result=_rebuild_child_result(
            item["workflow_id"], item.get("result"), item.get("output_schema")
        )
        if success
        else None,
        error=error.get("message") if isinstance(error, dict) else error,
        error_type=error.get("type") if isinstance(error, dict) else None,
    )
