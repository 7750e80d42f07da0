"""Where the wall time of one big fan-out goes, from the executions' own timestamps.

    .venv/bin/python bench/phases.py 10000 100000

Starts a server (temporary SQLite file) and one worker (capacity 100) as fanout.py does, runs
one `parallel_review` parent with N children per size given and prints, from the rows:

- setup: the parent's start -> its children inserted (the worker builds the N submissions, the
  server parses them and inserts them in one transaction);
- commit: inserted -> the first child started (that transaction's commit, the first claim);
- children: the first child started -> the last child done, and the rate of that phase;
- gather: the last child done -> the parent done (the parent's batch of N results).

A diagnostic for the curve in docs/performance.md; not part of `make bench`.
"""

from __future__ import annotations

import asyncio
import sqlite3
import sys
import time

import workload
from harness import Cluster

import polos

PARENT = "SELECT created_at, started_at, completed_at FROM executions WHERE id = ?"
CHILDREN = (
    "SELECT MIN(created_at), MIN(started_at), MAX(completed_at) FROM executions "
    "WHERE parent_execution_id = ?"
)


async def one(client: polos.PolosClient, database: str, n: int) -> str:
    t0 = time.time()
    handle = await workload.parallel_review.invoke(client, workload.parent_request(n))
    await client.wait_for_execution(handle.id, timeout=600)
    elapsed = time.time() - t0
    with sqlite3.connect(database) as conn:
        _, parent_start, parent_done = conn.execute(PARENT, (handle.id,)).fetchone()
        inserted, first_start, last_done = conn.execute(CHILDREN, (handle.id,)).fetchone()
    children = last_done - first_start
    return (
        f"N={n}: total {elapsed:.2f} s ({n / elapsed:,.0f}/s) | setup "
        f"{inserted - parent_start:.2f} s | commit {first_start - inserted:.2f} s | children "
        f"{children:.2f} s ({n / children:,.0f}/s) | gather {parent_done - last_done:.2f} s"
    )


async def main(sizes: list[int]) -> None:
    with Cluster(None, capacity=100) as cluster:
        database = cluster.database_url.split("///", 1)[1]
        client = polos.PolosClient(api_url=cluster.api_url)
        await workload.parallel_review.run(client, workload.parent_request(100), timeout=60)
        for n in sizes:
            print(await one(client, database, n), flush=True)
        await client.close()


if __name__ == "__main__":
    asyncio.run(main([int(arg) for arg in sys.argv[1:]] or [10_000]))
