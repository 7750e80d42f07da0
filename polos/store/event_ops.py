"""Store operations of events (publishing, reading topics, event waits and their cursors) and
of event triggers, written once for both databases.

Split from ModelOps (store/model_ops.py) along the topic seam: everything here reads or writes
the events and event_triggers tables or a step's wait on a topic. Like ModelOps, it uses the
primitives each dialect provides (`_rows`, `_one`, `_exec`, `_many`, with `?` placeholders) and
the `LOCK` clause (`FOR UPDATE`, empty on SQLite, whose write transaction is alone).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from polos.model import EventRecord, EventTrigger, EventWait, NewEvent
from polos.store.rows import Row

_EVENT_COLUMNS = (
    "seq, id, project_id, topic, event_type, data, execution_id, root_execution_id, created_at"
)
_TRIGGER_COLUMNS = (
    "project_id, workflow_id, topic, batch_size, batch_timeout_seconds, cursor_seq, queue_name"
)


def _event(r: Row) -> EventRecord:
    return EventRecord(r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8])


def event_record(seq: int, event_id: str, e: NewEvent, now: float) -> EventRecord:
    """What `e` became once inserted with `seq` and `event_id`."""
    return EventRecord(
        seq,
        event_id,
        e.project_id,
        e.topic,
        e.event_type,
        e.data_json,
        e.execution_id,
        e.root_execution_id,
        now,
    )


def _trigger(r: Row) -> EventTrigger:
    return EventTrigger(r[0], r[1], r[2], r[3], r[4], r[5], r[6])


class EventOps:
    LOCK: str

    async def _rows(self, sql: str, *params: Any) -> list[Row]:
        raise NotImplementedError

    async def _one(self, sql: str, *params: Any) -> Row | None:
        raise NotImplementedError

    async def _exec(self, sql: str, *params: Any) -> int:
        raise NotImplementedError

    async def _many(self, sql: str, rows: list[tuple[Any, ...]]) -> None:
        raise NotImplementedError

    async def lock_topic(self, project_id: str, topic: str) -> None:
        """Serialize publishes and wait registrations on one topic (PostgreSQL overrides)."""

    async def publish_events(
        self, project_id: str, topics: Sequence[str], events: Sequence[NewEvent], now: float
    ) -> list[EventRecord]:
        """Lock `topics` (in that order) and insert `events`, in order. PostgreSQL does both
        in one statement (a publish is on every single execution's path, twice)."""
        for topic in topics:
            await self.lock_topic(project_id, topic)
        return await self.insert_events(events, now)

    async def topic_listeners(
        self, project_id: str, topic: str
    ) -> tuple[list[EventWait], list[EventTrigger]]:
        """`event_waits` and `triggers_for_topic` of one topic (PostgreSQL: one round trip)."""
        return (
            await self.event_waits(project_id, topic),
            await self.triggers_for_topic(project_id, topic),
        )

    # -- events --------------------------------------------------------------------------

    async def max_event_seq(self) -> int:
        row = await self._one("SELECT COALESCE(MAX(seq), 0) FROM events")
        return int(row[0]) if row is not None else 0

    async def insert_events(self, events: Sequence[NewEvent], now: float) -> list[EventRecord]:
        out: list[EventRecord] = []
        for e in events:
            event_id = str(uuid.uuid4())
            row = await self._one(
                "INSERT INTO events (id, project_id, topic, event_type, data, execution_id, "
                "root_execution_id, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING seq",
                event_id,
                e.project_id,
                e.topic,
                e.event_type,
                e.data_json,
                e.execution_id,
                e.root_execution_id,
                now,
            )
            assert row is not None
            out.append(event_record(int(row[0]), event_id, e, now))
        return out

    async def events_after(
        self,
        project_id: str,
        topic: str,
        after_seq: int,
        limit: int,
        event_type: str | None,
    ) -> list[EventRecord]:
        if event_type is None:
            rows = await self._rows(
                f"SELECT {_EVENT_COLUMNS} FROM events WHERE project_id = ? AND topic = ? "
                "AND seq > ? ORDER BY seq LIMIT ?",
                project_id,
                topic,
                after_seq,
                limit,
            )
        else:
            rows = await self._rows(
                f"SELECT {_EVENT_COLUMNS} FROM events WHERE project_id = ? AND topic = ? "
                "AND seq > ? AND event_type = ? ORDER BY seq LIMIT ?",
                project_id,
                topic,
                after_seq,
                event_type,
                limit,
            )
        return [_event(r) for r in rows]

    async def last_seq_before(self, project_id: str, topic: str, moment: float) -> int:
        row = await self._one(
            "SELECT COALESCE(MAX(seq), 0) FROM events WHERE project_id = ? AND topic = ? "
            "AND created_at <= ?",
            project_id,
            topic,
            moment,
        )
        return int(row[0]) if row is not None else 0

    async def event_waits(self, project_id: str, topic: str) -> list[EventWait]:
        """Pending waits on `topic` of executions that are waiting, with their cursors.

        The topic's pending waits (steps_event_waits) drive the join: CROSS JOIN fixes that order
        on SQLite, whose planner has no statistics and otherwise walked every waiting execution
        of the project (executions_status) on each event published, a submission's and a
        completion's included. PostgreSQL plans a CROSS JOIN with a WHERE as an inner join."""
        rows = await self._rows(
            "SELECT s.execution_id, s.step_key, s.wait_event_type, "
            "COALESCE(s.wait_after_seq, e.event_cursor) FROM steps s CROSS JOIN executions e "
            "WHERE e.id = s.execution_id AND s.status = 'pending' AND s.wait_topic = ? "
            "AND e.project_id = ? AND e.status = 'waiting' ORDER BY e.created_at",
            topic,
            project_id,
        )
        return [EventWait(r[0], r[1], r[2], int(r[3])) for r in rows]

    async def event_cursor_of(self, execution_id: str) -> int:
        row = await self._one("SELECT event_cursor FROM executions WHERE id = ?", execution_id)
        return int(row[0]) if row is not None else 0

    async def set_event_wait(
        self,
        execution_id: str,
        step_key: str,
        topic: str,
        event_type: str | None,
        after_seq: int | None,
    ) -> None:
        await self._exec(
            "UPDATE steps SET wait_topic = ?, wait_event_type = ?, wait_after_seq = ? "
            "WHERE execution_id = ? AND step_key = ? AND status = 'pending'",
            topic,
            event_type,
            after_seq,
            execution_id,
            step_key,
        )

    async def set_event_cursor(self, execution_ids: Sequence[str], seq: int) -> None:
        await self._many(
            "UPDATE executions SET event_cursor = ? WHERE id = ?",
            [(seq, i) for i in execution_ids],
        )

    # -- event triggers ------------------------------------------------------------------

    async def upsert_trigger(self, trigger: EventTrigger, now: float) -> None:
        """Register a trigger; a new one starts at the current end of the topic (it does not
        consume the topic's history)."""
        await self._exec(
            f"INSERT INTO event_triggers ({_TRIGGER_COLUMNS}, updated_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (project_id, workflow_id, topic) "
            "DO UPDATE SET batch_size = excluded.batch_size, "
            "batch_timeout_seconds = excluded.batch_timeout_seconds, "
            "queue_name = excluded.queue_name, updated_at = excluded.updated_at",
            trigger.project_id,
            trigger.workflow_id,
            trigger.topic,
            trigger.batch_size,
            trigger.batch_timeout_seconds,
            trigger.cursor_seq,
            trigger.queue_name,
            now,
        )

    async def triggers_for_topic(self, project_id: str, topic: str) -> list[EventTrigger]:
        rows = await self._rows(
            f"SELECT {_TRIGGER_COLUMNS} FROM event_triggers WHERE project_id = ? AND topic = ? "
            f"ORDER BY workflow_id{self.LOCK}",
            project_id,
            topic,
        )
        return [_trigger(r) for r in rows]

    async def get_trigger(
        self, project_id: str, workflow_id: str, topic: str
    ) -> EventTrigger | None:
        row = await self._one(
            f"SELECT {_TRIGGER_COLUMNS} FROM event_triggers WHERE project_id = ? "
            f"AND workflow_id = ? AND topic = ?{self.LOCK}",
            project_id,
            workflow_id,
            topic,
        )
        return None if row is None else _trigger(row)

    async def advance_trigger(
        self, project_id: str, workflow_id: str, topic: str, cursor_seq: int
    ) -> None:
        await self._exec(
            "UPDATE event_triggers SET cursor_seq = ? WHERE project_id = ? AND workflow_id = ? "
            "AND topic = ?",
            cursor_seq,
            project_id,
            workflow_id,
            topic,
        )
