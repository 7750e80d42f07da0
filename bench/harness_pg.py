"""PostgreSQL for the bench scripts (re-exported by bench/harness.py): URLs, the server's
settings, a throwaway database per run, and the CPU time of a database's backends.
"""

from __future__ import annotations

import asyncio
import os
import threading
import uuid
from collections.abc import Coroutine
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

import psutil
from harness_base import log

T = TypeVar("T")


def is_postgres(url: str | None) -> bool:
    return bool(url) and str(url).startswith(("postgres://", "postgresql://"))


def pg_database(url: str) -> str:
    """The database a postgresql:// URL names ('' when it names only the server)."""
    return urlsplit(url).path.lstrip("/")


def pg_with_database(url: str, database: str) -> str:
    return urlunsplit(urlsplit(url)._replace(path=f"/{database}"))


def run_sync(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine to completion from sync code, even while an event loop runs here."""
    result: list[T] = []
    error: list[BaseException] = []

    def target() -> None:
        try:
            result.append(asyncio.run(coro))
        except BaseException as exc:
            error.append(exc)

    thread = threading.Thread(target=target, name="pg-admin")
    thread.start()
    thread.join()
    if error:
        raise error[0]
    return result[0]


async def _pg_fetch(url: str, sql: str) -> list[Any]:
    import asyncpg

    conn = await asyncpg.connect(url, timeout=10)
    try:
        return list(await conn.fetch(sql))
    finally:
        await conn.close()


def pg_info(url: str) -> dict[str, Any]:
    """The PostgreSQL server's version and the settings that decide its commit cost."""
    rows = run_sync(
        _pg_fetch(
            url,
            "SELECT name, current_setting(name) AS setting FROM pg_settings WHERE name IN "
            "('server_version', 'synchronous_commit', 'fsync', 'shared_buffers', "
            "'max_connections', 'wal_level')",
        )
    )
    return {r["name"]: r["setting"] for r in rows}


def pg_row_count(url: str) -> int:
    """Executions already in the database (0 when polos' tables are not there yet)."""
    import asyncpg

    try:
        return int(run_sync(_pg_fetch(url, "SELECT count(*) FROM executions"))[0][0])
    except asyncpg.UndefinedTableError:
        return 0


class ThrowawayDatabase:
    """A database with a unique name on the server of `url`, created now, dropped by drop()."""

    def __init__(self, url: str) -> None:
        # CREATE/DROP DATABASE run in the database the URL names, or in `postgres`.
        self.admin_url = url if pg_database(url) else pg_with_database(url, "postgres")
        self.name = f"polos_bench_{os.getpid()}_{uuid.uuid4().hex[:8]}"
        self.url = pg_with_database(url, self.name)
        self.created = False

    def create(self) -> str:
        self.created = True  # before: a Ctrl-C during CREATE must still lead to the DROP
        run_sync(_pg_fetch(self.admin_url, f'CREATE DATABASE "{self.name}"'))
        log(f"created database {self.name}")
        return self.url

    def drop(self) -> None:
        if not self.created:
            return
        # FORCE: connections that a killed server left behind do not keep it alive.
        sql = f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)'
        try:
            run_sync(_pg_fetch(self.admin_url, sql))
        except Exception as exc:
            log(f"could not drop database {self.name} ({exc}); drop it by hand")
            return
        self.created = False
        log(f"dropped database {self.name}")


class PgBackends:
    """CPU time of the PostgreSQL backends connected to one database, found by their process
    title (`postgres: 15/main: USER DBNAME HOST(PORT) STATE`): a local server only. Backends
    that exit keep counting with their last reading."""

    def __init__(self, database: str) -> None:
        self.database = database
        self._procs: dict[int, psutil.Process] = {}
        self._cpu: dict[int, float] = {}
        self._lock = threading.Lock()

    def refresh(self) -> None:
        found: dict[int, psutil.Process] = {}
        for proc in psutil.process_iter(["cmdline"]):
            title = " ".join(proc.info.get("cmdline") or ())
            if title.startswith("postgres:") and f" {self.database} " in f" {title} ":
                found[proc.pid] = proc
        with self._lock:
            for pid, proc in found.items():
                self._procs.setdefault(pid, proc)
        self.read()

    def read(self) -> float:
        with self._lock:
            for pid, proc in list(self._procs.items()):
                try:
                    t = proc.cpu_times()
                    self._cpu[pid] = t.user + t.system
                except psutil.Error:
                    del self._procs[pid]  # gone: its last reading stays in _cpu
            return sum(self._cpu.values())

    def count(self) -> int:
        with self._lock:
            return len(self._procs)
