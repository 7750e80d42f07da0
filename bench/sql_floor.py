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
import signal
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import harness
from harness import PgBackends, ThrowawayDatabase, log
from sql_floor_pg import pg_check, pg_connect, pg_run
from sql_floor_rows import make_batch
from sql_floor_sqlite import sqlite_check, sqlite_connect, sqlite_run

# The docstring above is also --help. The parts: sql_floor_rows.py (the workload's rows and
# names), sql_floor_sqlite.py and sql_floor_pg.py (each database's connection and SQL); this
# module has the command line, the timing loops, the JSON lines and the table.

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
        f"{harness.probe_text(m)}"
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
