"""The status counters (polos/store/status_counts.py) and the queues' usage against a
`GROUP BY` over executions.

The store suite checks this after every test on both databases (tests/store/conftest.py), so
each scenario it runs — claims, reports, retries, suspensions, cancellations, lease expiry,
failed units rolled back — also proves the counters exact.
"""

from __future__ import annotations

from polos.store.base import Store, StoreTx

Tally = dict[tuple[str, ...], int]


async def _tallies(tx: StoreTx) -> tuple[Tally, Tally, Tally, Tally]:
    def of(rows: list[object]) -> Tally:
        out: Tally = {}
        for r in rows:
            *key, n = tuple(r)  # type: ignore[call-overload]
            if int(n):
                out[tuple(str(k) for k in key)] = int(n)
        return out

    tree_kept = of(await tx._rows("SELECT root_execution_id, status, n FROM tree_status_counts"))
    tree_real = of(
        await tx._rows(
            "SELECT root_execution_id, status, COUNT(*) FROM executions "
            "GROUP BY root_execution_id, status"
        )
    )
    child_kept = of(
        await tx._rows(
            "SELECT parent_execution_id, parent_step_key, status, n FROM child_status_counts"
        )
    )
    child_real = of(
        await tx._rows(
            "SELECT parent_execution_id, COALESCE(parent_step_key, ''), status, COUNT(*) "
            "FROM executions WHERE parent_execution_id IS NOT NULL "
            "GROUP BY parent_execution_id, COALESCE(parent_step_key, ''), status"
        )
    )
    return tree_kept, tree_real, child_kept, child_real


async def assert_status_counts_exact(store: Store) -> None:
    tree_kept, tree_real, child_kept, child_real = await store.read(_tallies)
    assert tree_kept == tree_real, "tree status counters differ from the executions"
    assert child_kept == child_real, "children status counters differ from the executions"


async def _usage(tx: StoreTx) -> tuple[Tally, Tally]:
    kept = await tx._rows(
        "SELECT project_id, queue_name, concurrency_key, running FROM queue_usage "
        "WHERE running <> 0"
    )
    real = await tx._rows(
        "SELECT project_id, queue_name, concurrency_key, COUNT(*) FROM executions "
        "WHERE status = 'running' GROUP BY project_id, queue_name, concurrency_key"
    )
    return (
        {(str(r[0]), str(r[1]), str(r[2])): int(r[3]) for r in kept},
        {(str(r[0]), str(r[1]), str(r[2])): int(r[3]) for r in real},
    )


async def assert_queue_usage_exact(store: Store) -> None:
    """Every queue slot taken is a running execution's (rule 8 counts running ones only)."""
    kept, real = await store.read(_usage)
    assert kept == real, "queue usage differs from the running executions"
