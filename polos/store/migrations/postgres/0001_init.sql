-- The core schema: projects, registered workflows, queues and their usage, workers,
-- executions and their journals. Timestamps are unix seconds (REAL).

CREATE TABLE projects (
    id TEXT PRIMARY KEY,
    created_at DOUBLE PRECISION NOT NULL
);

CREATE TABLE workflows (
    project_id TEXT NOT NULL,
    workflow_id TEXT NOT NULL,
    queue_name TEXT NOT NULL,
    registered_at DOUBLE PRECISION NOT NULL,
    last_registered_at DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (project_id, workflow_id)
);

CREATE TABLE queues (
    project_id TEXT NOT NULL,
    name TEXT NOT NULL,
    concurrency_limit INTEGER,            -- NULL: no limit
    created_at DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (project_id, name)
);

-- Running executions per (queue, concurrency key). Changed only by the transactions that
-- claim or release executions, which is what makes a limit hold (design.md rule 8).
CREATE TABLE queue_usage (
    project_id TEXT NOT NULL,
    queue_name TEXT NOT NULL,
    concurrency_key TEXT NOT NULL,
    running INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (project_id, queue_name, concurrency_key)
);

CREATE TABLE workers (
    id TEXT PRIMARY KEY,
    project_id TEXT NOT NULL,
    deployment_id TEXT,
    capacity INTEGER NOT NULL,
    workflow_ids TEXT NOT NULL,           -- JSON list
    registered_at DOUBLE PRECISION NOT NULL,
    last_heartbeat_at DOUBLE PRECISION NOT NULL
);

CREATE TABLE executions (
    id TEXT PRIMARY KEY,
    project_id TEXT NOT NULL,
    workflow_id TEXT NOT NULL,
    status TEXT NOT NULL,
    queue_name TEXT NOT NULL,
    concurrency_key TEXT NOT NULL DEFAULT '',
    payload TEXT NOT NULL,
    result TEXT,
    error_type TEXT,
    error_message TEXT,
    output_schema TEXT,
    parent_execution_id TEXT,
    root_execution_id TEXT NOT NULL,
    root_workflow_id TEXT NOT NULL,
    parent_step_key TEXT,
    batch_index INTEGER,
    notify_parent INTEGER NOT NULL DEFAULT 0,
    deployment_id TEXT,
    session_id TEXT,
    user_id TEXT,
    initial_state TEXT,
    state TEXT,
    run_timeout_seconds DOUBLE PRECISION,
    idempotency_key TEXT,
    attempt INTEGER NOT NULL DEFAULT 0,   -- claims so far; the fence of worker reports
    retry_count INTEGER NOT NULL DEFAULT 0,
    worker_id TEXT,
    lease_expires_at DOUBLE PRECISION,
    ready_at DOUBLE PRECISION NOT NULL,
    created_at DOUBLE PRECISION NOT NULL,
    started_at DOUBLE PRECISION,
    completed_at DOUBLE PRECISION,
    updated_at DOUBLE PRECISION NOT NULL
);

CREATE INDEX executions_ready ON executions (project_id, queue_name, ready_at)
    WHERE status = 'queued';
CREATE INDEX executions_lease ON executions (lease_expires_at) WHERE status = 'running';
CREATE INDEX executions_worker ON executions (worker_id) WHERE status = 'running';
CREATE INDEX executions_children ON executions (parent_execution_id, parent_step_key, batch_index)
    WHERE parent_execution_id IS NOT NULL;
CREATE UNIQUE INDEX executions_idempotency ON executions (project_id, idempotency_key)
    WHERE idempotency_key IS NOT NULL;
CREATE INDEX executions_created ON executions (project_id, created_at);

-- The journal. A waiting step (invoke_and_wait, batch_invoke_and_wait) is a row with
-- status 'pending' and `pending` = children not yet final.
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
    created_at DOUBLE PRECISION NOT NULL,
    completed_at DOUBLE PRECISION,
    PRIMARY KEY (execution_id, step_key)
);
