"""The SQL floor of a fan-out: a child's whole lifecycle as batched SQL, no HTTP, no engine code.

For one parent with N children, on polos' own schema (created by polos' migrations) and with
the server's connection settings (SQLite: the pragmas of polos/store/sqlite.py; PostgreSQL:
`plan_cache_mode=force_custom_plan` as polos/store/postgres.py), one connection runs:

1. submit (1 transaction): the parent's row (waiting), its batch step (pending = N) and the N
   child rows (queued), in one batch;
2. per chunk of --chunk children (512, one worker claim), two transactions:
   - claim: pick the next queued children through the ready index (ORDER BY ready_at, insertion
     order, LIMIT chunk), set them running with a worker and a lease, return what a worker
     receives (the CLAIM_RETURNING columns: payload, ...), and load their journals;
   - report: two completed step rows per child (count_words, score_review with the review's
     JSON), each child completed with its result, and the parent's pending counter decremented
     by the chunk (one UPDATE); the transaction that brings it to 0 resolves the parent's step
     and queues the parent (its wake-up).

children/s = N / median seconds from the first BEGIN to the last COMMIT. What the rows hold
(IDs, payloads, results) is built before the clock starts: this measures the database and
the driver, which is all a Python engine on that database cannot avoid.

    .venv/bin/python bench/sql_floor.py                       # SQLite, synchronous FULL and NORMAL
    .venv/bin/python bench/sql_floor.py --sizes 1000 --reps 1
    .venv/bin/python bench/sql_floor.py --database-url postgresql://postgres@127.0.0.1:5432
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sqlite3
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import harness
import workload
from harness import PgBackends, ThrowawayDatabase, log

# What a claim hands to the worker: the engine's own column list, so the floor reads as much.
from polos.store.rows import CLAIM_RETURNING

PROJECT = "sql-floor"  # its own project: a database shared with a server sees no work
QUEUE = "single_review"  # a workflow's default queue is named after it
CHILD_WF = "single_review"
PARENT_WF = "parallel_review"
STEP_KEY = "reviews"
WORKER_ID = "sql-floor-worker"
LEASE_S = 10.0
REVIEW_SCHEMA = "workload:Review"

CHILD_COLUMNS = (
    "id, project_id, workflow_id, status, queue_name, concurrency_key, payload, "
    "parent_execution_id, root_execution_id, root_workflow_id, parent_step_key, batch_index, "
    "notify_parent, ready_at, created_at, updated_at"
)


# -- the rows, built before the clock starts -------------------------------------------------


@dataclass
class Batch:
    parent_id: str
    parent_payload: str
    ids: list[str]
    payloads: list[str]
    words: str  # count_words' result (JSON)
    reviews: list[str]  # score_review's result = the child's result (JSON)
    child_rows: list[tuple[Any, ...]]  # SQLite's INSERT parameters (CHILD_COLUMNS)


def make_batch(n: int) -> Batch:
    parent_id = str(uuid.uuid4())
    ids = [str(uuid.uuid5(uuid.UUID(parent_id), f"{STEP_KEY}:{i}")) for i in range(n)]
    reviewers = workload.reviewers(n)
    words = workload.count_words(workload.CONTENT)
    payloads = [workload.single_request(r).model_dump_json() for r in reviewers]
    t, pid = time.time(), parent_id
    return Batch(
        parent_id=parent_id,
        parent_payload=workload.ParallelReviewRequest(
            document_id=workload.DOCUMENT_ID, content=workload.CONTENT, reviewers=reviewers
        ).model_dump_json(),
        ids=ids,
        payloads=payloads,
        child_rows=[
            (c, PROJECT, CHILD_WF, QUEUE, p, pid, pid, PARENT_WF, STEP_KEY, i, t, t, t)
            for i, (c, p) in enumerate(zip(ids, payloads, strict=True))
        ],
        words=json.dumps(words),
        reviews=[
            workload.score_review(r, workload.DOCUMENT_ID, words).model_dump_json()
            for r in reviewers
        ],
    )


# -- SQLite ----------------------------------------------------------------------------------


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
    return _check(len(b.ids), completed, steps, parent[0] if parent else None)


def _check(n: int, completed: int, steps: int, parent_status: str | None) -> str | None:
    if completed != n or steps != 2 * n or parent_status != "queued":
        return (
            f"expected {n} completed children, {2 * n} step rows and a queued parent; got "
            f"{completed}, {steps}, {parent_status}"
        )
    return None


# -- PostgreSQL ------------------------------------------------------------------------------


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
    return _check(len(b.ids), int(completed), int(steps), parent)


# -- the benchmark ---------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument(
        "--sizes", default="1000,10000,100000", help="comma-separated N (default %(default)s)"
    )
    p.add_argument(
        "--database-url",
        default=None,
        help="sqlite:///path or postgresql://... (default: a temporary SQLite file per\n"
        "synchronous mode); a postgresql:// URL without a database gets a throwaway one",
    )
    p.add_argument(
        "--pg-create",
        action="store_true",
        help="create (and drop afterwards) a database with a unique name on the URL's server",
    )
    p.add_argument(
        "--synchronous",
        default="full,normal",
        help="SQLite synchronous modes to run, comma-separated (default %(default)s)",
    )
    p.add_argument("--chunk", type=int, default=512, help="children per claim and per report (512)")
    p.add_argument("--reps", type=int, default=3, help="measured runs per N (median reported)")
    p.add_argument("--output", type=Path, default=None, help="JSON lines file to append to")
    args = p.parse_args(argv)
    args.sizes = [int(x) for x in args.sizes.split(",") if x.strip()]
    args.synchronous = [x.strip().lower() for x in args.synchronous.split(",") if x.strip()]
    if not args.sizes or min(args.sizes) < 1 or args.reps < 1 or args.chunk < 1:
        p.error("sizes, reps and chunk must be positive")
    if bad := [m for m in args.synchronous if m not in ("off", "normal", "full", "extra")]:
        p.error(f"unknown synchronous mode(s) {bad}")
    if harness.is_postgres(args.database_url):
        if not harness.pg_database(args.database_url):
            args.pg_create = True
    elif args.pg_create:
        p.error("--pg-create needs a postgresql:// --database-url")
    elif args.database_url and not args.database_url.startswith("sqlite:///"):
        p.error("--database-url must be sqlite:///PATH or postgresql://...")
    args.output = args.output or harness.default_output("sql_floor")
    return args


def _record(
    args: argparse.Namespace,
    n: int,
    config: dict[str, Any],
    machine: dict[str, Any],
    runs: list[float],
    transactions: int,
    cpu: dict[str, float],
    problem: str | None,
) -> dict[str, Any]:
    record: dict[str, Any] = {
        "bench": "sql_floor",
        "date_utc": harness.now_utc(),
        "status": "ok" if problem is None else problem,
        "n": n,
        "runs_s": [round(s, 4) for s in runs],
        "transactions": transactions,
        "config": config,
        "machine": machine,
    }
    if runs:
        med = harness.median(runs)
        record["median_s"] = round(med, 4)
        record["children_per_s"] = round(n / med, 1)
        record["us_per_child"] = round(1e6 * med / n, 2)
        record["cpu_ms_per_child"] = {
            role: round(1000 * secs / (n * len(runs)), 4) for role, secs in cpu.items()
        }
    harness.append_jsonl(args.output, record)
    return record


def bench_sqlite(
    args: argparse.Namespace, synchronous: str, path: str, machine: dict[str, Any]
) -> list[dict[str, Any]]:
    conn = sqlite_connect(path, synchronous)
    config = {
        "database": "sqlite",
        "sqlite_synchronous": synchronous,
        "chunk": args.chunk,
        "reps": args.reps,
        "journal_mode": conn.execute("PRAGMA journal_mode").fetchone()[0],
    }
    records = []
    try:
        sqlite_run(conn, make_batch(100), args.chunk)  # warm-up: pages, statement cache
        for n in args.sizes:
            runs: list[float] = []
            transactions = 0
            problem = None
            cpu = {"client": 0.0}  # of the timed part only
            for rep in range(1, args.reps + 1):
                batch = make_batch(n)
                cpu0 = time.process_time()
                secs, transactions = sqlite_run(conn, batch, args.chunk)
                cpu["client"] += time.process_time() - cpu0
                runs.append(secs)
                log(
                    f"sqlite synchronous={synchronous} N={n} rep {rep}/{args.reps}: "
                    f"{secs:.3f} s ({n / secs:,.0f} children/s)"
                )
                problem = problem or sqlite_check(conn, batch)
            records.append(_record(args, n, config, machine, runs, transactions, cpu, problem))
    finally:
        conn.close()
    return records


async def _bench_pg(
    args: argparse.Namespace, url: str, config: dict[str, Any], machine: dict[str, Any]
) -> list[dict[str, Any]]:
    conn = await pg_connect(url)
    backends = PgBackends(harness.pg_database(url))
    records = []
    try:
        # Warm-up. No ANALYZE: the tables are as fresh as the engine's in bench/fanout.py.
        await pg_run(conn, make_batch(100), args.chunk)
        for n in args.sizes:
            runs: list[float] = []
            transactions = 0
            problem = None
            backends.refresh()
            cpu = {"client": 0.0, "postgres": 0.0}  # of the timed part only
            for rep in range(1, args.reps + 1):
                batch = make_batch(n)
                pg0, cpu0 = backends.read(), time.process_time()
                secs, transactions = await pg_run(conn, batch, args.chunk)
                cpu["client"] += time.process_time() - cpu0
                cpu["postgres"] += backends.read() - pg0
                runs.append(secs)
                log(f"postgresql N={n} rep {rep}/{args.reps}: {secs:.3f} s ({n / secs:,.0f}/s)")
                problem = problem or await pg_check(conn, batch)
            if not backends.count():  # not a server of this machine
                del cpu["postgres"]
            records.append(_record(args, n, config, machine, runs, transactions, cpu, problem))
    finally:
        await conn.close()
    return records


def bench_pg(args: argparse.Namespace, machine: dict[str, Any]) -> list[dict[str, Any]]:
    throwaway = ThrowawayDatabase(args.database_url) if args.pg_create else None
    try:
        url = throwaway.create() if throwaway else args.database_url
        config: dict[str, Any] = {
            "database": "postgresql",
            "pg_create": throwaway is not None,
            "chunk": args.chunk,
            "reps": args.reps,
        }
        try:
            config["postgres"] = harness.pg_info(url)
        except Exception as exc:
            log(f"could not read the server's settings: {exc}")
        if not throwaway and (existing := harness.pg_row_count(url)):
            log(f"note: the database already holds {existing:,} executions (not fresh)")
        records: list[dict[str, Any]] = asyncio.run(_bench_pg(args, url, config, machine))
        return records
    finally:
        if throwaway is not None:
            old = signal.signal(signal.SIGINT, signal.SIG_IGN)
            try:
                throwaway.drop()
            finally:
                signal.signal(signal.SIGINT, old)


def print_table(records: Sequence[dict[str, Any]], args: argparse.Namespace) -> None:
    if not records:
        return
    m = records[0]["machine"]
    print()
    print(
        f"SQL floor of a fan-out (pure SQL, batched by {args.chunk}), median of {args.reps}; "
        f"{m['cpu_count']} x {m['cpu_model']}, Python {m['python']}, SQLite {m['sqlite']}"
    )
    head = (
        f"{'database':<32} | {'N':>7} | {'median s':>9} | {'children/s':>10} | "
        f"{'transactions':>12} | {'CPU ms/child cli/pg':>19} | status"
    )
    print(head)
    print("-" * len(head))
    for r in records:
        c = r["config"]
        if c["database"] == "sqlite":
            db = f"sqlite synchronous={c['sqlite_synchronous'].upper()}"
        else:
            pg = c.get("postgres", {})
            db = (
                f"postgresql {pg.get('server_version', '?').split()[0]} "
                f"sync_commit={pg.get('synchronous_commit', '?')}"
            )
        cpu = r.get("cpu_ms_per_child", {})
        cpu_s = "/".join(f"{cpu[k]:.3f}" for k in ("client", "postgres") if k in cpu)
        med = f"{r['median_s']:.3f}" if "median_s" in r else "-"
        cps = f"{r['children_per_s']:,.0f}" if "children_per_s" in r else "-"
        print(
            f"{db:<32} | {r['n']:>7,} | {med:>9} | {cps:>10} | {r['transactions']:>12} | "
            f"{cpu_s:>19} | {r['status']}"
        )
    print(f"\nJSON lines appended to {args.output}")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    machine = harness.machine_info()
    old_term = signal.signal(signal.SIGTERM, harness._raise_on_sigterm)
    records: list[dict[str, Any]] = []
    try:
        if harness.is_postgres(args.database_url):
            records += bench_pg(args, machine)
        else:
            for synchronous in args.synchronous:
                if args.database_url:
                    records += bench_sqlite(
                        args, synchronous, args.database_url.removeprefix("sqlite:///"), machine
                    )
                    continue
                with tempfile.TemporaryDirectory(prefix="polos-floor-") as tmp:
                    path = str(Path(tmp) / "floor.db")
                    records += bench_sqlite(args, synchronous, path, machine)
    except KeyboardInterrupt:
        log("interrupted")
        return 130
    finally:
        signal.signal(signal.SIGTERM, old_term)
    print_table(records, args)
    return 0 if records and all(r["status"] == "ok" for r in records) else 1


if __name__ == "__main__":
    sys.exit(main())
