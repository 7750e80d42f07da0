"""The SQL of executions on PostgreSQL: insertion, reads, the claim (candidates, marking them
running, their journals), finishing, re-queueing, suspending, and the rows of expired leases
and of a worker (a mixin of `PgTx`, polos/store/postgres_tx.py)."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import TYPE_CHECKING, Any

from polos.model import (
    ClaimedExecution,
    ExecutionRow,
    FenceRow,
    FinalUpdate,
    NewExecution,
    StepRecord,
)
from polos.store.postgres_base import _step
from polos.store.rows import (
    CLAIM_RETURNING,
    EXECUTION_COLUMNS,
    FENCE_COLUMNS,
    FENCE_COLUMNS_WITH_LIMIT,
    execution_row,
    fence_row,
)
from polos.store.status_counts import CountDeltas, StatusCountOps

if TYPE_CHECKING:
    from polos.store.postgres_base import PgConnection

# Rows per INSERT ... SELECT FROM unnest(...) statement.
_INSERT_CHUNK = 5000


def _cursor(rows: Sequence[NewExecution]) -> int | None:
    """The one event cursor of a chunk of new executions (a submission's or one step's
    children share it); None: the last sequence, read by the insert."""
    cursors = {r.event_cursor for r in rows}
    if None in cursors:
        return None
    return max((c for c in cursors if c is not None), default=0)


# Writes both status counter tables from arrays $1-$7 (`count_arrays`): data-modifying CTEs,
# which run whatever the statement's own query is (PgTx.close_unit adds its NOTIFYs there).
COUNTS_CTE_LIST = (
    "tree AS (INSERT INTO tree_status_counts (root_execution_id, status, n) "
    "SELECT * FROM unnest($1::text[], $2::text[], $3::int[]) "
    "ON CONFLICT (root_execution_id, status) "
    "DO UPDATE SET n = tree_status_counts.n + excluded.n), "
    "child AS (INSERT INTO child_status_counts (parent_execution_id, parent_step_key, status, "
    "n) SELECT * FROM unnest($4::text[], $5::text[], $6::text[], $7::int[]) "
    "ON CONFLICT (parent_execution_id, parent_step_key, status) "
    "DO UPDATE SET n = child_status_counts.n + excluded.n)"
)
COUNTS_CTES = "WITH " + COUNTS_CTE_LIST


def count_arrays(counts: CountDeltas) -> list[list[Any]] | None:
    """The parameters of COUNTS_CTES, rows in sorted order; None when nothing changed."""
    tree = sorted((k, d) for k, d in counts.tree.items() if d)
    children = sorted((k, d) for k, d in counts.children.items() if d)
    if not tree and not children:
        return None
    return [
        [k[0] for k, _ in tree],
        [k[1] for k, _ in tree],
        [d for _, d in tree],
        [k[0] for k, _ in children],
        [k[1] for k, _ in children],
        [k[2] for k, _ in children],
        [d for _, d in children],
    ]


class PgExecutionOps(StatusCountOps):
    _c: PgConnection  # PgTx's connection, set in its __init__

    async def insert_executions(self, rows: Sequence[NewExecution], now: float) -> set[str]:
        inserted: set[str] = set()
        for start in range(0, len(rows), _INSERT_CHUNK):
            part = rows[start : start + _INSERT_CHUNK]
            # Only the primary key is an arbiter: an idempotency-key collision between
            # replicas raises, and the store runs the unit again (it then finds the row).
            found = await self._c.fetch(
                "INSERT INTO executions (id, project_id, workflow_id, status, queue_name, "
                "concurrency_key, payload, parent_execution_id, root_execution_id, "
                "root_workflow_id, parent_step_key, batch_index, notify_parent, deployment_id, "
                "session_id, user_id, initial_state, run_timeout_seconds, idempotency_key, "
                "ready_at, created_at, updated_at, event_cursor) "
                "SELECT u.id, u.project_id, u.workflow_id, 'queued', u.queue_name, u.ckey, "
                "u.payload, u.parent, u.root, u.root_wf, u.step_key, u.batch_index, u.notify, "
                "u.deployment, u.session, u.usr, u.state, u.timeout, u.idem, $20, $20, $20, "
                "COALESCE($21::bigint, (SELECT COALESCE(MAX(seq), 0) FROM events)) "
                "FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], "
                "$6::text[], $7::text[], $8::text[], $9::text[], $10::text[], $11::int[], "
                "$12::int[], $13::text[], $14::text[], $15::text[], $16::text[], "
                "$17::float8[], $18::text[], $19::int[]) AS u(id, project_id, workflow_id, "
                "queue_name, ckey, payload, parent, root, root_wf, step_key, batch_index, "
                "notify, deployment, session, usr, state, timeout, idem, ord) "
                "ORDER BY u.ord ON CONFLICT (id) DO NOTHING RETURNING id",
                [r.id for r in part],
                [r.project_id for r in part],
                [r.workflow_id for r in part],
                [r.queue_name for r in part],
                [r.concurrency_key for r in part],
                [r.payload_json for r in part],
                [r.parent_execution_id for r in part],
                [r.root_execution_id or r.id for r in part],
                [r.root_workflow_id or r.workflow_id for r in part],
                [r.parent_step_key for r in part],
                [r.batch_index for r in part],
                [int(r.notify_parent) for r in part],
                [r.deployment_id for r in part],
                [r.session_id for r in part],
                [r.user_id for r in part],
                [r.initial_state_json for r in part],
                [r.run_timeout_seconds for r in part],
                [r.idempotency_key for r in part],
                list(range(len(part))),
                now,
                _cursor(part),
            )
            inserted.update(r[0] for r in found)
        self.count_inserted(r for r in rows if r.id in inserted)
        return inserted

    async def execution_by_idempotency_key(self, project_id: str, key: str) -> ExecutionRow | None:
        r = await self._c.fetchrow(
            f"SELECT {EXECUTION_COLUMNS} FROM executions "
            "WHERE project_id = $1 AND idempotency_key = $2",
            project_id,
            key,
        )
        return None if r is None else execution_row(r)

    async def get_execution(self, execution_id: str) -> ExecutionRow | None:
        r = await self._c.fetchrow(
            f"SELECT {EXECUTION_COLUMNS} FROM executions WHERE id = $1", execution_id
        )
        return None if r is None else execution_row(r)

    async def fence_rows(self, execution_ids: Collection[str]) -> dict[str, FenceRow]:
        rows = await self._c.fetch(
            f"SELECT {FENCE_COLUMNS_WITH_LIMIT} FROM executions WHERE id = ANY($1::text[]) "
            "ORDER BY id FOR UPDATE OF executions",
            sorted(set(execution_ids)),
        )
        return {r[0]: fence_row(r, with_limit=True) for r in rows}

    async def ready_candidates(
        self,
        project_id: str,
        queue_names: Sequence[str],
        workflow_ids: Collection[str],
        now: float,
        limit: int,
    ) -> list[tuple[str, str, float, str]]:
        # All the queues in one round trip: each queue's range of the ready index, locked as
        # it is read (a claim of another replica skips those rows).
        rows = await self._c.fetch(
            "SELECT c.id, c.concurrency_key, c.ready_at, q.name "
            "FROM unnest($2::text[]) WITH ORDINALITY AS q(name, ord) CROSS JOIN LATERAL ("
            "SELECT id, concurrency_key, ready_at, seq FROM executions WHERE project_id = $1 "
            "AND queue_name = q.name AND status = 'queued' AND ready_at <= $3 "
            "AND workflow_id = ANY($4::text[]) ORDER BY ready_at, seq LIMIT $5 "
            "FOR UPDATE SKIP LOCKED) AS c ORDER BY q.ord, c.ready_at, c.seq",
            project_id,
            list(queue_names),
            now,
            list(workflow_ids),
            limit,
        )
        return [(r[0], r[1], r[2], r[3]) for r in rows]

    async def mark_running(
        self, execution_ids: Sequence[str], worker_id: str, lease_until: float, now: float
    ) -> list[ClaimedExecution]:
        rows = await self._c.fetch(
            "UPDATE executions SET status = 'running', attempt = attempt + 1, "
            "worker_id = $1, lease_expires_at = $2, started_at = COALESCE(started_at, $3), "
            "updated_at = $3 WHERE id = ANY($4::text[]) AND status = 'queued' "
            f"RETURNING {CLAIM_RETURNING}",
            worker_id,
            lease_until,
            now,
            list(execution_ids),
        )
        by_id = {r[0]: ClaimedExecution(*r) for r in rows}
        self.count_claimed(by_id.values())
        return [by_id[i] for i in execution_ids if i in by_id]

    async def load_journals(self, execution_ids: Sequence[str]) -> dict[str, list[StepRecord]]:
        rows = await self._c.fetch(
            "SELECT execution_id, step_key, kind, status, position, result, error_type, "
            "error_message, output_schema FROM steps WHERE execution_id = ANY($1::text[]) "
            "ORDER BY execution_id, position",
            list(execution_ids),
        )
        out: dict[str, list[StepRecord]] = {}
        for r in rows:
            out.setdefault(r[0], []).append(_step(tuple(r)[1:]))
        return out

    # Status changes return each row's placement and its status before the change (from a
    # sub-select that locks the rows, in ID order, like every other lock on executions), so
    # that the status counters need no round trip of their own (store/status_counts.py).
    _BEFORE = (
        "(SELECT id, status FROM executions WHERE id = ANY({ids}::text[]) "
        "ORDER BY id FOR UPDATE) AS o"
    )
    _MOVED = "RETURNING e.root_execution_id, e.parent_execution_id, e.parent_step_key, o.status"

    def _count_returned(self, rows: Sequence[Any], new_status: str | None = None) -> None:
        self.count_moves(((r[0], r[1], r[2]), str(r[3]), new_status or str(r[4])) for r in rows)

    async def finish_executions(self, updates: Sequence[FinalUpdate], now: float) -> None:
        latest = {u.id: u for u in updates}  # one row per execution: the last update wins
        part = [latest[i] for i in sorted(latest)]
        rows = await self._c.fetch(
            "UPDATE executions e SET status = u.status, result = u.result, "
            "error_type = u.etype, error_message = u.emsg, output_schema = u.schema, "
            "state = COALESCE(u.state, e.state), worker_id = NULL, lease_expires_at = NULL, "
            "completed_at = $8, updated_at = $8 "
            "FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], "
            "$6::text[], $7::text[]) AS u(id, status, result, etype, emsg, schema, state), "
            + self._BEFORE.format(ids="$1")
            + " WHERE e.id = u.id AND o.id = u.id "
            + self._MOVED
            + ", e.status",
            [u.id for u in part],
            [u.status.value for u in part],
            [u.result_json for u in part],
            [u.error.type if u.error else None for u in part],
            [u.error.message if u.error else None for u in part],
            [u.output_schema for u in part],
            [u.state_json for u in part],
            now,
        )
        self._count_returned(rows)

    async def requeue_executions(
        self, execution_ids: Sequence[str], ready_at: float, now: float, count_retry: bool
    ) -> None:
        rows = await self._c.fetch(
            "UPDATE executions e SET status = 'queued', worker_id = NULL, "
            "lease_expires_at = NULL, ready_at = $1, retry_count = e.retry_count + $2, "
            "updated_at = $3 FROM "
            + self._BEFORE.format(ids="$4")
            + " WHERE e.id = o.id "
            + self._MOVED,
            ready_at,
            int(count_retry),
            now,
            sorted(set(execution_ids)),
        )
        self._count_returned(rows, "queued")

    async def set_waiting(self, execution_id: str, state_json: str | None, now: float) -> None:
        rows = await self._c.fetch(
            "UPDATE executions e SET status = 'waiting', worker_id = NULL, "
            "lease_expires_at = NULL, state = COALESCE($1, e.state), updated_at = $2 FROM "
            + self._BEFORE.format(ids="$3")
            + " WHERE e.id = o.id "
            + self._MOVED,
            state_json,
            now,
            [execution_id],
        )
        self._count_returned(rows, "waiting")

    async def flush_status_counts(self, counts: CountDeltas | None = None) -> None:
        """Both counter tables in one round trip (the SQL of store/status_counts.py, as
        arrays), rows in sorted order."""
        if counts is None:
            counts = self.take_counts()
            if counts is None:
                return
        arrays = count_arrays(counts)
        if arrays is None:
            return
        await self._c.execute(COUNTS_CTES + " SELECT 1", *arrays)

    async def expired_leases(self, now: float, limit: int) -> list[FenceRow]:
        rows = await self._c.fetch(
            f"SELECT {FENCE_COLUMNS} FROM executions WHERE status = 'running' "
            "AND lease_expires_at < $1 ORDER BY id LIMIT $2 FOR UPDATE SKIP LOCKED",
            now,
            limit,
        )
        return [fence_row(r) for r in rows]

    async def running_of_worker(self, worker_id: str) -> list[FenceRow]:
        rows = await self._c.fetch(
            f"SELECT {FENCE_COLUMNS} FROM executions WHERE worker_id = $1 "
            "AND status = 'running' ORDER BY id FOR UPDATE",
            worker_id,
        )
        return [fence_row(r) for r in rows]
