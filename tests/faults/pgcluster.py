"""A private, throwaway PostgreSQL cluster for the tests that stop PostgreSQL (never the shared
server on 127.0.0.1:5432): `initdb` into a temporary folder, its own port on 127.0.0.1, started
with `pg_ctl` and stopped by the postmaster's PID, like ../shared/bench/peers/common/pg.sh.

As root, the PostgreSQL programs run as the `postgres` user (initdb refuses root).
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import asyncpg

from tests import pg
from tests.e2e.conftest import free_port

START_DEADLINE = 60.0
STOP_DEADLINE = 30.0


def pg_bin() -> Path:
    """The newest Debian PostgreSQL, else whatever `pg_ctl` is on PATH."""

    def version(path: str) -> tuple[int, ...]:
        part = Path(path).parent.name
        return tuple(int(p) for p in part.split(".") if p.isdigit())

    found = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=version)
    if found:
        return Path(found[-1])
    pg_ctl = shutil.which("pg_ctl")
    if pg_ctl is None:
        raise RuntimeError("PostgreSQL's programs (initdb, pg_ctl) are not installed")
    return Path(pg_ctl).resolve().parent


def _process_gone(pid: int) -> bool:
    """True once `pid` exited (a zombie nobody reaped counts as exited)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return True
    return stat.rsplit(")", 1)[-1].split()[0] == "Z"


class PgCluster:
    """One PostgreSQL cluster in a temporary folder. `start()`/`stop()` may be called many
    times; `destroy()` stops it and removes the folder."""

    def __init__(self, port: int | None = None) -> None:
        self.bin = pg_bin()
        self.port = port or free_port()
        self.root = Path(tempfile.mkdtemp(prefix="polos-pg-"))
        self.data = self.root / "data"
        self.log_path = self.root / "postgres.log"
        self.pid: int | None = None
        self.starts = 0
        self.stops = 0
        self._as_postgres = os.geteuid() == 0

    def _run(self, *args: str) -> None:
        command = list(args)
        if self._as_postgres:
            command = ["runuser", "-u", "postgres", "--", *command]
        done = subprocess.run(command, capture_output=True, text=True, timeout=START_DEADLINE)
        if done.returncode != 0:
            raise RuntimeError(
                f"{' '.join(command)} exited with {done.returncode}:\n{done.stdout}{done.stderr}"
                f"\n{self.log()[-5000:]}"
            )

    def init(self) -> None:
        self.data.mkdir(mode=0o700)
        if self._as_postgres:
            shutil.chown(self.root, "postgres", "postgres")
            shutil.chown(self.data, "postgres", "postgres")
        self._run(
            str(self.bin / "initdb"),
            "-D",
            str(self.data),
            "-U",
            "postgres",
            "--auth=trust",
            "-E",
            "UTF8",
            "--no-sync",
        )

    def start(self) -> None:
        """Start the cluster and wait until it accepts connections."""
        options = (
            f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.data} -c max_connections=100"
        )
        self._run(
            str(self.bin / "pg_ctl"),
            "-D",
            str(self.data),
            "-w",
            "-t",
            str(int(START_DEADLINE)),
            "-l",
            str(self.log_path),
            "-o",
            options,
            "start",
        )
        self.pid = int((self.data / "postmaster.pid").read_text().splitlines()[0])
        self.starts += 1

    def stop(self, mode: str = "fast") -> float:
        """Stop the postmaster by its PID: `fast` (SIGINT: sessions are terminated, a
        checkpoint is written) or `immediate` (SIGQUIT: like a crash; the next start
        recovers from the WAL). Returns the time the signal was sent."""
        assert self.pid is not None, "the cluster is not running"
        sig = {"fast": signal.SIGINT, "immediate": signal.SIGQUIT}[mode]
        at = time.time()
        os.kill(self.pid, sig)
        deadline = time.monotonic() + STOP_DEADLINE
        while not _process_gone(self.pid):
            if time.monotonic() > deadline:
                raise AssertionError(f"PostgreSQL (pid {self.pid}) did not stop ({mode})")
            time.sleep(0.02)
        self.pid = None
        self.stops += 1
        return at

    @property
    def running(self) -> bool:
        return self.pid is not None and not _process_gone(self.pid)

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        async def create() -> None:
            conn = await asyncpg.connect(self.url(), timeout=10)
            try:
                await conn.execute(f'CREATE DATABASE "{name}"')
            finally:
                await conn.close()

        pg.run_sync(create())
        return self.url(name)

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def destroy(self) -> None:
        if self.running:
            with contextlib.suppress(AssertionError):
                self.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)


@contextlib.contextmanager
def private_cluster() -> Iterator[PgCluster]:
    """A started cluster, stopped and removed at the end."""
    cluster = PgCluster()
    try:
        cluster.init()
        cluster.start()
        yield cluster
    finally:
        cluster.destroy()
