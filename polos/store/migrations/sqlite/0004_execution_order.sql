-- Insertion order of executions, the tie-break of claims among executions that became due at
-- the same moment: SQLite has it already (rowid, which every index ends with), so there is
-- nothing to change here; PostgreSQL's 0004 adds a sequence column. The file keeps the
-- version numbers of both dialects in step.
SELECT 1;
