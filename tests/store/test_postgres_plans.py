"""PostgreSQL plans: the store's connections keep one generic plan per statement, made with
sequential scans priced out, so a plan made while the tables were empty still takes the index
once they are large (docs/decisions.md, "PostgreSQL: generic plans, no sequential scans")."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import asyncpg
import pytest

from polos.store.postgres import PostgresStore
from polos.store.rows import FENCE_COLUMNS_WITH_LIMIT
from tests.store.conftest import await_truncate

# Two of the hottest statements: a report's fence read and a claim's candidates.
FENCE = (
    f"SELECT {FENCE_COLUMNS_WITH_LIMIT} FROM executions WHERE id = ANY($1::text[]) "
    "ORDER BY id FOR UPDATE OF executions"
)
CANDIDATES = (
    "SELECT c.id, c.concurrency_key, c.ready_at, q.name "
    "FROM unnest($2::text[]) WITH ORDINALITY AS q(name, ord) CROSS JOIN LATERAL ("
    "SELECT id, concurrency_key, ready_at, seq FROM executions WHERE project_id = $1 "
    "AND queue_name = q.name AND status = 'queued' AND ready_at <= $3 "
    "AND workflow_id = ANY($4::text[]) ORDER BY ready_at, seq LIMIT $5 "
    "FOR UPDATE SKIP LOCKED) AS c ORDER BY q.ord, c.ready_at, c.seq"
)


@pytest.fixture
async def store(pg_url: str) -> AsyncIterator[PostgresStore]:
    await_truncate(pg_url)
    opened = PostgresStore(pg_url)
    await opened.open()
    try:
        yield opened
    finally:
        await opened.close()


async def _plan(conn: asyncpg.Connection, name: str, sql: str, args: str) -> str:
    await conn.execute(f"PREPARE {name} AS {sql}")
    rows = await conn.fetch(f"EXPLAIN EXECUTE {name}({args})")
    return "\n".join(r[0] for r in rows)


async def _fill(conn: asyncpg.Connection, n: int) -> None:
    now = time.time()
    await conn.execute(
        "INSERT INTO executions (id, project_id, workflow_id, status, queue_name, "
        "concurrency_key, payload, root_execution_id, root_workflow_id, notify_parent, "
        "ready_at, created_at, updated_at) "
        "SELECT 'x' || i, 'default', 'wf', 'queued', 'q', '', 'null', 'x' || i, 'wf', 0, "
        "$1, $1, $1 FROM generate_series(1, $2) AS i",
        now,
        n,
    )
    await conn.execute("ANALYZE executions")


async def test_the_pool_plans_once_and_never_scans_a_table_an_index_serves(
    store: PostgresStore,
) -> None:
    assert store._pool is not None
    async with store._pool.acquire() as conn:
        assert await conn.fetchval("SHOW plan_cache_mode") == "force_generic_plan"
        assert await conn.fetchval("SHOW enable_seqscan") == "off"
        # Planned on empty tables, as a new database's first statements are...
        fence = await _plan(conn, "fence", FENCE, "ARRAY['a']")
        candidates = await _plan(
            conn, "candidates", CANDIDATES, "'default', ARRAY['q'], 1e12, ARRAY['wf'], 100"
        )
        for plan in (fence, candidates):
            assert "Seq Scan on executions" not in plan, plan
            assert "Index" in plan, plan
        # ...and still the index once the table is large (the generic plan is kept).
        await _fill(conn, 20_000)
        for name, args in (
            ("fence", "ARRAY['x1', 'x2']"),
            ("candidates", "'default', ARRAY['q'], 1e12, ARRAY['wf'], 100"),
        ):
            plan = "\n".join(r[0] for r in await conn.fetch(f"EXPLAIN EXECUTE {name}({args})"))
            assert "Seq Scan on executions" not in plan, plan
        await conn.execute("DEALLOCATE ALL")


def test_the_planner_setting_is_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    from polos.store.postgres import _planner_settings

    monkeypatch.setenv("POLOS_PG_PLANNER", "custom")
    assert _planner_settings() == {"plan_cache_mode": "force_custom_plan"}
    monkeypatch.setenv("POLOS_PG_PLANNER", "fast")
    with pytest.raises(ValueError, match="POLOS_PG_PLANNER"):
        _planner_settings()
