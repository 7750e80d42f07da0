-- Failure policies of a batch wait (batch_invoke_and_wait): stop waiting at the first child
-- that failed for good (fail_fast = 1), or once `min_success` children succeeded (or can no
-- longer). The unfinished children are then cancelled and the step resolves.
ALTER TABLE steps ADD COLUMN fail_fast INTEGER NOT NULL DEFAULT 0;
ALTER TABLE steps ADD COLUMN min_success INTEGER;
