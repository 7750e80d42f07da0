"""Looking at a store's database from the outside: through a connection of its own, so that
what it sees is what was committed. One branch per backend."""

from __future__ import annotations

import re
import sqlite3
from contextlib import closing

from polos.store.base import Store, migrations
from polos.store.postgres import PostgresStore
from polos.store.sqlite import SqliteStore
from tests import pg


def dialect(store: Store) -> str:
    if isinstance(store, SqliteStore):
        return "sqlite"
    if isinstance(store, PostgresStore):
        return "postgres"
    raise AssertionError(f"no introspection for {type(store).__name__}")


def query(store: Store, sql: str, params: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
    """Run `sql` on a separate connection (sees committed data only). `?` marks parameters."""
    if isinstance(store, SqliteStore):
        with closing(sqlite3.connect(store.path)) as conn:
            return conn.execute(sql, params).fetchall()
    if isinstance(store, PostgresStore):
        numbered = sql
        for i in range(1, sql.count("?") + 1):
            numbered = numbered.replace("?", f"${i}", 1)
        return pg.run_sync(pg.query(store.url, numbered, *params))
    raise AssertionError(f"no introspection for {type(store).__name__}")


def tables(store: Store) -> set[str]:
    if dialect(store) == "sqlite":
        rows = query(store, "SELECT name FROM sqlite_master WHERE type = 'table'")
        return {str(r[0]) for r in rows if not str(r[0]).startswith("sqlite_")}
    rows = query(store, "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
    return {str(r[0]) for r in rows}


def indexes(store: Store) -> set[str]:
    if dialect(store) == "sqlite":
        rows = query(store, "SELECT name FROM sqlite_master WHERE type = 'index'")
        return {str(r[0]) for r in rows if not str(r[0]).startswith("sqlite_autoindex")}
    rows = query(store, "SELECT indexname FROM pg_indexes WHERE schemaname = 'public'")
    return {str(r[0]) for r in rows if not str(r[0]).endswith("_pkey")}


def columns(store: Store, table: str) -> set[str]:
    if dialect(store) == "sqlite":
        return {str(r[1]) for r in query(store, f"PRAGMA table_info({table})")}
    rows = query(
        store,
        "SELECT column_name FROM information_schema.columns "
        "WHERE table_schema = 'public' AND table_name = ?",
        (table,),
    )
    return {str(r[0]) for r in rows}


def applied_versions(store: Store) -> list[int]:
    rows = query(store, "SELECT version FROM schema_migrations ORDER BY version")
    return [int(r[0]) for r in rows]  # type: ignore[call-overload]


def project_ids(store: Store) -> set[str]:
    return {str(r[0]) for r in query(store, "SELECT id FROM projects")}


# --------------------------------------------------------------------------- declared schema

_COMMENT = re.compile(r"--[^\n]*")
_TABLE = re.compile(
    r"CREATE\s+TABLE\s+(?:IF\s+NOT\s+EXISTS\s+)?(\w+)\s*\((.*?)\)\s*(?:WITHOUT\s+ROWID\s*)?;",
    re.IGNORECASE | re.DOTALL,
)
_ADD_COLUMN = re.compile(
    r"ALTER\s+TABLE\s+(\w+)\s+ADD\s+COLUMN\s+(?:IF\s+NOT\s+EXISTS\s+)?(\w+)", re.IGNORECASE
)
_INDEX = re.compile(
    r"(CREATE|DROP)\s+(?:UNIQUE\s+)?INDEX\s+(?:IF\s+(?:NOT\s+)?EXISTS\s+)?(\w+)", re.IGNORECASE
)
_CONSTRAINTS = {"PRIMARY", "UNIQUE", "FOREIGN", "CHECK", "CONSTRAINT"}


def _split_top_level(body: str) -> list[str]:
    parts: list[str] = []
    depth = 0
    current: list[str] = []
    for ch in body:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append("".join(current))
            current = []
        else:
            current.append(ch)
    parts.append("".join(current))
    return [p.strip() for p in parts if p.strip()]


def declared_schema(dialect_name: str) -> tuple[dict[str, set[str]], set[str]]:
    """Tables (with their columns) and indexes the migration files of a dialect create."""
    declared: dict[str, set[str]] = {}
    index_names: set[str] = set()
    for migration in migrations(dialect_name):
        sql = _COMMENT.sub("", migration.sql)
        for name, body in _TABLE.findall(sql):
            declared[name] = {
                part.split()[0].strip('"')
                for part in _split_top_level(body)
                if part.split()[0].upper() not in _CONSTRAINTS
            }
        for table, column in _ADD_COLUMN.findall(sql):
            declared[table].add(column)
        for verb, name in _INDEX.findall(sql):  # in order: an index dropped, then recreated
            if verb.upper() == "CREATE":
                index_names.add(name)
            else:
                index_names.discard(name)
    return declared, index_names
