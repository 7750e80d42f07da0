"""What a hot query costs on SQLite, counted in virtual machine steps: it must grow with what the
query returns, not with what the tables hold. SQLite's planner has no statistics, so where the
order of a join matters the SQL fixes it; these tests catch a plan that walks a table."""

from __future__ import annotations

import re
import sqlite3
from contextlib import closing

from polos import protocol
from polos.model import ExecutionFilter, ExecutionStatus, NewExecution
from polos.server.settings import Settings
from polos.store.base import StoreTx
from polos.store.sqlite import SqliteStore
from tests.store.harness import (
    PROJECT,
    CountingSignals,
    Engine,
    start_parent,
    step_report,
    suspend_on_batch,
)


async def _steps_of(store: SqliteStore, work: object) -> int:
    """Virtual machine steps (in thousands, rounded up) that a read unit takes."""
    counted = 0

    def tick() -> int:
        nonlocal counted
        counted += 1
        return 0  # go on

    conn = store._require()
    conn.set_progress_handler(tick, 1000)
    try:
        await store.read(work)  # type: ignore[arg-type]
    finally:
        conn.set_progress_handler(None, 0)
    return counted


async def _add_waiting(store: SqliteStore, count: int, start: int) -> None:
    async def work(tx: StoreTx) -> None:
        await tx.ensure_project("p", 1.0)
        rows = [
            NewExecution(
                id=f"w-{i}", project_id="p", workflow_id="wf", queue_name="q", payload_json="{}"
            )
            for i in range(start, start + count)
        ]
        await tx.insert_executions(rows, 1.0)
        tx._c.execute("UPDATE executions SET status = 'waiting'")  # type: ignore[attr-defined]

    await store.run(work)


async def test_publishing_an_event_does_not_walk_the_projects_waiting_executions(
    sqlite_store: SqliteStore,
) -> None:
    async def waits(tx: StoreTx) -> None:
        assert await tx.event_waits("p", "nobody-waits-on-this") == []

    await _add_waiting(sqlite_store, 10, 0)
    few = await _steps_of(sqlite_store, waits)
    await _add_waiting(sqlite_store, 5000, 10)
    many = await _steps_of(sqlite_store, waits)
    # Walking 5,000 waiting executions takes tens of thousands of steps; the topic's own
    # (empty) range of pending waits a handful.
    assert many <= few + 1, (few, many)


_GROWING_TABLES = ("executions", "steps", "events", "timers", "schedule_slots")


def _plans(store: SqliteStore, seen: list[str], verbs: str) -> list[tuple[str, list[str]]]:
    """Each distinct traced statement starting with one of `verbs`, with its query plan."""
    out: list[tuple[str, list[str]]] = []
    with closing(sqlite3.connect(store.path)) as conn:
        for sql in dict.fromkeys(seen):
            if re.match(rf"\s*({verbs})\b", sql, re.IGNORECASE):
                plan = [str(r[3]) for r in conn.execute("EXPLAIN QUERY PLAN " + sql)]
                out.append((sql, plan))
    return out


def _walks(plan: list[str]) -> list[str]:
    """The steps of a plan that read a whole table that grows with the executions."""
    return [p for p in plan if re.match(rf"SCAN ({'|'.join(_GROWING_TABLES)})\b", p)]


async def test_no_statement_of_a_fan_out_scans_a_growing_table(sqlite_store: SqliteStore) -> None:
    """Every statement a worker's fan-out makes the server run (submission, claims, steps,
    children, the parent woken and finished, heartbeats, the lease sweep), as SQLite plans it:
    none reads a whole table that grows with the executions."""
    engine = Engine(sqlite_store, CountingSignals(), Settings(database_url="sqlite:///unused"))
    seen: list[str] = []
    sqlite_store._require().set_trace_callback(seen.append)
    try:
        parent_id, _ = await start_parent(engine)
        [parent] = await engine.claim(await engine.worker("parents"))
        assert await suspend_on_batch(engine, parent_id, parent.attempt, 5) == "ok"
        kids = await engine.claim(await engine.worker("kids"))
        await engine.report(
            "kids",
            *[
                protocol.ReportItem(
                    execution_id=k.id,
                    attempt=k.attempt,
                    steps=[step_report("count", result="3")],
                    outcome=protocol.CompleteOutcome(result='{"ok":true}'),
                )
                for k in kids
            ],
        )
        [woken] = await engine.claim(await engine.worker("parents"))
        assert await engine.complete("parents", woken, '"done"') == "ok"
        await engine.heartbeat("kids", [])
        await engine.expire(engine.advance(60))
    finally:
        sqlite_store._require().set_trace_callback(None)
    scans = {
        sql[:160]: walks
        for sql, plan in _plans(sqlite_store, seen, r"SELECT|UPDATE|DELETE|INSERT|WITH")
        if (walks := _walks(plan))
    }
    assert len(seen) > 50  # the flow ran through the store
    assert scans == {}


async def test_no_observability_read_scans_a_growing_table(sqlite_store: SqliteStore) -> None:
    """What the CLI, the dashboard and the metrics read (listings with every filter, pages
    after a cursor, status counts, queues, live counts), as SQLite plans it: the status
    counters and the indexes of migration 0007 serve each without a walk of a table."""
    engine = Engine(sqlite_store, CountingSignals(), Settings(database_url="sqlite:///unused"))
    parent_id, _ = await start_parent(engine)
    [parent] = await engine.claim(await engine.worker("parents"))
    assert await suspend_on_batch(engine, parent_id, parent.attempt, 5) == "ok"
    await engine.claim(await engine.worker("kids"), max_count=2)
    filters = [ExecutionFilter()]
    for status in ExecutionStatus:
        filters.append(ExecutionFilter(status=status))
        filters.append(ExecutionFilter(status=status, parent_execution_id=parent_id))
        filters.append(ExecutionFilter(status=status, root_execution_id=parent_id))
    filters += [
        ExecutionFilter(parent_execution_id=parent_id),
        ExecutionFilter(root_execution_id=parent_id),
        ExecutionFilter(workflow_id="child_wf", before=(engine.clock, 3)),
        ExecutionFilter(status=ExecutionStatus.QUEUED, before=(engine.clock, 3)),
        ExecutionFilter(error_type="ValueError"),
    ]

    async def reads(tx: StoreTx) -> None:
        for query in filters:
            await tx.list_executions(PROJECT, query)
        assert await tx.tree_counts(parent_id) == {"waiting": 1, "queued": 3, "running": 2}
        assert await tx.children_counts([parent_id]) == {parent_id: {"queued": 3, "running": 2}}
        assert await tx.child_status_counts(parent_id, "reviews") == {"queued": 3, "running": 2}
        await tx.queue_stats(PROJECT)
        await tx.metrics_snapshot(0.0)

    seen: list[str] = []
    sqlite_store._require().set_trace_callback(seen.append)
    try:
        await sqlite_store.read(reads)
    finally:
        sqlite_store._require().set_trace_callback(None)
    scans: dict[str, list[str]] = {}
    for sql, plan in _plans(sqlite_store, seen, r"SELECT|WITH"):
        walks = _walks(plan)
        # A project's executions of a status other than completed: the partial status
        # index, not a walk of the project's history (executions_created).
        if re.search(
            r"FROM executions WHERE project_id = '[^']*' AND status = '(?!completed)", sql
        ) and not any(re.search(r"executions_(status|ready) ", p) for p in plan):
            walks.append(f"not by status: {plan}")
        if walks:
            scans[sql[:200]] = walks
    assert len(seen) > len(filters)
    assert scans == {}
