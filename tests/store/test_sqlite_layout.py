"""Where SQLite keeps large values: never in the interior pages of a B-tree.

An index B-tree (every index, and every WITHOUT ROWID table) keeps whole entries in its interior
pages as dividers, and SQLite reads a divider's whole entry, overflow pages included, to compare
a search key with it. The journal used to be such a table: a parent's batch step holding 8 MB
of its children's results became the divider above a later parent's children, and every lookup
of their journals copied the 8 MB (a 30,000-child fan-out ran ten times slower, at random;
docs/performance.md). These tests read the pages themselves through SQLite's `dbstat`."""

from __future__ import annotations

import json
import sqlite3
from contextlib import closing
from pathlib import Path

from polos.model import StepKind, StepRecord, StepStatus
from polos.store.base import StoreTx, migrations
from polos.store.sqlite import SqliteStore, _statements

# Large enough to spill onto overflow pages many times over (4 KiB pages).
_BIG_RESULT = json.dumps(["a child's result " * 8] * 2000)


def _record(key: str, result_json: str) -> StepRecord:
    return StepRecord(
        step_key=key, kind=StepKind.RUN, status=StepStatus.COMPLETED, result_json=result_json
    )


async def _journal_with_a_big_result(store: SqliteStore) -> None:
    """3,000 journals of two small steps, and one execution among them with a big result: the
    journal's B-tree gets interior pages."""
    rows: list[tuple[str, StepRecord]] = []
    for i in range(3000):
        rows.append((f"exec-{i:05d}", _record("count", str(i))))
        rows.append((f"exec-{i:05d}", _record("score", json.dumps({"score": i}))))
    rows.append(("exec-01500-big", _record("reviews", _BIG_RESULT)))

    async def work(tx: StoreTx) -> None:
        await tx.insert_step_rows(rows, 1.0)

    await store.run(work)


def _pages(store: SqliteStore, name: str) -> dict[str, tuple[int, int]]:
    """Pages of one B-tree by type ('internal', 'leaf', 'overflow'): (count, payload bytes)."""
    with closing(sqlite3.connect(store.path)) as conn:
        rows = conn.execute(
            "SELECT pagetype, COUNT(*), SUM(payload) FROM dbstat WHERE name = ? GROUP BY pagetype",
            (name,),
        ).fetchall()
    return {str(kind): (int(count), int(payload or 0)) for kind, count, payload in rows}


async def test_a_large_step_result_is_never_a_divider_of_the_journal(
    sqlite_store: SqliteStore,
) -> None:
    await _journal_with_a_big_result(sqlite_store)
    pages = _pages(sqlite_store, "steps")
    assert pages.get("internal", (0, 0))[0] > 0, pages  # the tree has interior pages
    assert pages.get("overflow", (0, 0))[0] > 50, pages  # and the big result spilled
    # A rowid table's interior pages hold rowids and child pointers only: no row, so no
    # search ever reads a result on its way down. (WITHOUT ROWID: thousands of bytes here.)
    assert pages["internal"][1] == 0, pages

    async def read(tx: StoreTx) -> dict[str, list[StepRecord]]:
        return await tx.load_journals(["exec-01499", "exec-01500-big", "exec-01501"])

    journals = await sqlite_store.read(read)
    assert journals["exec-01500-big"][0].result_json == _BIG_RESULT
    assert [s.step_key for s in journals["exec-01499"]] == ["count", "score"]
    assert [s.step_key for s in journals["exec-01501"]] == ["count", "score"]


async def test_without_rowid_tables_hold_only_keys_and_numbers(
    sqlite_store: SqliteStore,
) -> None:
    """The rule for any table to come: WITHOUT ROWID only for small rows, whose columns outside
    the primary key are numbers (counters); text of unbounded size belongs in a rowid table."""
    with closing(sqlite3.connect(sqlite_store.path)) as conn:
        tables = [
            str(name)
            for name, sql in conn.execute(
                "SELECT name, sql FROM sqlite_master WHERE type = 'table'"
            ).fetchall()
            if "WITHOUT ROWID" in str(sql).upper()
        ]
        assert tables, "expected the status counters to be WITHOUT ROWID tables"
        for table in tables:
            for _, column, declared_type, _, _, pk in conn.execute(
                f"PRAGMA table_info({table})"
            ).fetchall():
                if not pk:
                    assert str(declared_type).upper() in ("INTEGER", "REAL"), (table, column)


def test_the_migration_keeps_every_journal_row_and_the_event_waits_index(tmp_path: Path) -> None:
    """A database of migration 0007 with journals in it (a big result, a pending event wait,
    a batch policy) comes out of 0008 with the same rows and the same columns in the same
    order, as a rowid table, its index of pending event waits in use again."""
    conn = sqlite3.connect(tmp_path / "old.db", isolation_level=None)
    steps = migrations("sqlite")
    assert steps[7].name == "steps_rowid"
    for m in steps[:7]:
        for statement in _statements(m.sql):
            conn.execute(statement)
    columns_before = [r[1] for r in conn.execute("PRAGMA table_info(steps)")]
    conn.executemany(
        "INSERT INTO steps (execution_id, step_key, position, kind, status, result, pending, "
        "created_at, completed_at, wait_topic, wait_event_type, wait_after_seq, fail_fast, "
        "min_success, duration_seconds) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            (
                "e1",
                "count",
                0,
                "run",
                "completed",
                "126",
                0,
                1.0,
                1.5,
                None,
                None,
                None,
                0,
                None,
                0.25,
            ),
            (
                "e1",
                "reviews",
                1,
                "invoke_and_wait",
                "pending",
                None,
                3,
                2.0,
                None,
                None,
                None,
                None,
                1,
                2,
                None,
            ),
            (
                "e2",
                "approval",
                0,
                "wait_for_event",
                "pending",
                None,
                0,
                3.0,
                None,
                "topic-a",
                "approved",
                7,
                0,
                None,
                None,
            ),
            (
                "e3",
                "big",
                0,
                "run",
                "completed",
                _BIG_RESULT,
                0,
                4.0,
                4.0,
                None,
                None,
                None,
                0,
                None,
                None,
            ),
        ],
    )
    before = sorted(conn.execute("SELECT * FROM steps"))
    for statement in _statements(steps[7].sql):
        conn.execute(statement)
    assert [r[1] for r in conn.execute("PRAGMA table_info(steps)")] == columns_before
    assert sorted(conn.execute("SELECT * FROM steps")) == before
    (sql,) = conn.execute("SELECT sql FROM sqlite_master WHERE name = 'steps'").fetchone()
    assert "WITHOUT ROWID" not in sql.upper()
    plan = " ".join(
        str(r[3])
        for r in conn.execute(
            "EXPLAIN QUERY PLAN SELECT execution_id FROM steps "
            "WHERE wait_topic = 'topic-a' AND status = 'pending' AND wait_topic IS NOT NULL"
        )
    )
    assert "steps_event_waits" in plan, plan
    with_key = conn.execute(
        "INSERT INTO steps (execution_id, step_key, position, kind, status, created_at) "
        "VALUES ('e1', 'count', 9, 'run', 'completed', 9.0) ON CONFLICT DO NOTHING"
    )
    assert with_key.rowcount == 0  # the primary key still refuses a second (execution, key)
    conn.close()
