"""Cancellation: an execution and its unfinished descendants end as `cancelled` in one
transaction. Their slots are freed and their attempts fenced (a worker running one is told by
its next heartbeat or report and stops at its next step). A cancelled child finishes its
parent's wait like a failure; a cancelled root writes its `workflow_finish` event."""

from __future__ import annotations

from collections import Counter
from collections.abc import Awaitable, Callable

from polos.model import ErrorInfo, ExecutionStatus, FenceRow
from polos.server import children, events
from polos.server.lifecycle import release_slots
from polos.store.base import StoreTx

CANCELLED = ErrorInfo("ExecutionCancelledError", "the execution was cancelled")


async def cancel_tree(
    tx: StoreTx, execution_id: str, error: ErrorInfo, now: float
) -> list[FenceRow]:
    """Cancel an execution and its unfinished descendants."""
    return await _cancel(tx, lambda: tx.unfinished_tree(execution_id), error, now)


async def cancel_batch_rest(
    tx: StoreTx, parent_id: str, step_key: str, error: ErrorInfo, now: float
) -> list[FenceRow]:
    """Cancel the unfinished children of a parent's step (and their descendants): a batch
    whose failure policy is met waits for them no more."""
    return await _cancel(tx, lambda: tx.unfinished_subtrees(parent_id, step_key), error, now)


async def _cancel(
    tx: StoreTx,
    read_tree: Callable[[], Awaitable[list[FenceRow]]],
    error: ErrorInfo,
    now: float,
) -> list[FenceRow]:
    rows = await read_tree()
    if not rows:
        return []
    # On PostgreSQL the tree is read from the statement's snapshot, taken before its row locks
    # were granted: a report that held one of those rows may have added children under it and
    # committed meanwhile. Read again (a new snapshot, rows as they are now) until nothing new
    # appears; a row locked here gets no new children (a report locks the parent first).
    while True:
        again = await read_tree()
        grew = not {r.id for r in again} <= {r.id for r in rows}
        rows = again
        if not grew or not rows:
            break
    if not rows:
        return []
    ids = {r.id for r in rows}
    await tx.cancel_executions(sorted(ids), error, now)
    await release_slots(tx, [r for r in rows if r.status is ExecutionStatus.RUNNING])
    # A parent outside the cancelled set waits for these children: they count as finished.
    finished: Counter[tuple[str, str]] = Counter()
    roots = []
    counted = tx.observe().finished
    for r in rows:
        tx.notify_final(r.id)
        counted[(r.project_id, r.workflow_id, ExecutionStatus.CANCELLED.value)] += 1
        if r.parent_execution_id is None:
            roots.append(r)
        elif r.notify_parent and r.parent_step_key and r.parent_execution_id not in ids:
            finished[(r.parent_execution_id, r.parent_step_key)] += 1
    if roots:
        await events.publish(
            tx,
            rows[0].project_id,
            [
                events.finish_event(
                    r.project_id,
                    r.workflow_id,
                    r.id,
                    ExecutionStatus.CANCELLED,
                    None,
                    error.to_json(),
                )
                for r in roots
            ],
            now,
        )
    await children.notify_parents(tx, finished, now)
    return rows
