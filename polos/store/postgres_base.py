"""What the mixins of `PgTx` share (polos/store/postgres_tx.py): the connection type they run
their SQL on and the decoding of a journal row.

Its own module so that postgres_registry.py, postgres_executions.py and postgres_steps.py need
not import postgres_tx.py, which imports them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, TypeAlias

import asyncpg

from polos.model import StepKind, StepRecord, StepStatus
from polos.store.rows import Row, error_info

if TYPE_CHECKING:
    # A connection of the pool (a proxy) or a plain one (generic in the stubs only).
    PgConnection: TypeAlias = asyncpg.Connection[Any] | asyncpg.pool.PoolConnectionProxy[Any]


def _step(r: Row) -> StepRecord:
    return StepRecord(
        step_key=r[0],
        kind=StepKind(r[1]),
        status=StepStatus(r[2]),
        position=r[3],
        result_json=r[4],
        error=error_info(r[5], r[6]),
        output_schema=r[7],
    )
