-- SQLite's 0008 makes its journal an ordinary rowid table (it was WITHOUT ROWID, which kept
-- large results in the interior pages of an index B-tree). PostgreSQL keeps rows in the heap
-- and large values in TOAST, its primary key index holds the key alone: nothing to change.
-- The file keeps the version numbers of both dialects in step.
SELECT 1;
