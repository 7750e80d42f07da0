"""What the journal's table layout costs on SQLite: WITHOUT ROWID (migrations up to 0007)
against an ordinary rowid table (0008), side by side in one process.

Two databases, one per layout, with the server's pragmas except `synchronous=OFF` (this
measures the statements, not the fsync). For --parents parents of --children children each
(IDs as the engine makes them, `protocol.child_execution_id`), per chunk of 500 children as a
worker's claim and reports bring them: the claim's journal lookup (the children have none
yet), then the two step rows of each child in two transactions (the benchmark's
`count_words` and `score_review`). The layouts take turns chunk by chunk, the order swapped
every chunk, so the machine's drift falls on both; prints the median microseconds per child.

    .venv/bin/python bench/journal_layout.py --parents 20
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import statistics
import tempfile
import time
import uuid
from pathlib import Path

from polos import protocol
from polos.store.base import migrations
from polos.store.sqlite import _statements

CHUNK = 500
INSERT = (
    "INSERT INTO steps (execution_id, step_key, position, kind, status, result, error_type, "
    "error_message, output_schema, created_at, completed_at, duration_seconds) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING"
)
REVIEW = json.dumps(
    {
        "reviewer_id": "reviewer-00001",
        "approved": True,
        "score": 8,
        "comments": "reviewer-00001 reviewed doc-1: 126 words, looks good",
    }
)


def open_db(path: Path, versions: int) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = OFF")
    conn.execute("PRAGMA cache_size = -65536")
    for m in migrations("sqlite")[:versions]:
        for statement in _statements(m.sql):
            conn.execute(statement)
    return conn


def chunk(conn: sqlite3.Connection, ids: list[str]) -> tuple[float, float]:
    """Seconds for the claim's journal lookup and for the two reports' inserts."""
    t0 = time.perf_counter()
    conn.execute("BEGIN")
    marks = ",".join("?" * len(ids))
    conn.execute(
        "SELECT execution_id, step_key, kind, status, position, result, error_type, "
        f"error_message, output_schema FROM steps WHERE execution_id IN ({marks}) "
        "ORDER BY execution_id, position",
        ids,
    ).fetchall()
    conn.execute("COMMIT")
    t1 = time.perf_counter()
    for key, position, result in (("count", 0, "126"), ("score", 1, REVIEW)):
        conn.execute("BEGIN")
        conn.executemany(
            INSERT,
            [
                (i, key, position, "run", "completed", result, None, None, None, 1.0, 1.0, 0.001)
                for i in ids
            ],
        )
        conn.execute("COMMIT")
    return t1 - t0, time.perf_counter() - t1


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--parents", type=int, default=20)
    p.add_argument("--children", type=int, default=10_000)
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        layouts = {
            "without rowid (0007)": open_db(Path(tmp) / "a.db", 7),
            "rowid table (0008)": open_db(Path(tmp) / "b.db", 8),
        }
        lookups: dict[str, list[float]] = {name: [] for name in layouts}
        inserts: dict[str, list[float]] = {name: [] for name in layouts}
        turn = 0
        for _ in range(args.parents):
            parent = str(uuid.uuid4())
            for start in range(0, args.children, CHUNK):
                ids = [
                    protocol.child_execution_id(parent, "reviews", i)
                    for i in range(start, min(start + CHUNK, args.children))
                ]
                names = list(layouts) if turn % 2 == 0 else list(reversed(layouts))
                turn += 1
                for name in names:
                    lookup, insert = chunk(layouts[name], ids)
                    lookups[name].append(lookup / len(ids))
                    inserts[name].append(insert / len(ids))
        for name in layouts:
            print(
                f"{name:22} journal lookup {1e6 * statistics.median(lookups[name]):6.2f} µs/child"
                f"   two step rows {1e6 * statistics.median(inserts[name]):6.2f} µs/child"
            )


if __name__ == "__main__":
    main()
