"""What bench/fanout.py and bench/latency.py share: processes, RSS sampling, machine info.

`Cluster` starts `replicas` `polos-server` processes (one unless PostgreSQL: several replicas
share one database), each on a free loopback port, and the requested worker processes
(`python bench/harness.py worker ...`, which serves the workflows of bench/workload.py), worker
i attached to replica i mod replicas. It stops all of them on exit, also on failure, Ctrl-C or
SIGTERM, and drops the throwaway PostgreSQL database it created, if any. Children get SIGTERM
if the benchmark process dies without cleaning up (Linux PR_SET_PDEATHSIG).

The parts, all re-exported here so that scripts use `harness.X` whatever module X lives in:
harness_base.py (paths, log, machine info, JSON lines, statistics), harness_pg.py
(PostgreSQL: settings, throwaway database, backends' CPU), harness_sampling.py (RSS and CPU
sampling) and harness_cluster.py (`Cluster`, the processes). Here: the command-line options
of a cluster, the client-side helpers and the worker process.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from harness_base import (
    BENCH_DIR,
    MIB,
    REPO_DIR,
    RESULTS_DIR,
    append_jsonl,
    default_output,
    log,
    machine_info,
    median,
    now_utc,
    percentile,
    probe_text,
)
from harness_cluster import Cluster, _raise_on_sigterm, free_port
from harness_pg import (
    PgBackends,
    ThrowawayDatabase,
    is_postgres,
    pg_database,
    pg_info,
    pg_row_count,
    pg_with_database,
    run_sync,
)
from harness_sampling import RssSampler, cpu_delta

# What fanout.py, latency.py and sql_floor.py use as harness.X (sql_floor.py also restores
# the SIGTERM handler _raise_on_sigterm), kept importable from here after the split.
__all__ = [
    "BENCH_DIR",
    "MIB",
    "REPO_DIR",
    "RESULTS_DIR",
    "Cluster",
    "PgBackends",
    "RssSampler",
    "ThrowawayDatabase",
    "_raise_on_sigterm",
    "add_cluster_args",
    "append_jsonl",
    "bounded",
    "check_cluster_args",
    "cpu_delta",
    "default_output",
    "free_port",
    "is_postgres",
    "log",
    "machine_info",
    "median",
    "now_utc",
    "percentile",
    "pg_database",
    "pg_info",
    "pg_row_count",
    "pg_with_database",
    "probe_text",
    "run_async",
    "run_sync",
    "wait_for_workers",
    "worker_main",
]


# -- command line -------------------------------------------------------------------------


def add_cluster_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--database-url",
        default=None,
        help="sqlite:///path or postgresql://... (default: a temporary SQLite file); a\n"
        "postgresql:// URL without a database (postgresql://postgres@127.0.0.1:5432)\n"
        "gets a throwaway database, as with --pg-create",
    )
    p.add_argument(
        "--replicas",
        type=int,
        default=1,
        help="server processes on the one database (PostgreSQL only; default 1); worker i\n"
        "is attached to replica i mod N, the client submits through replica 0",
    )
    p.add_argument(
        "--pg-create",
        action="store_true",
        help="create a database with a unique name on the --database-url's server for\n"
        "this run and drop it afterwards, also on failure or Ctrl-C (the URL's database\n"
        "is only where CREATE/DROP DATABASE run)",
    )


def check_cluster_args(p: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    if args.replicas < 1:
        p.error("--replicas must be positive")
    if not is_postgres(args.database_url):
        if args.replicas > 1:
            p.error(
                f"--replicas {args.replicas} needs PostgreSQL: a SQLite database serves one "
                "server process. Pass --database-url postgresql://USER@HOST:PORT (a throwaway "
                "database is created) or postgresql://.../DBNAME."
            )
        if args.pg_create:
            p.error("--pg-create needs a postgresql:// --database-url")
    elif not pg_database(args.database_url):
        args.pg_create = True  # the URL names a server, not a database: use a fresh one


# -- the client side ----------------------------------------------------------------------


def run_async(main: Callable[[], Any], uvloop: bool = False) -> Any:
    if uvloop:
        import uvloop as _uvloop

        return _uvloop.run(main())
    return asyncio.run(main())


async def bounded(coro: Any, timeout: float) -> Any:
    async with asyncio.timeout(timeout):
        return await coro


async def wait_for_workers(cluster: Cluster, make_call: Callable[[], Any], timeout: float) -> Any:
    """Retry a first call until the workers registered its workflow (they start in parallel)."""
    import polos

    deadline = time.monotonic() + timeout
    while True:
        cluster.check_alive()
        try:
            return await bounded(make_call(), timeout)
        except polos.WorkflowNotFoundError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.05)


# -- the worker process -------------------------------------------------------------------


async def _serve(api_url: str, capacity: int, ready_file: str | None) -> None:
    import workload  # bench/ is sys.path[0] when this file runs as a script

    import polos

    client = polos.PolosClient(api_url=api_url)
    worker = polos.Worker(client, workflows=workload.WORKFLOWS, max_concurrent_workflows=capacity)
    if ready_file:
        await worker.start()  # registered; run() below finds it started
        Path(ready_file).write_text(str(os.getpid()))
    await worker.run()


def worker_main(argv: Sequence[str]) -> None:
    parser = argparse.ArgumentParser(prog="harness.py worker")
    parser.add_argument("--api-url", required=True)
    parser.add_argument("--capacity", type=int, default=100)
    parser.add_argument("--uvloop", action="store_true")
    parser.add_argument("--ready-file", default=None, help="written once registered")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    run_async(lambda: _serve(args.api_url, args.capacity, args.ready_file), uvloop=args.uvloop)


if __name__ == "__main__":
    if len(sys.argv) >= 2 and sys.argv[1] == "worker":
        worker_main(sys.argv[2:])
    else:
        sys.exit(
            "usage: harness.py worker --api-url URL [--capacity N] [--uvloop] [--ready-file F]"
        )
