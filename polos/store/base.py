"""The storage seam: the interface every database implements, and what they share.

Lifecycle code (server/lifecycle.py, server/dispatch.py) is written once against `StoreTx`, a
set of small typed operations, and runs as *units of work*: `await store.run(work)` where
`work(tx)` is a coroutine. A unit is one atomic change. The SQLite store groups the units that
arrive together into one transaction (group commit); PostgreSQL runs each in its own.

Imports only `polos.model` (design.md, import direction).
"""

from __future__ import annotations

import abc
import asyncio
from collections.abc import Callable, Collection, Coroutine, Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Any, Protocol, TypeVar

from polos.model import (
    ApiKey,
    AttemptSteps,
    ChildOutcome,
    ClaimedExecution,
    ErrorInfo,
    ExecutionRow,
    FenceRow,
    FinalUpdate,
    NewExecution,
    RegisteredWorkflow,
    StepRecord,
    StepStatus,
    WorkerInfo,
    WorkflowRegistration,
)
from polos.store.agenda_ops import AgendaOps
from polos.store.event_ops import EventOps
from polos.store.metrics_ops import MetricsOps, Observations
from polos.store.model_ops import ModelOps
from polos.store.observe_ops import ObserveOps

T = TypeVar("T")


class StoreUnavailable(Exception):
    """The database cannot be reached right now (restarting, network). The change did not
    happen (or, if the connection broke during COMMIT, its fate is unknown): callers answer
    503 and clients retry."""


class Wakeups(Protocol):
    """Where news of committed changes goes: the server's in-process signals."""

    def work_available(self, project_id: str) -> None: ...

    def work_available_at(self, project_id: str, when: float) -> None: ...

    def execution_final(self, execution_id: str) -> None: ...

    def topic_published(self, project_id: str, topic: str) -> None: ...

    def timer_added(self, fire_at: float) -> None:
        """A durable timer is due at `fire_at` (the clock may need to wake sooner)."""

    def wake_everyone(self) -> None:
        """Notifications may have been missed (a listening connection dropped)."""

    def observed(self, observations: Observations) -> None:
        """What a committed unit did, for this replica's metrics (not a wake-up; never sent
        to other replicas)."""


class NoWakeups:
    """Wake-ups nobody listens to (tools that open a store without a server)."""

    def work_available(self, project_id: str) -> None:
        pass

    def work_available_at(self, project_id: str, when: float) -> None:
        pass

    def execution_final(self, execution_id: str) -> None:
        pass

    def topic_published(self, project_id: str, topic: str) -> None:
        pass

    def timer_added(self, fire_at: float) -> None:
        pass

    def wake_everyone(self) -> None:
        pass

    def observed(self, observations: Observations) -> None:
        pass


UsageKey = tuple[str, str, str]  # (project_id, queue_name, concurrency_key)


class StoreTx(ModelOps, EventOps, AgendaOps, ObserveOps, MetricsOps, abc.ABC):
    """Operations inside one unit of work. Only this layer speaks SQL."""

    _wakeups: Wakeups
    _observations: Observations | None = None

    @abc.abstractmethod
    def on_commit(self, callback: Callable[[], None]) -> None:
        """Run `callback` after the unit's transaction committed."""

    def observe(self) -> Observations:
        """This unit's observations for the metrics (store/metrics_ops.py): handed to
        `Wakeups.observed` once the unit committed."""
        observations = self._observations
        if observations is None:
            observations = self._observations = Observations()
            wakeups = self._wakeups
            self.on_commit(lambda: wakeups.observed(observations))
        return observations

    # -- wake-ups, delivered once the unit committed (to every replica on PostgreSQL) ------

    @abc.abstractmethod
    def notify_work(self, project_id: str) -> None:
        """Executions of `project_id` became claimable."""

    @abc.abstractmethod
    def notify_work_at(self, project_id: str, when: float) -> None:
        """Executions of `project_id` become claimable at unix time `when`."""

    @abc.abstractmethod
    def notify_final(self, execution_id: str) -> None:
        """The execution reached a final status."""

    @abc.abstractmethod
    def notify_timer(self, fire_at: float) -> None:
        """A durable timer was added for `fire_at` (this replica's clock may wake sooner)."""

    @abc.abstractmethod
    def notify_topic(self, project_id: str, topic: str) -> None:
        """Events were published on `topic` (streams of it look again)."""

    @abc.abstractmethod
    async def lock_queue_for_claim(self, project_id: str, queue_name: str) -> None:
        """Serialize claims of a limited queue until the unit commits (so that its usage,
        read next, cannot change under this claim)."""

    # -- projects, workflows, queues -----------------------------------------------------

    @abc.abstractmethod
    async def ensure_project(self, project_id: str, now: float) -> None: ...

    @abc.abstractmethod
    async def upsert_workflows(
        self, project_id: str, registrations: Sequence[WorkflowRegistration], now: float
    ) -> None: ...

    @abc.abstractmethod
    async def known_workflows(
        self, project_id: str, workflow_ids: Collection[str]
    ) -> dict[str, str]:
        """The registered workflows among `workflow_ids`, with their default queue."""

    @abc.abstractmethod
    async def ensure_queues(
        self,
        project_id: str,
        queues: Mapping[str, int | None],
        now: float,
        overwrite_limits: bool,
    ) -> None:
        """Create missing queues; with `overwrite_limits`, also set the limits given."""

    async def worker_and_queue_limits(
        self, worker_id: str, project_id: str
    ) -> tuple[WorkerInfo | None, dict[str, int | None]]:
        """`get_worker` and `queue_limits`, what a claim reads first (PostgreSQL: one round
        trip)."""
        return await self.get_worker(worker_id), await self.queue_limits(project_id)

    @abc.abstractmethod
    async def queue_limits(self, project_id: str) -> dict[str, int | None]: ...

    @abc.abstractmethod
    async def queue_usage(self, project_id: str, queue_name: str) -> dict[str, int]: ...

    @abc.abstractmethod
    async def adjust_usage(self, deltas: Mapping[UsageKey, int]) -> None: ...

    # -- API keys --------------------------------------------------------------------------

    @abc.abstractmethod
    async def insert_api_key(self, key: ApiKey) -> None: ...

    @abc.abstractmethod
    async def api_key_by_hash(self, key_hash: str) -> ApiKey | None: ...

    @abc.abstractmethod
    async def list_api_keys(self, project_id: str | None) -> list[ApiKey]: ...

    @abc.abstractmethod
    async def revoke_api_key(self, key_id: str, now: float) -> bool:
        """False when no such key is active."""

    # -- workers ---------------------------------------------------------------------------

    @abc.abstractmethod
    async def save_worker(self, worker: WorkerInfo) -> None: ...

    @abc.abstractmethod
    async def get_worker(self, worker_id: str) -> WorkerInfo | None: ...

    @abc.abstractmethod
    async def touch_worker(self, worker_id: str, now: float) -> bool:
        """Record a heartbeat; False when the worker is unknown."""

    @abc.abstractmethod
    async def touch_all_workers(self, now: float) -> None: ...

    @abc.abstractmethod
    async def delete_workers(self, worker_ids: Collection[str]) -> None: ...

    @abc.abstractmethod
    async def silent_workers(self, heard_before: float) -> list[str]: ...

    @abc.abstractmethod
    async def extend_leases(
        self, worker_id: str, execution_ids: Collection[str], until: float
    ) -> set[str]:
        """Extend the leases the worker says it still holds. Those it does not name (a claim
        whose answer it never got) keep their lease and expire: nothing stays held forever.
        Returns the IDs it extended (the others are no longer the worker's)."""

    @abc.abstractmethod
    async def extend_all_leases(self, until: float) -> int:
        """Give every running execution at least until `until` (a server restart's grace)."""

    # -- executions ------------------------------------------------------------------------

    @abc.abstractmethod
    async def insert_executions(self, rows: Sequence[NewExecution], now: float) -> set[str]:
        """Insert queued executions, ignoring IDs that exist; return the IDs inserted."""

    @abc.abstractmethod
    async def list_workflows(self, project_id: str) -> list[RegisteredWorkflow]: ...

    @abc.abstractmethod
    async def list_workers(self, project_id: str) -> list[WorkerInfo]: ...

    @abc.abstractmethod
    async def execution_by_idempotency_key(
        self, project_id: str, key: str
    ) -> ExecutionRow | None: ...

    @abc.abstractmethod
    async def get_execution(self, execution_id: str) -> ExecutionRow | None: ...

    @abc.abstractmethod
    async def fence_rows(self, execution_ids: Collection[str]) -> dict[str, FenceRow]: ...

    @abc.abstractmethod
    async def ready_candidates(
        self,
        project_id: str,
        queue_names: Sequence[str],
        workflow_ids: Collection[str],
        now: float,
        limit: int,
    ) -> list[tuple[str, str, float, str]]:
        """Due queued executions of each of `queue_names`, at most `limit` a queue: (id,
        concurrency_key, ready_at, queue_name), by queue in the given order, each queue's
        oldest first. One statement for all the queues where a statement is a round trip."""

    @abc.abstractmethod
    async def mark_running(
        self, execution_ids: Sequence[str], worker_id: str, lease_until: float, now: float
    ) -> list[ClaimedExecution]:
        """Move queued executions to running under a new attempt; journals are not loaded."""

    @abc.abstractmethod
    async def load_journals(self, execution_ids: Sequence[str]) -> dict[str, list[StepRecord]]: ...

    @abc.abstractmethod
    async def finish_executions(self, updates: Sequence[FinalUpdate], now: float) -> None: ...

    @abc.abstractmethod
    async def requeue_executions(
        self, execution_ids: Sequence[str], ready_at: float, now: float, count_retry: bool
    ) -> None:
        """Back to `queued` (a retry, an expired lease, a wake-up or a re-queue for replay)."""

    @abc.abstractmethod
    async def set_waiting(self, execution_id: str, state_json: str | None, now: float) -> None: ...

    @abc.abstractmethod
    async def expired_leases(self, now: float, limit: int) -> list[FenceRow]: ...

    @abc.abstractmethod
    async def running_of_worker(self, worker_id: str) -> list[FenceRow]: ...

    # -- journals and waiting steps ---------------------------------------------------------

    async def insert_steps(
        self, execution_id: str, steps: Sequence[StepRecord], now: float
    ) -> None:
        """Record steps; a key already recorded keeps its first record (exactly-once results)."""
        await self.insert_step_rows([(execution_id, s) for s in steps], now)

    @abc.abstractmethod
    async def insert_step_rows(self, rows: Sequence[tuple[str, StepRecord]], now: float) -> None:
        """`insert_steps` for the steps of several executions, as (execution ID, step), in one
        statement: a report of many executions records its steps in one go."""

    async def record_attempt_steps(
        self, worker_id: str, items: Sequence[AttemptSteps], now: float
    ) -> dict[str, FenceRow]:
        """Record the steps of the items whose execution `worker_id` still runs under the
        item's attempt (`FenceRow.run_by`), the fence rows locked first; return the fence rows
        read. A store where a statement is a round trip does it in one statement, so that the
        unit may run as `Store.run(..., one_statement=True)`."""
        fences = await self.fence_rows([item.execution_id for item in items])
        rows = [
            (item.execution_id, step)
            for item in items
            if (row := fences.get(item.execution_id)) is not None
            and row.run_by(worker_id, item.attempt)
            for step in item.steps
        ]
        if rows:
            await self.insert_step_rows(rows, now)
        return fences

    @abc.abstractmethod
    async def set_step_pending(
        self,
        execution_id: str,
        step_key: str,
        pending: int,
        fail_fast: bool = False,
        min_success: int | None = None,
    ) -> None: ...

    @abc.abstractmethod
    async def resolve_step(
        self,
        execution_id: str,
        step_key: str,
        status: StepStatus,
        result_json: str | None,
        error: ErrorInfo | None,
        output_schema: str | None,
        now: float,
    ) -> None:
        """Write the outcome of a waiting step (the server's side of invoke_and_wait)."""

    @abc.abstractmethod
    async def get_step(self, execution_id: str, step_key: str) -> StepRecord | None: ...

    @abc.abstractmethod
    async def count_unfinished_children(self, parent_id: str, step_key: str) -> int: ...

    @abc.abstractmethod
    async def decrement_pending(
        self, decrements: Mapping[tuple[str, str], int]
    ) -> tuple[list[tuple[str, str]], list[tuple[str, str, bool, int | None]]]:
        """Subtract finished children from waiting steps; return the steps that reached 0,
        and those still waiting that have a failure policy, with it: (execution, step key,
        fail_fast, min_success)."""

    @abc.abstractmethod
    async def child_outcomes(self, parent_id: str, step_key: str) -> list[ChildOutcome]:
        """The children of a step in input order."""


Work = Callable[[StoreTx], Coroutine[Any, Any, T]]


class Store(abc.ABC):
    """A database the server keeps all its state in."""

    wakeups: Wakeups = NoWakeups()
    # True when several servers share the database (PostgreSQL).
    shared: bool = False

    def attach(self, wakeups: Wakeups) -> None:
        """Route the wake-ups of committed units (and, on PostgreSQL, of other replicas)."""
        self.wakeups = wakeups

    @abc.abstractmethod
    async def open(self) -> None:
        """Connect and apply pending migrations."""

    @abc.abstractmethod
    async def close(self) -> None: ...

    @abc.abstractmethod
    async def run(
        self, work: Work[T], *, defer_sync: bool = False, one_statement: bool = False
    ) -> T:
        """Run a unit of work atomically and return its value once it is committed.

        `one_statement=True`: the unit makes exactly one statement and changes no status (it
        leaves no counters or notifications to write at its end), so a store where a
        transaction costs round trips may run it without one: a statement is atomic by
        itself (PostgreSQL: 1 round trip instead of BEGIN, the statement, COMMIT). SQLite
        commits it with the others, as any unit.

        `defer_sync=True` lets the commit skip its fsync when nothing else in its transaction
        needs one (SQLite; PostgreSQL always syncs): the unit is then durable after the next
        synced commit, `sync()`, or any `read` (which syncs first). Only for a unit whose
        effects the caller reveals to no one before one of those; the one use is the
        submission of `Workflow.run`, whose answer is the result of a later, synced commit
        (docs/decisions.md, "A run's submission commits without its own fsync")."""

    async def sync(self) -> None:  # noqa: B027 - a store that never defers has nothing to do
        """Make every committed unit durable (the deferred ones included)."""

    @abc.abstractmethod
    async def read(self, work: Work[T]) -> T:
        """Run a read-only unit (it sees committed data only)."""

    @abc.abstractmethod
    def describe(self) -> str:
        """Where the data lives, for logs (no passwords)."""

    # Whether `park` runs claims inside the transaction that makes work ready.
    parks_claims = False

    def park(self, project_id: str, work: Work[T]) -> asyncio.Future[T] | None:
        """Run `work` inside the next transaction that makes work of `project_id` ready (a
        submission, a woken parent), after that transaction's own units; its future settles
        after the commit. A claim parked this way answers a submission without a transaction
        (and an fsync) of its own. None: this store does not park (the caller waits for the
        work signal and runs its unit itself)."""
        return None

    def unpark(self, project_id: str, parked: asyncio.Future[Any]) -> None:
        """Withdraw a parked unit that has not run yet (no-op once it ran)."""
        return None


# --------------------------------------------------------------------------- migrations


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    sql: str


def migrations(dialect: str) -> list[Migration]:
    """The numbered SQL files of `dialect`, in order."""
    folder = resources.files("polos.store") / "migrations" / dialect
    found: list[Migration] = []
    for entry in folder.iterdir():
        if not entry.name.endswith(".sql"):
            continue
        number, _, rest = entry.name.partition("_")
        found.append(Migration(int(number), rest.removesuffix(".sql"), entry.read_text("utf-8")))
    found.sort(key=lambda m: m.version)
    versions = [m.version for m in found]
    if versions != list(range(1, len(found) + 1)):
        raise RuntimeError(f"migrations of {dialect} are not numbered 1..n: {versions}")
    return found
