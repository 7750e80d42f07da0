"""Who gets what, under which limits: the claim of a worker.

One claim is one unit of work: it reads the queues' limits and usage, picks due executions
oldest first across the queues (only workflows the worker registered), moves them to `running`
under a new attempt and a lease, counts them against their queue in the same transaction (so a
limit holds under any load, design.md rule 8) and loads their journals (rule 2).
"""

from __future__ import annotations

import heapq
from collections import Counter
from dataclasses import dataclass

from polos.model import ClaimedExecution, TimerKind, WorkerInfo
from polos.store.base import StoreTx, UsageKey

# How many extra candidates a limited queue looks at, to get past executions whose
# concurrency key has no room.
_KEY_SLACK = 256


@dataclass(slots=True)
class _Candidate:
    id: str
    queue: str
    key: str
    ready_at: float


class WorkerGone(Exception):
    """The claiming worker is not registered (any more) in the claim's project."""

    def __init__(self, worker_id: str) -> None:
        super().__init__(worker_id)
        self.worker_id = worker_id


async def claim_for(
    tx: StoreTx, worker_id: str, project_id: str, max_count: int, now: float, lease_seconds: float
) -> list[ClaimedExecution]:
    """The claim of the worker `worker_id` of `project_id`, read in this transaction (the
    claim route's only read of it); `WorkerGone` if there is no such worker."""
    current, limits = await tx.worker_and_queue_limits(worker_id, project_id)
    if current is None or current.project_id != project_id:
        raise WorkerGone(worker_id)
    return await _claim(tx, current, max_count, now, lease_seconds, limits)


async def claim(
    tx: StoreTx, worker: WorkerInfo, max_count: int, now: float, lease_seconds: float
) -> list[ClaimedExecution]:
    """The claim of `worker` as it is stored now (nothing if it is gone)."""
    current = await tx.get_worker(worker.id)
    if current is None:
        return []
    return await _claim(tx, current, max_count, now, lease_seconds)


async def _claim(
    tx: StoreTx,
    worker: WorkerInfo,
    max_count: int,
    now: float,
    lease_seconds: float,
    limits: dict[str, int | None] | None = None,
) -> list[ClaimedExecution]:
    if max_count <= 0 or not worker.workflow_ids:
        return []
    # A long-poll may have been parked since before the worker froze (SIGSTOP, a VM pause):
    # its socket is still open, but a worker silent for a whole lease gets nothing until its
    # next heartbeat, or it would sit on work (and queue slots) for another lease.
    if worker.last_heartbeat_at < now - lease_seconds:
        return []
    project = worker.project_id
    if limits is None:
        limits = await tx.queue_limits(project)
    # The queues without a limit in one statement (on PostgreSQL a round trip per queue
    # would grow with the project's queues, not with what the worker serves).
    unlimited: dict[str, list[_Candidate]] = {q: [] for q, limit in limits.items() if limit is None}
    if unlimited:
        for execution_id, key, ready_at, queue in await tx.ready_candidates(
            project, list(unlimited), worker.workflow_ids, now, max_count
        ):
            unlimited[queue].append(_Candidate(execution_id, queue, key, ready_at))
    # Per queue, the candidates in order; then merged oldest-first across queues.
    per_queue: list[list[tuple[float, int, _Candidate]]] = []
    order = 0
    for queue, limit in limits.items():
        picked: list[tuple[float, int, _Candidate]] = []
        if limit is None:
            for candidate in unlimited[queue]:
                picked.append((candidate.ready_at, order, candidate))
                order += 1
        else:
            await tx.lock_queue_for_claim(project, queue)
            usage = await tx.queue_usage(project, queue)
            rows = await tx.ready_candidates_by_key(
                project, queue, worker.workflow_ids, now, limit, max_count + _KEY_SLACK
            )
            for execution_id, key, ready_at in rows:
                if usage.get(key, 0) >= limit:
                    continue
                usage[key] = usage.get(key, 0) + 1
                # Round-robin order across keys (not age) inside a limited queue.
                picked.append((ready_at, order, _Candidate(execution_id, queue, key, ready_at)))
                order += 1
        if picked:
            per_queue.append(picked)
    chosen = [c for _, _, c in heapq.merge(*per_queue)][:max_count]
    if not chosen:
        return []
    claimed = await tx.mark_running([c.id for c in chosen], worker.id, now + lease_seconds, now)
    won = {c.id for c in claimed}
    usage_delta: Counter[UsageKey] = Counter()
    latencies = tx.observe().dispatch_latencies
    for c in chosen:
        if c.id in won:
            usage_delta[(project, c.queue, c.key)] += 1
            latencies.append(now - c.ready_at)
    await tx.adjust_usage(usage_delta)
    # Only a replay has a journal: steps are recorded by an attempt that owns its execution
    # (or by the server for it), and `attempt` only grows, at each claim, so an execution
    # claimed for the first time has none. No read for those (on PostgreSQL a round trip per
    # claim: every single call's, and most claims of a fan-out).
    replays = [c.id for c in claimed if c.attempt > 1]
    journals = await tx.load_journals(replays) if replays else {}
    for execution in claimed:
        execution.journal = journals.get(execution.id, [])
        if execution.run_timeout_seconds is not None and execution.attempt == 1:
            # The run timeout counts from the first start, waits included.
            fire_at = now + execution.run_timeout_seconds
            await tx.insert_timer(
                project, TimerKind.RUN_TIMEOUT, fire_at, execution_id=execution.id
            )
            tx.notify_timer(fire_at)
    return claimed
