"""Failure policies of a batch wait (`batch_invoke_and_wait(..., fail_fast=, min_success=)`).

A batch step without a policy resolves when its last child is final. With one, it resolves as
soon as the policy is met:

- `fail_fast`: a child failed for good (failed after its retries, or cancelled);
- `min_success=k`: k children succeeded, or so many failed that k can no longer be reached.

Then the children not yet final (and their descendants) are cancelled in the same transaction
(slots freed at once, attempts fenced); cancelling them finishes the wait through the ordinary
path (`children.notify_parents`), which records the batch result, in input order, and wakes the
parent. The recorded result is what the parent sees on every replay, whatever happens later.
"""

from __future__ import annotations

from polos.model import ErrorInfo, ExecutionStatus
from polos.server.cancel import cancel_batch_rest
from polos.store.base import StoreTx


def _verdict(fail_fast: bool, min_success: int | None, counts: dict[str, int]) -> str | None:
    """Why the wait ends now, or None while it goes on."""
    succeeded = counts.get(ExecutionStatus.COMPLETED.value, 0)
    failed = counts.get(ExecutionStatus.FAILED.value, 0) + counts.get(
        ExecutionStatus.CANCELLED.value, 0
    )
    unfinished = sum(counts.values()) - succeeded - failed
    if unfinished == 0:
        return None  # the ordinary path resolves it
    if fail_fast and failed:
        return "a child failed (fail_fast)"
    if min_success is not None:
        if succeeded >= min_success:
            return f"{succeeded} children succeeded (min_success={min_success})"
        if succeeded + unfinished < min_success:
            return f"min_success={min_success} can no longer be reached"
    return None


async def apply(
    tx: StoreTx,
    parent_id: str,
    step_key: str,
    fail_fast: bool,
    min_success: int | None,
    now: float,
) -> bool:
    """End a waiting batch step whose policy (as its step row holds it) is met; True when it
    did."""
    if not fail_fast and min_success is None:
        return False
    reason = _verdict(fail_fast, min_success, await tx.child_status_counts(parent_id, step_key))
    if reason is None:
        return False
    error = ErrorInfo(
        "ExecutionCancelledError", f"cancelled: batch step {step_key!r} stopped waiting: {reason}"
    )
    await cancel_batch_rest(tx, parent_id, step_key, error, now)
    return True
