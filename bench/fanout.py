"""Fan-out/fan-in throughput: one `parallel_review` parent with N `single_review` children.

Starts --replicas polos servers on one database (a temporary SQLite file unless
--database-url; several replicas need PostgreSQL) and --workers worker processes on 127.0.0.1,
worker i on replica i mod N, warms up, then for each N runs one parent (submit -> result,
through replica 0) --reps times and reports children/s = N / median seconds, with the peak RSS
of the servers, the workers and this client while that N ran, and the CPU seconds each used
(and on a local PostgreSQL, its backends'). One JSON line per N goes to --output; a table is
printed at the end.

    .venv/bin/python bench/fanout.py --sizes 10,100,1000 --reps 3
    .venv/bin/python bench/fanout.py --database-url postgresql://postgres@127.0.0.1:5432 \
        --replicas 2 --workers 2 --sizes 1000 --reps 3
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import harness
import workload
from harness import Cluster, RssSampler, log

import polos


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument(
        "--sizes", default="10,100,1000,10000", help="comma-separated N (default %(default)s)"
    )
    harness.add_cluster_args(p)
    p.add_argument("--workers", type=int, default=1, help="worker processes (default 1)")
    p.add_argument(
        "--capacity", type=int, default=100, help="max_concurrent_workflows per worker (100)"
    )
    p.add_argument("--reps", type=int, default=3, help="measured runs per N (median reported)")
    p.add_argument("--output", type=Path, default=None, help="JSON lines file to append to")
    p.add_argument(
        "--timeout", type=float, default=None, help="seconds per run (default 60 + 0.1 s * N)"
    )
    p.add_argument("--uvloop", action="store_true", help="run worker and client on uvloop")
    args = p.parse_args(argv)
    args.sizes = [int(x) for x in args.sizes.split(",") if x.strip()]
    if not args.sizes or min(args.sizes) < 1 or args.reps < 1 or args.workers < 1:
        p.error("sizes, reps and workers must be positive")
    harness.check_cluster_args(p, args)
    args.output = args.output or harness.default_output("fanout")
    return args


async def run_parent(client: polos.PolosClient, n: int, timeout: float) -> float:
    """One parent with n children, submit -> result; returns seconds. Raises if wrong."""
    request = workload.parent_request(n)
    t0 = time.perf_counter()
    summary = await workload.parallel_review.run(client, request, timeout=timeout)
    elapsed = time.perf_counter() - t0
    problem = workload.check_summary(summary, n)
    if problem:
        raise RuntimeError(problem)
    return elapsed


async def bench(args: argparse.Namespace, cluster: Cluster, machine: dict[str, Any]) -> list[Any]:
    sampler = RssSampler(cluster.pids(), pg_backends=cluster.pg_backends()).start()
    records: list[dict[str, Any]] = []
    client = polos.PolosClient(api_url=cluster.api_url)  # replica 0
    config = {
        "workers": args.workers,
        "capacity": args.capacity,
        "reps": args.reps,
        **cluster.describe(),
        "uvloop": args.uvloop,
    }
    try:
        # Warm-up: imports and code paths get warm, the database grows a bit.
        t0 = time.perf_counter()
        review = await harness.wait_for_workers(
            cluster,
            lambda: workload.single_review.run(client, workload.single_request(), timeout=60),
            timeout=60,
        )
        if problem := workload.check_review(review):
            raise RuntimeError(f"warm-up: {problem}")
        for n in (10, 100):
            await run_parent(client, n, timeout=60)
        log(f"warm-up done in {time.perf_counter() - t0:.2f} s")

        failed = None
        for n in args.sizes:
            record: dict[str, Any] = {
                "bench": "fanout",
                "date_utc": harness.now_utc(),
                "n": n,
                "config": config,
                "machine": machine,
            }
            if failed is not None:
                record["status"] = f"skipped: {failed}"
                records.append(record)
                harness.append_jsonl(args.output, record)
                continue
            timeout = args.timeout or 60.0 + 0.1 * n
            runs: list[float] = []
            sampler.reset()
            cpu0 = sampler.cpu_seconds()
            try:
                for rep in range(1, args.reps + 1):
                    cluster.check_alive()
                    secs = await harness.bounded(run_parent(client, n, timeout), timeout + 5)
                    runs.append(secs)
                    log(f"N={n} rep {rep}/{args.reps}: {secs:.3f} s ({n / secs:,.0f} children/s)")
                record["status"] = "ok"
            except TimeoutError:
                failed = f"N={n} timed out after {timeout:.0f} s"
                record["status"] = failed
            except Exception as exc:
                failed = f"N={n}: {type(exc).__name__}: {str(exc)[:300]}"
                record["status"] = failed
            record["runs_s"] = [round(s, 4) for s in runs]
            if runs:
                med = harness.median(runs)
                record["median_s"] = round(med, 4)
                record["children_per_s"] = round(n / med, 1)
            record["peak_rss_mib"] = sampler.peak_mib()
            record["cpu_s"] = harness.cpu_delta(cpu0, sampler.cpu_seconds())
            if runs:  # CPU time of every role, per child run (over all reps)
                record["cpu_ms_per_child"] = {
                    role: round(1000 * secs / (n * len(runs)), 3)
                    for role, secs in record["cpu_s"].items()
                }
            records.append(record)
            harness.append_jsonl(args.output, record)
            if failed:
                log(failed)
                for name, _ in cluster.processes():
                    log(f"--- {name} log tail ---\n{cluster.log_tail(name)}")
    finally:
        sampler.stop()
        await client.close()
    return records


def print_table(records: list[dict[str, Any]], machine: dict[str, Any], args: Any) -> None:
    config = records[0]["config"] if records else {}
    database = config.get("database", "?")
    pg = config.get("postgres")
    if pg:
        database += (
            f" {pg.get('server_version', '?')} (synchronous_commit={pg.get('synchronous_commit')})"
        )
    elif database == "sqlite":
        database += f" {machine['sqlite']} (synchronous={config.get('sqlite_synchronous')})"
    pg_cpu = any("postgres" in r.get("cpu_ms_per_child", {}) for r in records)
    print()
    print(
        f"polos fan-out/fan-in, {args.replicas} server(s), {args.workers} worker(s) x capacity "
        f"{args.capacity}, {database}, median of {args.reps}"
    )
    print(
        f"{machine['cpu_count']} x {machine['cpu_model']}, Python {machine['python']}, "
        f"commit {machine['git_commit'][:12]}{harness.probe_text(machine)}"
    )
    cpu_keys = ("server", "workers", "postgres") if pg_cpu else ("server", "workers")
    cpu_head = "CPU ms/child srv/wrk" + ("/pg" if pg_cpu else "")
    runs_w = max([26] + [len(", ".join(f"{s:.3f}" for s in r.get("runs_s", []))) for r in records])
    head = (
        f"{'N':>6} | {'median s':>9} | {'children/s':>10} | {'runs s':<{runs_w}} | "
        f"{'peak RSS MiB srv/wrk/cli':>24} | {cpu_head:>20} | status"
    )
    print(head)
    print("-" * len(head))
    for r in records:
        runs = ", ".join(f"{s:.3f}" for s in r.get("runs_s", []))
        rss = r.get("peak_rss_mib", {})
        cpu = r.get("cpu_ms_per_child", {})
        rss_s = "/".join(f"{rss.get(k, 0):.0f}" for k in ("server", "workers", "client"))
        cpu_s = "/".join(f"{cpu.get(k, 0):.2f}" for k in cpu_keys)
        med = f"{r['median_s']:.3f}" if "median_s" in r else "-"
        cps = f"{r['children_per_s']:,.0f}" if "children_per_s" in r else "-"
        print(
            f"{r['n']:>6} | {med:>9} | {cps:>10} | {runs:<{runs_w}} | {rss_s:>24} | {cpu_s:>20} | "
            f"{r.get('status', '?')}"
        )
    print(f"\nJSON lines appended to {args.output}")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    machine = harness.machine_info()
    records: list[dict[str, Any]] = []
    try:
        with Cluster(
            args.database_url,
            workers=args.workers,
            capacity=args.capacity,
            uvloop=args.uvloop,
            replicas=args.replicas,
            pg_create=args.pg_create,
        ) as cluster:
            records = harness.run_async(lambda: bench(args, cluster, machine), uvloop=args.uvloop)
    except KeyboardInterrupt:
        log("interrupted; every process started was stopped")
        return 130
    print_table(records, machine, args)
    return 0 if records and all(r.get("status") == "ok" for r in records) else 1


if __name__ == "__main__":
    sys.exit(main())
