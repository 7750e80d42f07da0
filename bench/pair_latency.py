"""Interleaved A/B of single-call latency: two source trees, each with its own server and
worker (own SQLite files), called alternately by one client (A B, B A, A B, ...).

Alternating rounds of whole benchmark runs could not resolve differences under ≈ 0.2 ms on
this VM, whose speed drifts by tens of percent within minutes. Interleaving call by call puts
both variants in the same moments. One bias is left: the cluster started second was up to
0.17 ms faster in some A/A runs (0.02 in others), so the script runs two passes, A's cluster
started first, then B's, and the estimate of B - A is the mean of the two passes' paired
medians (the bias has opposite signs in them). The client imports polos from the tree this
script runs with (`PYTHONPATH`); servers and workers from theirs.

    .venv/bin/python bench/pair_latency.py /work/base /work/main --calls 1500
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import harness
import workload
from harness import Cluster

import polos


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("tree_a", type=Path, help="source tree of variant A (its polos/ is imported)")
    p.add_argument("tree_b", type=Path, help="source tree of variant B")
    p.add_argument("--calls", type=int, default=1500, help="timed calls per variant")
    p.add_argument("--warmup", type=int, default=30, help="untimed calls per variant first")
    p.add_argument("--output", type=Path, default=None, help="JSON lines file to append to")
    p.add_argument(
        "--postgres",
        default=None,
        metavar="URL",
        help="run both on PostgreSQL: a throwaway database each on this server\n"
        "(postgresql://postgres@127.0.0.1:5432); default: a SQLite file each",
    )
    args = p.parse_args(argv)
    if args.calls < 2 or args.warmup < 0:
        p.error("--calls must be at least 2 and --warmup not negative")
    for tree in (args.tree_a, args.tree_b):
        if not (tree / "polos" / "__init__.py").exists():
            p.error(f"{tree} holds no polos/ package")
    return args


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def _bench(args: argparse.Namespace, clusters: dict[str, Cluster]) -> dict[str, Any]:
    clients = {k: polos.PolosClient(api_url=c.api_url) for k, c in clusters.items()}

    async def call(k: str, i: int) -> float:
        t0 = time.perf_counter()
        review = await workload.single_review.run(
            clients[k], workload.single_request(f"reviewer-{i}"), timeout=30
        )
        elapsed = time.perf_counter() - t0
        if problem := workload.check_review(review):
            raise RuntimeError(problem)
        return elapsed * 1000.0

    try:
        for k, cluster in clusters.items():
            await harness.wait_for_workers(cluster, lambda k=k: call(k, -1), timeout=60)
        for i in range(args.warmup):
            for k in clusters:
                await call(k, i)
        pids = {k: (c.servers[0].pid, c.worker_procs[0].pid) for k, c in clusters.items()}
        before = {k: [_cpu_seconds(p) for p in v] for k, v in pids.items()}
        lats: dict[str, list[float]] = {k: [] for k in clusters}
        for i in range(args.calls):
            for k in ("A", "B") if i % 2 == 0 else ("B", "A"):
                lats[k].append(await harness.bounded(call(k, i), 60))
        after = {k: [_cpu_seconds(p) for p in v] for k, v in pids.items()}
    finally:
        for client in clients.values():
            await client.close()
    record: dict[str, Any] = {}
    for k in clusters:
        ordered = sorted(lats[k])
        record[k] = {
            "tree": str(getattr(args, f"tree_{k.lower()}")),
            "p50": round(harness.percentile(ordered, 50), 3),
            "p95": round(harness.percentile(ordered, 95), 3),
            "mean": round(statistics.fmean(ordered), 3),
            "cpu_ms_per_call": {
                "server": round(1000 * (after[k][0] - before[k][0]) / args.calls, 3),
                "worker": round(1000 * (after[k][1] - before[k][1]) / args.calls, 3),
            },
        }
    diffs = sorted(b - a for a, b in zip(lats["A"], lats["B"], strict=True))
    record["paired_median_b_minus_a_ms"] = round(harness.percentile(diffs, 50), 3)
    return record


def _pass(args: argparse.Namespace, start_order: str) -> dict[str, Any]:
    trees = {"A": args.tree_a, "B": args.tree_b}
    clusters: dict[str, Cluster] = {}
    try:
        for k in start_order:
            os.environ["PYTHONPATH"] = str(trees[k].resolve())  # what its processes import
            cluster = Cluster(args.postgres, pg_create=args.postgres is not None)
            clusters[k] = cluster.__enter__()
        return asyncio.run(_bench(args, {k: clusters[k] for k in "AB"}))
    finally:
        for cluster in reversed(clusters.values()):
            cluster.__exit__(None, None, None)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    passes = {order: _pass(args, order) for order in ("AB", "BA")}
    record: dict[str, Any] = {
        "bench": "pair_latency",
        "calls": args.calls,
        "database": "postgresql" if args.postgres else "sqlite",
        "passes": passes,
        "b_minus_a_ms": round(
            statistics.fmean(p["paired_median_b_minus_a_ms"] for p in passes.values()), 3
        ),
    }
    for order, p in passes.items():
        print(
            f"{order[0]}'s cluster started first: p50 A {p['A']['p50']} / B {p['B']['p50']} ms, "
            f"paired median B - A {p['paired_median_b_minus_a_ms']} ms; CPU per call server "
            f"{p['A']['cpu_ms_per_call']['server']} / {p['B']['cpu_ms_per_call']['server']}, "
            f"worker {p['A']['cpu_ms_per_call']['worker']} / {p['B']['cpu_ms_per_call']['worker']}"
        )
    print(f"B - A, the mean of both passes: {record['b_minus_a_ms']} ms per call")
    record["machine"] = harness.machine_info()
    if args.output:
        with args.output.open("a") as f:
            f.write(json.dumps(record) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
