"""The SQL of the PostgreSQL store: `PgTx`, the operations units of work call (store/base.py).

Concurrency between replicas is PostgreSQL's row locks (docs/decisions.md): claims take
candidates with `FOR UPDATE SKIP LOCKED` after locking a limited queue's row; reports lock their
executions in ID order; a finishing child locks its parent before touching its counter; lease
expiry skips rows another replica holds. Locks are taken in a fixed order (executions by ID,
usage rows by key) to keep deadlocks rare; the store retries a unit that hits one.

This module keeps `PgTx` itself: its wake-ups (collected during the transaction, sent with
`pg_notify` at its end) and the primitives of the shared operations (store/model_ops.py). The
rest of its SQL lives in mixins, one module per concern, as on the SQLite side:

- polos/store/postgres_registry.py: projects, workflows, queues and their usage, API keys,
  workers and their leases;
- polos/store/postgres_executions.py: executions (insert, read, claim, finish, re-queue,
  suspend, expired leases);
- polos/store/postgres_steps.py: journals and waiting steps;
- polos/store/postgres_base.py: what they share (`PgConnection`, the journal row decoder).
"""

from __future__ import annotations

import json
import uuid
from collections import Counter
from collections.abc import Callable, Collection, Sequence
from typing import TYPE_CHECKING, Any

from polos.model import EventRecord, EventTrigger, EventWait, NewEvent
from polos.store.base import StoreTx, UsageKey, Wakeups
from polos.store.event_ops import event_record
from polos.store.postgres_executions import COUNTS_CTE_LIST, PgExecutionOps, count_arrays
from polos.store.postgres_registry import PgRegistryOps
from polos.store.postgres_steps import PgStepOps
from polos.store.rows import Row

if TYPE_CHECKING:
    # Re-exported: polos/store/postgres.py imports the connection type from here.
    from polos.store.postgres_base import PgConnection as PgConnection

NOTIFY_CHANNEL = "polos"
# A NOTIFY payload must stay under 8000 bytes.
_PAYLOAD_BUDGET = 7000


def _numbered(sql: str) -> str:
    """`?` placeholders (the shared operations' style) to PostgreSQL's `$n`."""
    cached = _NUMBERED.get(sql)
    if cached is None:
        parts = sql.split("?")
        cached = parts[0] + "".join(f"${i}{part}" for i, part in enumerate(parts[1:], 1))
        _NUMBERED[sql] = cached
    return cached


_NUMBERED: dict[str, str] = {}


class PgTx(PgRegistryOps, PgExecutionOps, PgStepOps, StoreTx):
    def __init__(self, conn: PgConnection, wakeups: Wakeups, sender: str) -> None:
        self._c = conn
        self._wakeups = wakeups
        self._sender = sender
        self.callbacks: list[Callable[[], None]] = []
        self._work: set[str] = set()
        self._work_at: list[tuple[str, float]] = []
        self._final: set[str] = set()
        self._topics: set[tuple[str, str]] = set()
        self._usage: Counter[UsageKey] = Counter()

    # -- wake-ups ----------------------------------------------------------------------

    def on_commit(self, callback: Callable[[], None]) -> None:
        self.callbacks.append(callback)

    def notify_work(self, project_id: str) -> None:
        self._work.add(project_id)

    def notify_work_at(self, project_id: str, when: float) -> None:
        self._work_at.append((project_id, when))

    def notify_final(self, execution_id: str) -> None:
        self._final.add(execution_id)

    def notify_timer(self, fire_at: float) -> None:
        self.callbacks.append(lambda: self._wakeups.timer_added(fire_at))

    def notify_topic(self, project_id: str, topic: str) -> None:
        self._topics.add((project_id, topic))

    async def lock_topic(self, project_id: str, topic: str) -> None:
        await self._c.execute(
            "SELECT pg_advisory_xact_lock(hashtextextended($1, 7))",
            # Two topics that hash alike only share a lock.
            f"{project_id}/{topic}",
        )

    async def publish_events(
        self, project_id: str, topics: Sequence[str], events: Sequence[NewEvent], now: float
    ) -> list[EventRecord]:
        # One round trip instead of one per topic lock and one per event. The uncorrelated
        # count over `locks` is an InitPlan, evaluated before the first row is inserted: the
        # topics are locked, in the given order, before any event takes its sequence number.
        if not events:
            for topic in topics:
                await self.lock_topic(project_id, topic)
            return []
        ids = [str(uuid.uuid4()) for _ in events]
        rows = await self._c.fetch(
            "WITH locks AS MATERIALIZED (SELECT pg_advisory_xact_lock(hashtextextended(k, 7)) "
            "FROM unnest($1::text[]) WITH ORDINALITY AS l(k, o) ORDER BY o) "
            "INSERT INTO events (id, project_id, topic, event_type, data, execution_id, "
            "root_execution_id, created_at) "
            "SELECT e.id, e.project_id, e.topic, e.event_type, e.data, e.execution_id, "
            "e.root_execution_id, $9 FROM unnest($2::text[], $3::text[], $4::text[], "
            "$5::text[], $6::text[], $7::text[], $8::text[]) WITH ORDINALITY "
            "AS e(id, project_id, topic, event_type, data, execution_id, root_execution_id, o) "
            "WHERE (SELECT count(*) FROM locks) >= 0 ORDER BY e.o RETURNING id, seq",
            [f"{project_id}/{topic}" for topic in topics],
            ids,
            [e.project_id for e in events],
            [e.topic for e in events],
            [e.event_type for e in events],
            [e.data_json for e in events],
            [e.execution_id for e in events],
            [e.root_execution_id for e in events],
            now,
        )
        seqs = {r[0]: int(r[1]) for r in rows}
        return [
            event_record(seqs[event_id], event_id, e, now)
            for event_id, e in zip(ids, events, strict=True)
        ]

    async def topic_listeners(
        self, project_id: str, topic: str
    ) -> tuple[list[EventWait], list[EventTrigger]]:
        # The two queries of EventOps (same filters, same orders, the triggers locked) as one.
        rows = await self._c.fetch(
            "WITH t AS (SELECT workflow_id, batch_size, batch_timeout_seconds, cursor_seq, "
            "queue_name FROM event_triggers WHERE project_id = $1 AND topic = $2 "
            "ORDER BY workflow_id FOR UPDATE), "
            "w AS (SELECT s.execution_id, s.step_key, s.wait_event_type, "
            "COALESCE(s.wait_after_seq, e.event_cursor) AS after_seq, e.created_at "
            "FROM steps s JOIN executions e ON e.id = s.execution_id "
            "WHERE s.status = 'pending' AND s.wait_topic = $2 AND e.project_id = $1 "
            "AND e.status = 'waiting') "
            "SELECT 0 AS kind, execution_id, step_key, wait_event_type, after_seq, "
            "NULL::int, NULL::float8, created_at AS k1, NULL::text AS k2 FROM w "
            "UNION ALL SELECT 1, workflow_id, queue_name, NULL, cursor_seq, batch_size, "
            "batch_timeout_seconds, 0, workflow_id FROM t ORDER BY kind, k1, k2",
            project_id,
            topic,
        )
        waits = [EventWait(r[1], r[2], r[3], int(r[4])) for r in rows if r[0] == 0]
        triggers = [
            EventTrigger(project_id, r[1], topic, r[5], r[6], int(r[4]), r[2])
            for r in rows
            if r[0] == 1
        ]
        return waits, triggers

    async def close_unit(self) -> None:
        """The last statement of a unit: its status counters, its queues' usage and its
        notifications in one round trip (three on a single call's claim and completion
        otherwise). The NOTIFYs are delivered at commit."""
        counts = self.take_counts()
        usage = sorted((k, d) for k, d in self._usage.items() if d)
        self._usage.clear()
        statement = tail_statement(
            count_arrays(counts) if counts is not None else None,
            usage,
            notification_payloads(
                self._sender, self._work, self._work_at, self._final, self._topics
            ),
        )
        if statement is not None:
            await self._c.execute(statement[0], *statement[1])

    def tail_is_empty(self) -> bool:
        """Whether `close_unit` would write nothing: no counters, no usage, no
        notifications."""
        return (
            self._counts is None
            and not any(self._usage.values())
            and not notification_payloads(
                self._sender, self._work, self._work_at, self._final, self._topics
            )
        )

    def after_commit(self) -> list[Callable[[], None]]:
        """This replica's own wake-ups (its listener ignores its own notifications)."""
        w = self._wakeups
        calls: list[Callable[[], None]] = [
            *(lambda p=p: w.work_available(p) for p in self._work),
            *(lambda p=p, t=t: w.work_available_at(p, t) for p, t in self._work_at),
            *(lambda e=e: w.execution_final(e) for e in self._final),
            *(lambda p=p, t=t: w.topic_published(p, t) for p, t in self._topics),
        ]
        return [*calls, *self.callbacks]

    # -- primitives of the shared operations (store/model_ops.py) ---------------------------

    LOCK = " FOR UPDATE"
    LOCK_SKIP = " FOR UPDATE SKIP LOCKED"
    INSERTION_ORDER = "seq"

    async def _rows(self, sql: str, *params: Any) -> list[Row]:
        return list(await self._c.fetch(_numbered(sql), *params))

    async def _one(self, sql: str, *params: Any) -> Row | None:
        row: Row | None = await self._c.fetchrow(_numbered(sql), *params)
        return row

    async def _exec(self, sql: str, *params: Any) -> int:
        status = await self._c.execute(_numbered(sql), *params)
        try:
            return int(status.rsplit(" ", 1)[-1])
        except ValueError:
            return 0

    async def _many(self, sql: str, rows: list[tuple[Any, ...]]) -> None:
        await self._c.executemany(_numbered(sql), rows)


# A unit's changes of queue usage, written by its last statement: increments as upserts (the
# rows are sorted, so locks are taken in key order), decrements as updates of rows locked in
# key order first (a decrement never creates a row: a missing one reads as 0). Arrays
# $n+1..$n+8: the increments' projects, queues, keys, deltas, then the decrements'.
_USAGE_CTES = (
    "usage_up AS (INSERT INTO queue_usage (project_id, queue_name, concurrency_key, running) "
    "SELECT * FROM unnest(${0}::text[], ${1}::text[], ${2}::text[], ${3}::int[]) "
    "ON CONFLICT (project_id, queue_name, concurrency_key) "
    "DO UPDATE SET running = GREATEST(queue_usage.running + excluded.running, 0)), "
    "usage_locked AS MATERIALIZED (SELECT u.project_id, u.queue_name, u.concurrency_key, d.n "
    "FROM queue_usage u JOIN unnest(${4}::text[], ${5}::text[], ${6}::text[], ${7}::int[]) "
    "AS d(p, q, k, n) ON u.project_id = d.p AND u.queue_name = d.q AND u.concurrency_key = d.k "
    "ORDER BY u.project_id, u.queue_name, u.concurrency_key FOR UPDATE OF u), "
    "usage_down AS (UPDATE queue_usage u SET running = GREATEST(u.running + l.n, 0) "
    "FROM usage_locked l WHERE u.project_id = l.project_id AND u.queue_name = l.queue_name "
    "AND u.concurrency_key = l.concurrency_key)"
)


def tail_statement(
    count_params: list[list[Any]] | None,
    usage: Sequence[tuple[UsageKey, int]],
    payloads: Sequence[str],
) -> tuple[str, list[Any]] | None:
    """The last statement of a unit and its parameters (None: nothing to write): the status
    counters (`count_arrays`), the usage deltas (sorted by key) and the NOTIFY payloads, as
    data-modifying CTEs around the NOTIFYs' `SELECT`."""
    ctes: list[str] = []
    params: list[Any] = []
    if count_params is not None:
        ctes.append(COUNTS_CTE_LIST)
        params.extend(count_params)
    if usage:
        up = [(k, d) for k, d in usage if d > 0]
        down = [(k, d) for k, d in usage if d < 0]
        ctes.append(_USAGE_CTES.format(*range(len(params) + 1, len(params) + 9)))
        for part in (up, down):
            params.extend(
                [[k[0] for k, _ in part], [k[1] for k, _ in part], [k[2] for k, _ in part]]
            )
            params.append([d for _, d in part])
    if payloads:
        n = len(params)
        query = f"SELECT count(pg_notify(${n + 1}, p)) FROM unnest(${n + 2}::text[]) AS p"
        params.extend([NOTIFY_CHANNEL, list(payloads)])
    elif ctes:
        query = "SELECT 1"
    else:
        return None
    return ("WITH " + ", ".join(ctes) + " " if ctes else "") + query, params


def notification_payloads(
    sender: str,
    work: Collection[str],
    work_at: Sequence[tuple[str, float]],
    final: Collection[str],
    topics: Collection[tuple[str, str]] = (),
) -> list[str]:
    """JSON payloads under PostgreSQL's size limit: {"s": sender, "w": [...], "a": [...],
    "f": [...]}."""
    payloads: list[str] = []
    current: dict[str, Any] = {"s": sender}
    size = 40 + len(sender)

    def add(key: str, value: Any) -> None:
        nonlocal current, size
        cost = len(json.dumps(value)) + 2
        if size + cost > _PAYLOAD_BUDGET and len(current) > 1:
            payloads.append(json.dumps(current))
            current, size = {"s": sender}, 40 + len(sender)
        current.setdefault(key, []).append(value)
        size += cost

    for p in sorted(work):
        add("w", p)
    for p, t in work_at:
        add("a", [p, t])
    for e in sorted(final):
        add("f", e)
    for project_id, topic in sorted(topics):
        add("t", [project_id, topic])
    if len(current) > 1:
        payloads.append(json.dumps(current))
    return payloads
