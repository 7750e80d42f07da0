-- Insertion order of executions: the tie-break of claims among executions that became due at
-- the same moment (the children of one batch), so that they start in input order.
ALTER TABLE executions ADD COLUMN seq BIGSERIAL;

DROP INDEX executions_ready;
CREATE INDEX executions_ready ON executions (project_id, queue_name, ready_at, seq)
    WHERE status = 'queued';
