-- The journal (`steps`) becomes an ordinary rowid table; it was WITHOUT ROWID.
--
-- A WITHOUT ROWID table is an index B-tree: whole rows, results included, sit in its interior
-- pages as dividers, and when SQLite compares a search key with a divider whose row spills
-- onto overflow pages it reads the whole row first. A parent's batch step holds the results
-- of all its children (8 MB for 30,000 of them); once such a row became the divider above the
-- key range of a later parent's children, every lookup of those children's journal (each
-- claim, each step record) copied those 8 MB: fan-outs of 30,000 children ran at 330-380
-- children/s instead of ~3,000, at random, for as long as that database lived
-- (docs/performance.md, "The journal in an index B-tree"). In a rowid table the rows live in
-- the table's B-tree, whose interior pages hold only rowids; the primary key becomes an index
-- of (execution_id, step_key) alone.
--
-- Rebuilt the way SQLite documents for changes ALTER TABLE cannot make: the old table moved
-- aside, the new one created under the name with the same columns in the same order, the
-- rows copied, the old table (and its index with it) dropped, the index created again.

ALTER TABLE steps RENAME TO steps_without_rowid;

CREATE TABLE steps (
    execution_id TEXT NOT NULL,
    step_key TEXT NOT NULL,
    position INTEGER NOT NULL,
    kind TEXT NOT NULL,
    status TEXT NOT NULL,
    result TEXT,
    error_type TEXT,
    error_message TEXT,
    output_schema TEXT,
    pending INTEGER NOT NULL DEFAULT 0,
    created_at REAL NOT NULL,
    completed_at REAL,
    wait_topic TEXT,
    wait_event_type TEXT,
    wait_after_seq INTEGER,
    fail_fast INTEGER NOT NULL DEFAULT 0,
    min_success INTEGER,
    duration_seconds REAL,
    PRIMARY KEY (execution_id, step_key)
);

INSERT INTO steps (
    execution_id, step_key, position, kind, status, result, error_type, error_message,
    output_schema, pending, created_at, completed_at, wait_topic, wait_event_type,
    wait_after_seq, fail_fast, min_success, duration_seconds
)
SELECT
    execution_id, step_key, position, kind, status, result, error_type, error_message,
    output_schema, pending, created_at, completed_at, wait_topic, wait_event_type,
    wait_after_seq, fail_fast, min_success, duration_seconds
FROM steps_without_rowid
ORDER BY execution_id, step_key;

DROP TABLE steps_without_rowid;

CREATE INDEX steps_event_waits ON steps (wait_topic) WHERE status = 'pending' AND wait_topic IS NOT NULL;
