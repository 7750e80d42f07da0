"""What a hot query costs on SQLite, counted in virtual machine steps: it must grow with what the
query returns, not with what the tables hold. SQLite's planner has no statistics, so where the
order of a join matters the SQL fixes it; these tests catch a plan that walks a table."""

from __future__ import annotations

from polos.model import NewExecution
from polos.store.base import StoreTx
from polos.store.sqlite import SqliteStore


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
