"""Row conversions and SQL column lists shared by the SQLite and PostgreSQL operations
(both return rows as positional tuples in the column order below)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator, Sequence
from typing import Any, Protocol, TypeVar

from polos.model import ErrorInfo, ExecutionRow, ExecutionStatus, FenceRow

T = TypeVar("T")


class Row(Protocol):
    """A result row by position: a sqlite3 tuple or an asyncpg Record."""

    def __getitem__(self, index: int, /) -> Any: ...


# Keep IN (...) lists well under SQLite's variable limit.
CHUNK = 500

EXECUTION_COLUMNS = (
    "id, project_id, workflow_id, status, queue_name, concurrency_key, payload, result, "
    "error_type, error_message, output_schema, parent_execution_id, root_execution_id, "
    "root_workflow_id, parent_step_key, batch_index, deployment_id, session_id, user_id, "
    "attempt, retry_count, worker_id, created_at, started_at, completed_at, run_timeout_seconds, "
    "state"
)
FENCE_COLUMNS = (
    "id, project_id, workflow_id, status, attempt, worker_id, queue_name, concurrency_key, "
    "parent_execution_id, parent_step_key, notify_parent, retry_count, root_execution_id, "
    "root_workflow_id, deployment_id, session_id, user_id"
)
# FENCE_COLUMNS and whether the execution's queue has a limit (FROM executions).
FENCE_COLUMNS_WITH_LIMIT = (
    FENCE_COLUMNS + ", (SELECT q.concurrency_limit IS NOT NULL FROM queues q "
    "WHERE q.project_id = executions.project_id AND q.name = executions.queue_name)"
)
CLAIM_RETURNING = (
    "id, attempt, workflow_id, payload, queue_name, concurrency_key, deployment_id, "
    "parent_execution_id, root_execution_id, root_workflow_id, parent_step_key, retry_count, "
    "created_at, session_id, user_id, initial_state, run_timeout_seconds, "
    "project_id"
)
FINAL = ("completed", "failed", "cancelled")


def chunks(items: Sequence[T]) -> Iterator[Sequence[T]]:
    for i in range(0, len(items), CHUNK):
        yield items[i : i + CHUNK]


def marks(n: int) -> str:
    return ",".join("?" * n)


async def rows_in(
    rows: Callable[..., Awaitable[list[Row]]], sql: str, ids: Sequence[str]
) -> list[Row]:
    """`sql` (with `{marks}` where the IN list goes) run over `ids` in chunks, with `?`
    placeholders, by `rows` (a store's `_rows`)."""
    out: list[Row] = []
    for part in chunks(ids):
        out += await rows(sql.format(marks=marks(len(part))), *part)
    return out


def error_info(type_: str | None, message: str | None) -> ErrorInfo | None:
    if type_ is None and message is None:
        return None
    return ErrorInfo(type=type_ or "Error", message=message or "")


def execution_row(r: Row) -> ExecutionRow:
    return ExecutionRow(
        id=r[0],
        project_id=r[1],
        workflow_id=r[2],
        status=ExecutionStatus(r[3]),
        queue_name=r[4],
        concurrency_key=r[5],
        payload_json=r[6],
        result_json=r[7],
        error=error_info(r[8], r[9]),
        output_schema=r[10],
        parent_execution_id=r[11],
        root_execution_id=r[12],
        root_workflow_id=r[13],
        parent_step_key=r[14],
        batch_index=r[15],
        deployment_id=r[16],
        session_id=r[17],
        user_id=r[18],
        attempt=r[19],
        retry_count=r[20],
        worker_id=r[21],
        created_at=r[22],
        started_at=r[23],
        completed_at=r[24],
        run_timeout_seconds=r[25],
        state_json=r[26],
    )


def fence_row(r: Row, with_limit: bool = False) -> FenceRow:
    """A row of FENCE_COLUMNS, or of FENCE_COLUMNS_WITH_LIMIT with `with_limit`."""
    return FenceRow(
        id=r[0],
        project_id=r[1],
        workflow_id=r[2],
        status=ExecutionStatus(r[3]),
        attempt=r[4],
        worker_id=r[5],
        queue_name=r[6],
        concurrency_key=r[7],
        parent_execution_id=r[8],
        parent_step_key=r[9],
        notify_parent=bool(r[10]),
        retry_count=r[11],
        root_execution_id=r[12],
        root_workflow_id=r[13],
        deployment_id=r[14],
        session_id=r[15],
        user_id=r[16],
        queue_limited=with_limit and bool(r[17]),
    )
