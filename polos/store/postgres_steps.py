"""The SQL of journals and waiting steps on PostgreSQL: recording steps, the pending count of a
step that waits for children (with its batch policy), resolving it, and the children's
outcomes (a mixin of `PgTx`, polos/store/postgres_tx.py)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from polos.model import (
    AttemptSteps,
    ChildOutcome,
    ErrorInfo,
    ExecutionStatus,
    FenceRow,
    StepRecord,
    StepStatus,
)
from polos.store.postgres_base import _step
from polos.store.rows import FENCE_COLUMNS, FINAL, error_info, fence_row

if TYPE_CHECKING:
    from polos.store.postgres_base import PgConnection


def _attempt(attempt: int) -> int:
    # A reported attempt beyond the column's range (the protocol does not bound it) is no
    # attempt of any execution: 0 never passes the fence, and the item is answered as stale.
    return attempt if 1 <= attempt <= 2**31 - 1 else 0


class PgStepOps:
    _c: PgConnection  # PgTx's connection, set in its __init__

    async def record_attempt_steps(
        self, worker_id: str, items: Sequence[AttemptSteps], now: float
    ) -> dict[str, FenceRow]:
        # StoreTx.record_attempt_steps in one statement: the fence rows locked in ID order
        # (as `fence_rows` locks them), the steps of the items they pass inserted by a
        # data-modifying CTE (run once whether or not the outer query reads it).
        steps = [(item, step) for item in items for step in item.steps]
        rows = await self._c.fetch(
            f"WITH fence AS (SELECT {FENCE_COLUMNS} FROM executions "
            "WHERE id = ANY($1::text[]) ORDER BY id FOR UPDATE), "
            "owned AS (SELECT f.id, r.attempt FROM fence f "
            "JOIN unnest($1::text[], $2::int[]) AS r(id, attempt) ON r.id = f.id "
            "WHERE f.status = 'running' AND f.attempt = r.attempt AND f.worker_id = $3), "
            "ins AS (INSERT INTO steps (execution_id, step_key, position, kind, status, result, "
            "error_type, error_message, output_schema, created_at, completed_at, "
            "duration_seconds) "
            "SELECT s.execution_id, s.step_key, s.position, s.kind, s.status, s.result, "
            "s.error_type, s.error_message, s.output_schema, $4::float8, "
            "CASE WHEN s.status = 'pending' THEN NULL ELSE $4::float8 END, s.duration_seconds "
            "FROM unnest($5::text[], $6::int[], $7::text[], $8::int[], $9::text[], $10::text[], "
            "$11::text[], $12::text[], $13::text[], $14::text[], $15::float8[]) WITH ORDINALITY "
            "AS s(execution_id, attempt, step_key, position, kind, status, result, error_type, "
            "error_message, output_schema, duration_seconds, ord) "
            "WHERE (s.execution_id, s.attempt) IN (SELECT id, attempt FROM owned) "
            "ORDER BY s.ord ON CONFLICT DO NOTHING) "
            "SELECT * FROM fence",
            [item.execution_id for item in items],
            [_attempt(item.attempt) for item in items],
            worker_id,
            now,
            [item.execution_id for item, _ in steps],
            [_attempt(item.attempt) for item, _ in steps],
            [s.step_key for _, s in steps],
            [s.position for _, s in steps],
            [s.kind.value for _, s in steps],
            [s.status.value for _, s in steps],
            [s.result_json for _, s in steps],
            [s.error.type if s.error else None for _, s in steps],
            [s.error.message if s.error else None for _, s in steps],
            [s.output_schema for _, s in steps],
            [s.duration_seconds for _, s in steps],
        )
        return {r[0]: fence_row(r) for r in rows}

    async def insert_step_rows(self, rows: Sequence[tuple[str, StepRecord]], now: float) -> None:
        await self._c.executemany(
            "INSERT INTO steps (execution_id, step_key, position, kind, status, result, "
            "error_type, error_message, output_schema, created_at, completed_at, "
            "duration_seconds) "
            "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) ON CONFLICT DO NOTHING",
            [
                (
                    execution_id,
                    s.step_key,
                    s.position,
                    s.kind.value,
                    s.status.value,
                    s.result_json,
                    s.error.type if s.error else None,
                    s.error.message if s.error else None,
                    s.output_schema,
                    now,
                    None if s.status is StepStatus.PENDING else now,
                    s.duration_seconds,
                )
                for execution_id, s in rows
            ],
        )

    async def set_step_pending(
        self,
        execution_id: str,
        step_key: str,
        pending: int,
        fail_fast: bool = False,
        min_success: int | None = None,
    ) -> None:
        await self._c.execute(
            "UPDATE steps SET pending = $1, fail_fast = $2, min_success = $3 "
            "WHERE execution_id = $4 AND step_key = $5 AND status = 'pending'",
            pending,
            int(fail_fast),
            min_success,
            execution_id,
            step_key,
        )

    async def resolve_step(
        self,
        execution_id: str,
        step_key: str,
        status: StepStatus,
        result_json: str | None,
        error: ErrorInfo | None,
        output_schema: str | None,
        now: float,
    ) -> None:
        await self._c.execute(
            "UPDATE steps SET status = $1, result = $2, error_type = $3, error_message = $4, "
            "output_schema = $5, pending = 0, completed_at = $6 "
            "WHERE execution_id = $7 AND step_key = $8",
            status.value,
            result_json,
            error.type if error else None,
            error.message if error else None,
            output_schema,
            now,
            execution_id,
            step_key,
        )

    async def get_step(self, execution_id: str, step_key: str) -> StepRecord | None:
        r = await self._c.fetchrow(
            "SELECT step_key, kind, status, position, result, error_type, error_message, "
            "output_schema FROM steps WHERE execution_id = $1 AND step_key = $2",
            execution_id,
            step_key,
        )
        return None if r is None else _step(r)

    async def count_unfinished_children(self, parent_id: str, step_key: str) -> int:
        count = await self._c.fetchval(
            "SELECT COUNT(*) FROM executions WHERE parent_execution_id = $1 "
            "AND parent_step_key = $2 AND status <> ALL($3::text[])",
            parent_id,
            step_key,
            list(FINAL),
        )
        return int(count)

    async def decrement_pending(
        self, decrements: Mapping[tuple[str, str], int]
    ) -> tuple[list[tuple[str, str]], list[tuple[str, str, bool, int | None]]]:
        if not decrements:
            return [], []
        # The parent's row first: this waits for a transaction that is suspending the
        # parent (and counting its unfinished children) to commit, so a child is counted
        # either there or here, never in both or neither.
        await self._c.execute(
            "SELECT 1 FROM executions WHERE id = ANY($1::text[]) ORDER BY id FOR UPDATE",
            sorted({parent for parent, _ in decrements}),
        )
        done: list[tuple[str, str]] = []
        with_policy: list[tuple[str, str, bool, int | None]] = []
        for (parent, key), n in sorted(decrements.items()):
            row = await self._c.fetchrow(
                "UPDATE steps SET pending = pending - $1 WHERE execution_id = $2 "
                "AND step_key = $3 AND status = 'pending' AND pending > 0 "
                "RETURNING pending, fail_fast, min_success",
                n,
                parent,
                key,
            )
            if row is None:
                continue
            if row[0] <= 0:
                done.append((parent, key))
            elif row[1] or row[2] is not None:
                with_policy.append((parent, key, bool(row[1]), row[2]))
        return done, with_policy

    async def child_outcomes(self, parent_id: str, step_key: str) -> list[ChildOutcome]:
        rows = await self._c.fetch(
            "SELECT id, workflow_id, status, result, error_type, error_message, output_schema "
            "FROM executions WHERE parent_execution_id = $1 AND parent_step_key = $2 "
            "ORDER BY batch_index",
            parent_id,
            step_key,
        )
        return [
            ChildOutcome(
                id=r[0],
                workflow_id=r[1],
                status=ExecutionStatus(r[2]),
                result_json=r[3],
                error=error_info(r[4], r[5]),
                output_schema=r[6],
            )
            for r in rows
        ]
