-- What the CLI and the dashboard read (GET /api/v1/executions with filters, .../progress,
-- .../tree, /events/recent). Listings are newest first with a keyset cursor on
-- (created_at, rowid): every index here ends with created_at, and SQLite appends the rowid
-- (insertion order) to each index entry, so a page is one index range. The rowid rather than
-- the execution's ID keeps the entries of one batch (which share created_at) in insertion
-- order: a random UUID there would make every insert and status change land on a random page.

CREATE INDEX executions_status ON executions (project_id, status, created_at);
CREATE INDEX executions_workflow ON executions (project_id, workflow_id, created_at);
CREATE INDEX executions_error ON executions (project_id, error_type, created_at)
    WHERE error_type IS NOT NULL;
-- A tree's status counts (progress of a root, counts of a node's children) are read from
-- these alone, without visiting the rows; listings by root or parent walk them per status.
CREATE INDEX executions_root_status ON executions (root_execution_id, status, created_at);
CREATE INDEX executions_parent_status ON executions (parent_execution_id, status, created_at)
    WHERE parent_execution_id IS NOT NULL;

-- The project's latest events across topics.
CREATE INDEX events_recent ON events (project_id, seq);

-- How long a step's body took, as the worker measured it (NULL when not reported).
ALTER TABLE steps ADD COLUMN duration_seconds REAL;
