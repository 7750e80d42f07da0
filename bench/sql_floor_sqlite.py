"""The SQL floor on SQLite (bench/sql_floor.py runs it): polos' own connection settings and
schema, and one parent's children through their lifecycle as batched SQL.
"""

from __future__ import annotations

import sqlite3
import time

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


def sqlite_connect(path: str, synchronous: str) -> sqlite3.Connection:
    """The connection polos' SQLite store opens (polos/store/sqlite.py), migrated."""
    from polos.store.sqlite import apply_migrations

    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30.0)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute(f"PRAGMA synchronous = {synchronous.upper()}")
    conn.execute("PRAGMA busy_timeout = 30000")
    conn.execute("PRAGMA temp_store = MEMORY")
    conn.execute("PRAGMA cache_size = -65536")  # 64 MiB
    apply_migrations(conn)
    return conn


def _marks(n: int) -> str:
    return ",".join("?" * n)


def sqlite_run(conn: sqlite3.Connection, b: Batch, chunk: int) -> tuple[float, int]:
    """One parent's children through their lifecycle; (seconds, transactions)."""
    n = len(b.ids)
    index = {cid: i for i, cid in enumerate(b.ids)}
    ex = conn.execute
    t0 = time.perf_counter()
    now = time.time()
    # 1. submit: the parent suspended on its batch step, and every child, in one transaction.
    ex("BEGIN IMMEDIATE")
    ex(
        "INSERT INTO executions (id, project_id, workflow_id, status, queue_name, payload, "
        "root_execution_id, root_workflow_id, ready_at, created_at, started_at, updated_at) "
        "VALUES (?, ?, ?, 'waiting', ?, ?, ?, ?, ?, ?, ?, ?)",
        (b.parent_id, PROJECT, PARENT_WF, PARENT_WF, b.parent_payload, b.parent_id, PARENT_WF)
        + (now,) * 4,
    )
    ex(
        "INSERT INTO steps (execution_id, step_key, position, kind, status, pending, created_at) "
        "VALUES (?, ?, 0, 'batch_invoke_and_wait', 'pending', ?, ?)",
        (b.parent_id, STEP_KEY, n, now),
    )
    conn.executemany(
        f"INSERT INTO executions ({CHILD_COLUMNS}) "
        "VALUES (?, ?, ?, 'queued', ?, '', ?, ?, ?, ?, ?, ?, 1, ?, ?, ?)",
        b.child_rows,
    )
    ex("COMMIT")
    transactions = 1
    done = 0
    while done < n:
        # 2a. claim: as a worker's long-poll does.
        now = time.time()
        ex("BEGIN IMMEDIATE")
        picked = [
            r[0]
            for r in ex(
                "SELECT id FROM executions WHERE project_id = ? AND queue_name = ? "
                "AND status = 'queued' AND ready_at <= ? AND workflow_id IN (?) "
                "ORDER BY ready_at, rowid LIMIT ?",
                (PROJECT, QUEUE, now, CHILD_WF, chunk),
            )
        ]
        claimed = ex(
            "UPDATE executions SET status = 'running', attempt = attempt + 1, worker_id = ?, "
            "lease_expires_at = ?, started_at = COALESCE(started_at, ?), updated_at = ? "
            f"WHERE id IN ({_marks(len(picked))}) AND status = 'queued' "
            f"RETURNING {CLAIM_RETURNING}",
            (WORKER_ID, now + LEASE_S, now, now, *picked),
        ).fetchall()
        ex(
            "SELECT execution_id, step_key, kind, status, position, result, error_type, "
            "error_message, output_schema FROM steps "
            f"WHERE execution_id IN ({_marks(len(picked))}) ORDER BY execution_id, position",
            picked,
        ).fetchall()
        ex("COMMIT")
        transactions += 1
        if not claimed:
            raise RuntimeError(f"nothing left to claim after {done} of {n} children")
        # 2b. report: the steps, the completions and the parent's counter.
        ids = [r[0] for r in claimed]
        now = time.time()
        ex("BEGIN IMMEDIATE")
        conn.executemany(
            "INSERT INTO steps (execution_id, step_key, position, kind, status, result, "
            "output_schema, created_at, completed_at, duration_seconds) "
            "VALUES (?, ?, ?, 'run', 'completed', ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
            [
                row
                for cid in ids
                for row in (
                    (cid, "count_words", 0, b.words, None, now, now, 0.00001),
                    (
                        cid,
                        "score_review",
                        1,
                        b.reviews[index[cid]],
                        REVIEW_SCHEMA,
                        now,
                        now,
                        0.00001,
                    ),
                )
            ],
        )
        conn.executemany(
            "UPDATE executions SET status = 'completed', result = ?, error_type = NULL, "
            "error_message = NULL, output_schema = ?, worker_id = NULL, lease_expires_at = NULL, "
            "completed_at = ?, updated_at = ? WHERE id = ?",
            [(b.reviews[index[cid]], REVIEW_SCHEMA, now, now, cid) for cid in ids],
        )
        row = ex(
            "UPDATE steps SET pending = pending - ? WHERE execution_id = ? AND step_key = ? "
            "AND status = 'pending' AND pending > 0 RETURNING pending",
            (len(ids), b.parent_id, STEP_KEY),
        ).fetchone()
        if row is not None and row[0] <= 0:  # the last child wakes the parent, once
            ex(
                "UPDATE steps SET status = 'completed', pending = 0, completed_at = ? "
                "WHERE execution_id = ? AND step_key = ?",
                (now, b.parent_id, STEP_KEY),
            )
            ex(
                "UPDATE executions SET status = 'queued', ready_at = ?, updated_at = ? "
                "WHERE id = ? AND status = 'waiting'",
                (now, now, b.parent_id),
            )
        ex("COMMIT")
        transactions += 1
        done += len(ids)
    return time.perf_counter() - t0, transactions


def sqlite_check(conn: sqlite3.Connection, b: Batch) -> str | None:
    completed = conn.execute(
        "SELECT COUNT(*) FROM executions WHERE parent_execution_id = ? AND status = 'completed'",
        (b.parent_id,),
    ).fetchone()[0]
    steps = conn.execute(
        "SELECT COUNT(*) FROM steps WHERE execution_id IN "
        "(SELECT id FROM executions WHERE parent_execution_id = ?)",
        (b.parent_id,),
    ).fetchone()[0]
    parent = conn.execute("SELECT status FROM executions WHERE id = ?", (b.parent_id,)).fetchone()
    return check_counts(len(b.ids), completed, steps, parent[0] if parent else None)
