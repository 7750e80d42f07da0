"""Single-child latency: sequential `single_review.run(...)` calls, submit -> result.

The server (or --replicas servers on one PostgreSQL database) and the worker(s) run in their
own processes on 127.0.0.1, worker i on replica i mod N; the client is this process, with one
`PolosClient` on replica 0 that keeps its connections. After --warmup calls, --runs calls are timed
one after the other; p50/p95/p99/mean/max in ms go to one JSON line and a printed summary.

    .venv/bin/python bench/latency.py --runs 200
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
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
    p.add_argument("--runs", type=int, default=200, help="timed calls (default 200)")
    p.add_argument("--warmup", type=int, default=20, help="untimed calls first (default 20)")
    harness.add_cluster_args(p)
    p.add_argument("--workers", type=int, default=1, help="worker processes (default 1)")
    p.add_argument("--capacity", type=int, default=100, help="worker max_concurrent_workflows")
    p.add_argument("--output", type=Path, default=None, help="JSON lines file to append to")
    p.add_argument("--uvloop", action="store_true", help="run worker and client on uvloop")
    p.add_argument(
        "--breakdown",
        type=int,
        default=50,
        help="extra untimed calls split into phases by the server's timestamps (default 50)",
    )
    args = p.parse_args(argv)
    if args.runs < 1 or args.warmup < 0 or args.breakdown < 0 or args.workers < 1:
        p.error("--runs and --workers must be positive, --warmup and --breakdown not negative")
    harness.check_cluster_args(p, args)
    args.output = args.output or harness.default_output("latency")
    return args


async def one_call(client: polos.PolosClient, i: int) -> float:
    request = workload.single_request(f"reviewer-{i}")
    t0 = time.perf_counter()
    review = await workload.single_review.run(client, request, timeout=30)
    elapsed = time.perf_counter() - t0
    if problem := workload.check_review(review):
        raise RuntimeError(problem)
    return elapsed


def _ts(value: str | None) -> float:
    if not value:
        raise RuntimeError("execution view without a timestamp")
    return dt.datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


async def phases(client: polos.PolosClient, i: int) -> dict[str, float]:
    """One call as invoke + wait_for_result (what `.run` does), split by the server's clock:
    submit (client -> execution row), dispatch (row -> claimed by the worker), run (claimed ->
    outcome applied), finish (outcome applied -> result in the client). Same machine, so the
    wall clocks agree."""
    request = workload.single_request(f"reviewer-b{i}")
    t0 = time.time()
    handle = await workload.single_review.invoke(client, request)
    review = await client.wait_for_result(handle.id, timeout=30, workflow=workload.single_review)
    t1 = time.time()
    if problem := workload.check_review(review):
        raise RuntimeError(problem)
    view = await client.get_execution(handle.id)
    created, started = _ts(view["created_at"]), _ts(view["started_at"])
    completed = _ts(view["completed_at"])
    return {
        "submit": (created - t0) * 1000,
        "dispatch": (started - created) * 1000,
        "run": (completed - started) * 1000,
        "finish": (t1 - completed) * 1000,
        "total": (t1 - t0) * 1000,
    }


async def bench(args: argparse.Namespace, cluster: Cluster, machine: dict[str, Any]) -> Any:
    sampler = RssSampler(cluster.pids(), pg_backends=cluster.pg_backends()).start()
    client = polos.PolosClient(api_url=cluster.api_url)  # replica 0
    try:
        t0 = time.perf_counter()
        await harness.wait_for_workers(cluster, lambda: one_call(client, -1), timeout=60)
        for i in range(args.warmup):
            await harness.bounded(one_call(client, i), 60)
        log(f"{args.warmup} warm-up calls in {time.perf_counter() - t0:.2f} s")
        sampler.reset()
        cpu0 = sampler.cpu_seconds()
        lats: list[float] = []
        t0 = time.perf_counter()
        for i in range(args.runs):
            lats.append(await harness.bounded(one_call(client, i), 60) * 1000.0)
        wall = time.perf_counter() - t0
        peak, cpu = sampler.peak_mib(), harness.cpu_delta(cpu0, sampler.cpu_seconds())
        split: list[dict[str, float]] = []
        for i in range(args.breakdown):
            split.append(await harness.bounded(phases(client, i), 60))
    finally:
        sampler.stop()
        await client.close()
    ordered = sorted(lats)
    return {
        "bench": "latency",
        "date_utc": harness.now_utc(),
        "status": "ok",
        "runs": len(lats),
        "warmup": args.warmup,
        "latency_ms": {
            "p50": round(harness.percentile(ordered, 50), 2),
            "p95": round(harness.percentile(ordered, 95), 2),
            "p99": round(harness.percentile(ordered, 99), 2),
            "mean": round(statistics.fmean(lats), 2),
            "min": round(ordered[0], 2),
            "max": round(ordered[-1], 2),
            "stdev": round(statistics.stdev(lats), 2) if len(lats) > 1 else 0.0,
        },
        "wall_s": round(wall, 3),
        "peak_rss_mib": peak,
        "cpu_s": cpu,
        "cpu_ms_per_call": {role: round(1000 * v / len(lats), 2) for role, v in cpu.items()},
        "phases_median_ms": {
            k: round(harness.median([b[k] for b in split]), 2) for k in (split[0] if split else {})
        },
        "phases_runs": len(split),
        "config": {
            "workers": args.workers,
            "capacity": args.capacity,
            **cluster.describe(),
            "uvloop": args.uvloop,
        },
        "machine": machine,
    }


def print_summary(record: dict[str, Any], args: argparse.Namespace) -> None:
    m = record["machine"]
    lat = record["latency_ms"]
    rss = record["peak_rss_mib"]
    cpu = record["cpu_ms_per_call"]
    config = record["config"]
    database = config["database"]
    if pg := config.get("postgres"):
        database += (
            f" {pg.get('server_version', '?')} (synchronous_commit={pg.get('synchronous_commit')})"
        )
    elif database == "sqlite":
        database += f" {m['sqlite']} (synchronous={config.get('sqlite_synchronous')})"
    print()
    print(
        f"polos single-child latency, {record['runs']} sequential single_review.run() calls after "
        f"{record['warmup']} warm-ups, {config['replicas']} server(s), {config['workers']} "
        f"worker(s), {database}"
    )
    print(
        f"{m['cpu_count']} x {m['cpu_model']}, Python {m['python']}, commit {m['git_commit'][:12]}"
        f"{harness.probe_text(m)}"
    )
    print(
        f"  p50 {lat['p50']:.2f} ms | p95 {lat['p95']:.2f} ms | p99 {lat['p99']:.2f} ms | "
        f"mean {lat['mean']:.2f} ms | min {lat['min']:.2f} | max {lat['max']:.2f} | "
        f"stdev {lat['stdev']:.2f}"
    )
    print(
        f"  peak RSS MiB server {rss.get('server', 0):.0f} / worker {rss.get('workers', 0):.0f}"
        f" / client {rss.get('client', 0):.0f}; CPU ms per call server "
        f"{cpu['server']:.2f} / worker {cpu['workers']:.2f} / client {cpu['client']:.2f}"
        + (f" / postgres {cpu['postgres']:.2f}" if "postgres" in cpu else "")
    )
    if record["phases_median_ms"]:
        ph = record["phases_median_ms"]
        print(
            f"  phases (median of {record['phases_runs']} more calls, ms): submit "
            f"{ph['submit']:.2f} | dispatch {ph['dispatch']:.2f} | run {ph['run']:.2f} | "
            f"finish {ph['finish']:.2f} | total {ph['total']:.2f}"
        )
    print(f"\nJSON line appended to {args.output}")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    machine = harness.machine_info()
    try:
        with Cluster(
            args.database_url,
            workers=args.workers,
            capacity=args.capacity,
            uvloop=args.uvloop,
            replicas=args.replicas,
            pg_create=args.pg_create,
        ) as c:
            record = harness.run_async(lambda: bench(args, c, machine), uvloop=args.uvloop)
    except KeyboardInterrupt:
        log("interrupted; every process started was stopped")
        return 130
    except Exception as exc:
        failed = {
            "bench": "latency",
            "date_utc": harness.now_utc(),
            "status": f"error: {type(exc).__name__}: {str(exc)[:300]}",
            "machine": machine,
        }
        harness.append_jsonl(args.output, failed)
        raise
    harness.append_jsonl(args.output, record)
    print_summary(record, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
