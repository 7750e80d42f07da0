"""The SQL floor on PostgreSQL (bench/sql_floor.py runs it): polos' own server settings and
schema (asyncpg, as the store), and one parent's children through their lifecycle as batched SQL.
"""

from __future__ import annotations

import time
from typing import Any

from sql_floor_rows import (
    CHILD_COLUMNS,
    CHILD_WF,
    LEASE_S,
    PARENT_WF,
    PROJECT,
    QUEUE,
    REVIEW_SCHEMA,
    STEP_KEY,
    WORKER_ID,
    Batch,
    check_counts,
)

# What a claim hands to the worker: the engine's own column list, so the floor reads as much.
from polos.store.rows import CLAIM_RETURNING


async def pg_connect(url: str) -> Any:
    """A connection with polos' server settings, on a database migrated by polos."""
    import asyncpg

    from polos.store.postgres import apply_migrations

    conn = await asyncpg.connect(
        url,
        timeout=10,
        server_settings={
            "application_name": "polos-sql-floor",
            "plan_cache_mode": "force_custom_plan",
        },
    )
    await apply_migrations(conn)
    return conn


async def pg_run(conn: Any, b: Batch, chunk: int) -> tuple[float, int]:
    n = len(b.ids)
    index = {cid: i for i, cid in enumerate(b.ids)}
    t0 = time.perf_counter()
    now = time.time()
    async with conn.transaction():
        await conn.execute(
            "INSERT INTO executions (id, project_id, workflow_id, status, queue_name, payload, "
            "root_execution_id, root_workflow_id, ready_at, created_at, started_at, updated_at) "
            "VALUES ($1, $2, $3, 'waiting', $4, $5, $1, $3, $6, $6, $6, $6)",
            b.parent_id,
            PROJECT,
            PARENT_WF,
            PARENT_WF,
            b.parent_payload,
            now,
        )
        await conn.execute(
            "INSERT INTO steps (execution_id, step_key, position, kind, status, pending, "
            "created_at) VALUES ($1, $2, 0, 'batch_invoke_and_wait', 'pending', $3, $4)",
            b.parent_id,
            STEP_KEY,
            n,
            now,
        )
        # As the store does: one INSERT ... SELECT FROM unnest per 1,000 rows or so; here one
        # per chunk of 5,000 (the array parameters stay well under any limit).
        for start in range(0, n, 5000):
            part = range(start, min(n, start + 5000))
            await conn.execute(
                f"INSERT INTO executions ({CHILD_COLUMNS}) "
                "SELECT u.id, $1, $2, 'queued', $3, '', u.payload, $4, $4, $5, $6, u.idx, 1, "
                "$7, $7, $7 FROM unnest($8::text[], $9::text[], $10::int[]) "
                "WITH ORDINALITY AS u(id, payload, idx, ord) ORDER BY u.ord",
                PROJECT,
                CHILD_WF,
                QUEUE,
                b.parent_id,
                PARENT_WF,
                STEP_KEY,
                now,
                [b.ids[i] for i in part],
                [b.payloads[i] for i in part],
                list(part),
            )
    transactions = 1
    done = 0
    while done < n:
        now = time.time()
        async with conn.transaction():
            claimed = await conn.fetch(
                "UPDATE executions SET status = 'running', attempt = attempt + 1, "
                "worker_id = $1, lease_expires_at = $2, started_at = COALESCE(started_at, $3), "
                "updated_at = $3 WHERE id IN (SELECT id FROM executions WHERE project_id = $4 "
                "AND queue_name = $5 AND status = 'queued' AND ready_at <= $3 "
                "AND workflow_id = ANY($6::text[]) ORDER BY ready_at, seq LIMIT $7 "
                f"FOR UPDATE SKIP LOCKED) RETURNING {CLAIM_RETURNING}",
                WORKER_ID,
                now + LEASE_S,
                now,
                PROJECT,
                QUEUE,
                [CHILD_WF],
                chunk,
            )
            ids = [r[0] for r in claimed]
            await conn.fetch(
                "SELECT execution_id, step_key, kind, status, position, result, error_type, "
                "error_message, output_schema FROM steps WHERE execution_id = ANY($1::text[]) "
                "ORDER BY execution_id, position",
                ids,
            )
        transactions += 1
        if not ids:
            raise RuntimeError(f"nothing left to claim after {done} of {n} children")
        now = time.time()
        reviews = [b.reviews[index[cid]] for cid in ids]
        async with conn.transaction():
            await conn.execute(
                "INSERT INTO steps (execution_id, step_key, position, kind, status, result, "
                "output_schema, created_at, completed_at, duration_seconds) "
                "SELECT u.id, u.key, u.pos, 'run', 'completed', u.result, u.schema, $1, $1, "
                "0.00001 FROM unnest($2::text[], $3::text[], $4::int[], $5::text[], $6::text[]) "
                "AS u(id, key, pos, result, schema) ON CONFLICT DO NOTHING",
                now,
                [cid for cid in ids for _ in (0, 1)],
                ["count_words", "score_review"] * len(ids),
                [0, 1] * len(ids),
                [x for r in reviews for x in (b.words, r)],
                [None, REVIEW_SCHEMA] * len(ids),
            )
            await conn.execute(
                "UPDATE executions AS e SET status = 'completed', result = u.result, "
                "error_type = NULL, error_message = NULL, output_schema = $1, worker_id = NULL, "
                "lease_expires_at = NULL, completed_at = $2, updated_at = $2 "
                "FROM unnest($3::text[], $4::text[]) AS u(id, result) WHERE e.id = u.id",
                REVIEW_SCHEMA,
                now,
                ids,
                reviews,
            )
            pending = await conn.fetchval(
                "UPDATE steps SET pending = pending - $1 WHERE execution_id = $2 "
                "AND step_key = $3 AND status = 'pending' AND pending > 0 RETURNING pending",
                len(ids),
                b.parent_id,
                STEP_KEY,
            )
            if pending is not None and pending <= 0:
                await conn.execute(
                    "UPDATE steps SET status = 'completed', pending = 0, completed_at = $1 "
                    "WHERE execution_id = $2 AND step_key = $3",
                    now,
                    b.parent_id,
                    STEP_KEY,
                )
                await conn.execute(
                    "UPDATE executions SET status = 'queued', ready_at = $1, updated_at = $1 "
                    "WHERE id = $2 AND status = 'waiting'",
                    now,
                    b.parent_id,
                )
        transactions += 1
        done += len(ids)
    return time.perf_counter() - t0, transactions


async def pg_check(conn: Any, b: Batch) -> str | None:
    completed = await conn.fetchval(
        "SELECT COUNT(*) FROM executions WHERE parent_execution_id = $1 AND status = 'completed'",
        b.parent_id,
    )
    steps = await conn.fetchval(
        "SELECT COUNT(*) FROM steps WHERE execution_id IN "
        "(SELECT id FROM executions WHERE parent_execution_id = $1)",
        b.parent_id,
    )
    parent = await conn.fetchval("SELECT status FROM executions WHERE id = $1", b.parent_id)
    return check_counts(len(b.ids), int(completed), int(steps), parent)
