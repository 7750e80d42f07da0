-- The rest of the workflow model: events (a sequence per project), event waits on steps,
-- durable timers, schedules with their slots, event triggers.

ALTER TABLE executions ADD COLUMN event_cursor INTEGER NOT NULL DEFAULT 0;
ALTER TABLE executions ADD COLUMN cancelled_at REAL;

ALTER TABLE steps ADD COLUMN wait_topic TEXT;
ALTER TABLE steps ADD COLUMN wait_event_type TEXT;
ALTER TABLE steps ADD COLUMN wait_after_seq INTEGER;

CREATE INDEX steps_event_waits ON steps (wait_topic) WHERE status = 'pending' AND wait_topic IS NOT NULL;

CREATE TABLE events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL,
    project_id TEXT NOT NULL,
    topic TEXT NOT NULL,
    event_type TEXT,
    data TEXT NOT NULL,
    execution_id TEXT,
    root_execution_id TEXT,
    created_at REAL NOT NULL
);

CREATE INDEX events_topic ON events (project_id, topic, seq);

-- Every wait that fires later: long waits, event-wait and suspend timeouts, run timeouts,
-- partial event batches. Taken and deleted in one transaction: each fires once.
CREATE TABLE timers (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    project_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    execution_id TEXT,
    step_key TEXT,
    target TEXT,
    fire_at REAL NOT NULL
);

CREATE INDEX timers_due ON timers (fire_at);
CREATE INDEX timers_execution ON timers (execution_id);

CREATE TABLE schedules (
    id TEXT PRIMARY KEY,
    project_id TEXT NOT NULL,
    workflow_id TEXT NOT NULL,
    schedule_key TEXT NOT NULL,
    cron TEXT NOT NULL,
    timezone TEXT NOT NULL,
    catch_up_seconds REAL NOT NULL,
    next_fire_at REAL NOT NULL,
    last_fire_at REAL,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL
);

CREATE UNIQUE INDEX schedules_key ON schedules (project_id, workflow_id, schedule_key);
CREATE INDEX schedules_due ON schedules (next_fire_at);

-- What happened to each slot: fired (with its execution) or skipped (outside the catch-up
-- window after downtime).
CREATE TABLE schedule_slots (
    schedule_id TEXT NOT NULL,
    slot_at REAL NOT NULL,
    status TEXT NOT NULL,
    execution_id TEXT,
    recorded_at REAL NOT NULL,
    PRIMARY KEY (schedule_id, slot_at)
);

CREATE TABLE event_triggers (
    project_id TEXT NOT NULL,
    workflow_id TEXT NOT NULL,
    topic TEXT NOT NULL,
    batch_size INTEGER NOT NULL,
    batch_timeout_seconds REAL,
    cursor_seq INTEGER NOT NULL,
    queue_name TEXT NOT NULL,
    updated_at REAL NOT NULL,
    PRIMARY KEY (project_id, workflow_id, topic)
);

CREATE INDEX event_triggers_topic ON event_triggers (project_id, topic);
