"""Storage: the only code that speaks SQL. `create_store(url)` picks the database."""

from __future__ import annotations

import os
from pathlib import Path

from polos.store.base import Store, StoreTx

__all__ = ["Store", "StoreTx", "create_store", "default_database_url"]


def default_database_url() -> str:
    return f"sqlite:///{Path('~/.polos/polos.db').expanduser()}"  # absolute: four slashes


def create_store(url: str, *, sqlite_synchronous: str | None = None) -> Store:
    """A store for `url`: `sqlite:///path` (or a bare path) or `postgresql://...`."""
    if url.startswith(("postgres://", "postgresql://")):
        from polos.store.postgres import PostgresStore

        return PostgresStore(url)
    if url.startswith("sqlite:"):
        # SQLAlchemy's convention: sqlite:///relative.db, sqlite:////absolute/path.db
        if not url.startswith("sqlite:///"):
            raise ValueError(f"malformed SQLite URL {url!r}: use sqlite:///path")
        path = url.removeprefix("sqlite:///")
    elif "://" in url:
        raise ValueError(f"unsupported database URL {url!r}: use sqlite:///path or postgresql://")
    else:
        path = url
    if not path:
        raise ValueError(f"database URL {url!r} names no file")
    from polos.store.sqlite import SqliteStore

    sync = sqlite_synchronous or os.environ.get("POLOS_SQLITE_SYNCHRONOUS", "full")
    return SqliteStore(os.path.expanduser(path), synchronous=sync)
