"""Drives polos.server.lifecycle and polos.server.dispatch against a store, the way the HTTP
routes do, with a clock the test controls."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from typing import Any

from polos import protocol
from polos.model import (
    ChildOutcome,
    ClaimedExecution,
    ExecutionRow,
    StepRecord,
    WorkerInfo,
    WorkflowRegistration,
)
from polos.server import dispatch, lifecycle, reports
from polos.server.settings import Settings
from polos.server.signals import Signals
from polos.store.base import Store, StoreTx

PROJECT = "contract-project"


class CountingSignals(Signals):
    """Signals that remember every wake-up they were asked for."""

    def __init__(self) -> None:
        super().__init__()
        self.work_calls: list[str] = []
        self.final_calls: list[str] = []

    def work_available(self, project_id: str) -> None:
        self.work_calls.append(project_id)
        super().work_available(project_id)

    def execution_final(self, execution_id: str) -> None:
        self.final_calls.append(execution_id)
        super().execution_final(execution_id)


class Engine:
    def __init__(self, store: Store, signals: CountingSignals, settings: Settings) -> None:
        self.store = store
        self.signals = signals
        store.attach(signals)  # wake-ups of committed units come here
        self.settings = settings
        self.clock = time.time()
        self.lost: list[str] | None = None

    def advance(self, seconds: float) -> float:
        self.clock += seconds
        return self.clock

    # -- workers -----------------------------------------------------------------------

    async def register(
        self,
        worker_id: str,
        workflows: Sequence[tuple[str, str, int | None]],
        project: str = PROJECT,
    ) -> WorkerInfo:
        """Register `worker_id` serving (workflow_id, queue_name, concurrency_limit)s."""
        now = self.clock
        worker = WorkerInfo(
            id=worker_id,
            project_id=project,
            deployment_id=None,
            capacity=100,
            workflow_ids=sorted({w for w, _, _ in workflows}),
            registered_at=now,
            last_heartbeat_at=now,
        )
        registrations = [WorkflowRegistration(w, q, limit) for w, q, limit in workflows]

        async def work(tx: StoreTx) -> None:
            await lifecycle.register_worker(tx, worker, registrations, now)

        await self.store.run(work)
        return worker

    async def worker(self, worker_id: str) -> WorkerInfo:
        found = await self.store.read(lambda tx: tx.get_worker(worker_id))
        assert found is not None, f"worker {worker_id} is not registered"
        return found

    async def deregister(self, worker_id: str) -> int:
        async def work(tx: StoreTx) -> int:
            return await lifecycle.deregister_worker(tx, worker_id, self.clock)

        return await self.store.run(work)

    async def heartbeat(
        self, worker_id: str, execution_ids: Sequence[str], now: float | None = None
    ) -> bool:
        when = self.clock if now is None else now

        async def work(tx: StoreTx) -> list[str] | None:
            return await lifecycle.heartbeat(tx, worker_id, execution_ids, when, self.settings)

        self.lost = await self.store.run(work)
        return self.lost is not None

    async def expire(self, now: float) -> int:
        async def work(tx: StoreTx) -> int:
            return await lifecycle.expire_leases(tx, self.settings, now)

        return await self.store.run(work)

    # -- executions --------------------------------------------------------------------

    async def submit_many(
        self, specs: Sequence[lifecycle.SubmitSpec], project: str = PROJECT
    ) -> list[lifecycle.Submitted]:
        now = self.clock

        async def work(tx: StoreTx) -> list[lifecycle.Submitted]:
            return await lifecycle.submit(tx, project, specs, now)

        return await self.store.run(work)

    async def submit(
        self, workflow_id: str, payload_json: str = "null", **options: Any
    ) -> lifecycle.Submitted:
        [submitted] = await self.submit_many(
            [lifecycle.SubmitSpec(workflow_id, payload_json, **options)]
        )
        return submitted

    async def claim(
        self, worker: WorkerInfo, max_count: int = 100, now: float | None = None
    ) -> list[ClaimedExecution]:
        when = self.clock if now is None else now

        async def work(tx: StoreTx) -> list[ClaimedExecution]:
            return await dispatch.claim(tx, worker, max_count, when, self.settings.lease_seconds)

        return await self.store.run(work)

    async def report(
        self, worker_id: str, *items: protocol.ReportItem, now: float | None = None
    ) -> list[protocol.ReportItemResult]:
        when = self.clock if now is None else now

        async def work(tx: StoreTx) -> list[protocol.ReportItemResult]:
            return await reports.apply_reports(tx, self.settings, worker_id, items, when)

        return await self.store.run(work)

    async def report_one(self, worker_id: str, item: protocol.ReportItem) -> str:
        [result] = await self.report(worker_id, item)
        return result.status

    async def complete(
        self,
        worker_id: str,
        execution: ClaimedExecution,
        result: str = "null",
        output_schema: str | None = None,
    ) -> str:
        return await self.report_one(
            worker_id,
            protocol.ReportItem(
                execution_id=execution.id,
                attempt=execution.attempt,
                outcome=protocol.CompleteOutcome(result=result, output_schema=output_schema),
            ),
        )

    async def fail(
        self,
        worker_id: str,
        execution: ClaimedExecution,
        error_type: str,
        message: str,
        retryable: bool = False,
    ) -> str:
        return await self.report_one(
            worker_id,
            protocol.ReportItem(
                execution_id=execution.id,
                attempt=execution.attempt,
                outcome=protocol.FailOutcome(
                    error=protocol.StoredError(type=error_type, message=message),
                    retryable=retryable,
                ),
            ),
        )

    # -- reading -----------------------------------------------------------------------

    async def get(self, execution_id: str) -> ExecutionRow:
        row = await self.store.read(lambda tx: tx.get_execution(execution_id))
        assert row is not None, f"execution {execution_id} does not exist"
        return row

    async def step(self, execution_id: str, step_key: str) -> StepRecord | None:
        return await self.store.read(lambda tx: tx.get_step(execution_id, step_key))

    async def journal(self, execution_id: str) -> list[StepRecord]:
        journals = await self.store.read(lambda tx: tx.load_journals([execution_id]))
        return journals.get(execution_id, [])

    async def children(self, parent_id: str, step_key: str) -> list[ChildOutcome]:
        return await self.store.read(lambda tx: tx.child_outcomes(parent_id, step_key))

    async def usage(self, queue_name: str, project: str = PROJECT) -> int:
        """Running executions counted against `queue_name`, all concurrency keys."""
        counts = await self.store.read(lambda tx: tx.queue_usage(project, queue_name))
        return sum(counts.values())


# --------------------------------------------------------------------------- report parts


def step_report(
    key: str,
    kind: str = "run",
    status: str = "completed",
    position: int = 0,
    result: str | None = "null",
    error: tuple[str, str] | None = None,
    output_schema: str | None = None,
) -> protocol.StepReport:
    return protocol.StepReport(
        key=key,
        kind=kind,
        status=status,  # type: ignore[arg-type]
        position=position,
        result=result,
        error=protocol.StoredError(type=error[0], message=error[1]) if error else None,
        output_schema=output_schema,
    )


def pending_batch_step(key: str, position: int = 0) -> protocol.StepReport:
    return step_report(
        key, kind="batch_invoke_and_wait", status="pending", position=position, result=None
    )


def child_submissions(
    step_key: str, workflow_id: str, payloads: Sequence[str], wait: bool = True
) -> list[protocol.ChildSubmission]:
    return [
        protocol.ChildSubmission(
            step_key=step_key, index=i, workflow_id=workflow_id, payload=payload, wait=wait
        )
        for i, payload in enumerate(payloads)
    ]


# -- a parent suspended on a batch of children (the children and reports tests) --------


async def start_parent(engine: Engine, limit: int | None = None) -> tuple[str, str]:
    """Register a parent worker and a child worker, submit a parent; return its id and the
    parent worker's id."""
    await engine.register("parents", [("parent_wf", "parent_q", limit)])
    await engine.register("kids", [("child_wf", "child_q", None)])
    submitted = await engine.submit("parent_wf", '{"topic":"x"}')
    return submitted.execution_id, "parents"


async def claim_as(engine: Engine, worker_id: str, max_count: int = 100) -> list[str]:
    return [c.id for c in await engine.claim(await engine.worker(worker_id), max_count)]


async def suspend_on_batch(
    engine: Engine, parent_id: str, attempt: int, n: int, key: str = "reviews"
) -> str:
    payloads = [json.dumps({"reviewer": i}) for i in range(n)]
    return await engine.report_one(
        "parents",
        protocol.ReportItem(
            execution_id=parent_id,
            attempt=attempt,
            steps=[pending_batch_step(key)],
            children=child_submissions(key, "child_wf", payloads),
            outcome=protocol.SuspendOutcome(step_key=key),
        ),
    )
