-- API keys: a key belongs to one project and is stored as its SHA-256 hash (keys are 32
-- random bytes, so a fast hash is enough); the prefix is kept to recognise a key in lists.

CREATE TABLE api_keys (
    id TEXT PRIMARY KEY,
    project_id TEXT NOT NULL,
    name TEXT NOT NULL,
    key_hash TEXT NOT NULL,
    prefix TEXT NOT NULL,
    created_at REAL NOT NULL,
    revoked_at REAL
);

CREATE UNIQUE INDEX api_keys_hash ON api_keys (key_hash);
CREATE INDEX api_keys_project ON api_keys (project_id);
