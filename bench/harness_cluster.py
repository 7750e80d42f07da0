"""The processes of a benchmark (re-exported by bench/harness.py): `Cluster` starts the server
replicas and the worker processes, waits until they serve, and stops them (and drops a
throwaway PostgreSQL database) on exit, also on failure, Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import types
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any
from urllib.parse import urlsplit

from harness_base import BENCH_DIR, REPO_DIR, log
from harness_pg import (
    PgBackends,
    ThrowawayDatabase,
    is_postgres,
    pg_database,
    pg_info,
    pg_row_count,
)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _die_with_parent() -> None:  # runs in the child between fork and exec
    with contextlib.suppress(Exception):
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def _server_command() -> list[str]:
    beside = Path(sys.executable).parent / "polos-server"
    if beside.exists():
        return [str(beside)]
    found = shutil.which("polos-server")
    if found:
        return [found]
    return [sys.executable, "-c", "from polos.cli import server_main; server_main()"]


def _raise_on_sigterm(signum: int, frame: types.FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


class Cluster:
    """`replicas` servers on one database and `workers` worker processes on 127.0.0.1; a
    context manager. Worker i talks to replica i mod replicas; `api_url` is replica 0's."""

    def __init__(
        self,
        database_url: str | None,
        workers: int = 1,
        capacity: int = 100,
        uvloop: bool = False,
        server_log_level: str = "warning",
        replicas: int = 1,
        pg_create: bool = False,
    ) -> None:
        if replicas > 1 and not is_postgres(database_url):
            raise ValueError("several server replicas need a postgresql:// database URL")
        self.workers = workers
        self.capacity = capacity
        self.uvloop = uvloop
        self.server_log_level = server_log_level
        self.replicas = replicas
        self._tmp = tempfile.TemporaryDirectory(prefix="polos-bench-")
        self.tmp_dir = Path(self._tmp.name)
        self.throwaway = ThrowawayDatabase(database_url) if pg_create and database_url else None
        self.database_url = (
            self.throwaway.url
            if self.throwaway is not None
            else database_url or f"sqlite:///{self.tmp_dir / 'polos.db'}"
        )
        self.ports = [free_port() for _ in range(replicas)]
        self.api_urls = [f"http://127.0.0.1:{port}" for port in self.ports]
        self.api_url = self.api_urls[0]  # the client's
        self.servers: list[subprocess.Popen[bytes]] = []
        self.worker_procs: list[subprocess.Popen[bytes]] = []
        self._logs: dict[str, Path] = {}
        self._files: list[IO[bytes]] = []
        self._old_sigterm: Any = None

    @property
    def database_kind(self) -> str:
        kind = self.database_url.split(":", 1)[0]
        return "postgresql" if kind == "postgres" else kind

    def worker_url(self, i: int) -> str:
        return self.api_urls[i % self.replicas]

    def describe(self) -> dict[str, Any]:
        """What goes into the JSON lines' config about the servers and their database."""
        out: dict[str, Any] = {
            "database": self.database_kind,
            "replicas": self.replicas,
            "worker_replicas": [i % self.replicas for i in range(self.workers)],
        }
        if is_postgres(self.database_url):
            out["pg_create"] = self.throwaway is not None
            out["pg_pool_max"] = int(os.environ.get("POLOS_PG_POOL_MAX", "10"))
            with contextlib.suppress(Exception):
                out["postgres"] = pg_info(self.database_url)
        else:
            out["sqlite_synchronous"] = os.environ.get("POLOS_SQLITE_SYNCHRONOUS", "full")
        return out

    def pg_backends(self) -> PgBackends | None:
        if not is_postgres(self.database_url):
            return None
        host = urlsplit(self.database_url).hostname or "localhost"
        if host not in ("127.0.0.1", "localhost", "::1") and not host.startswith("/"):
            return None  # not this machine's processes
        return PgBackends(pg_database(self.database_url))

    # -- context manager -------------------------------------------------------------------

    def __enter__(self) -> Cluster:
        self._old_sigterm = signal.signal(signal.SIGTERM, _raise_on_sigterm)
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: types.TracebackType | None,
    ) -> None:
        if exc_type is not None and issubclass(exc_type, Exception):
            for name, _ in self.processes():
                log(f"--- {name} log tail ---\n{self.log_tail(name)}")
        self.stop()

    # -- start / stop ----------------------------------------------------------------------

    def _spawn(self, name: str, cmd: list[str]) -> subprocess.Popen[bytes]:
        path = self.tmp_dir / f"{name}.log"
        f = path.open("wb")
        self._files.append(f)
        self._logs[name] = path
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        return subprocess.Popen(
            cmd,
            cwd=REPO_DIR,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=f,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # Ctrl-C reaches us only; we stop them in order
            preexec_fn=_die_with_parent if sys.platform == "linux" else None,
        )

    def _server_name(self, i: int) -> str:
        return "server" if self.replicas == 1 else f"server-{i}"

    def start(self) -> None:
        if self.throwaway is not None:
            self.throwaway.create()
        elif is_postgres(self.database_url):
            existing = pg_row_count(self.database_url)
            if existing:
                log(f"note: the database already holds {existing:,} executions (not fresh)")
        for i, port in enumerate(self.ports):
            cmd = [
                *_server_command(),
                "start",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--database-url",
                self.database_url,
                "--log-level",
                self.server_log_level,
            ]
            self.servers.append(self._spawn(self._server_name(i), cmd))
        for i in range(self.replicas):  # they migrate the database once, under a lock
            self._wait_healthy(i, timeout=30.0)
        ready_files = []
        for i in range(self.workers):
            ready = self.tmp_dir / f"worker-{i}.ready"
            ready_files.append(ready)
            cmd = [
                sys.executable,
                str(BENCH_DIR / "harness.py"),
                "worker",
                "--api-url",
                self.worker_url(i),
                "--capacity",
                str(self.capacity),
                "--ready-file",
                str(ready),
            ]
            if self.uvloop:
                cmd.append("--uvloop")
            self.worker_procs.append(self._spawn(f"worker-{i}", cmd))
        self._wait_ready(ready_files, timeout=60.0)
        servers = ", ".join(
            f"pid {p.pid} on {url}" for p, url in zip(self.servers, self.api_urls, strict=True)
        )
        log(
            f"{self.replicas} server(s) ({servers}) on {self.database_kind}, "
            f"{self.workers} worker(s) pids {[p.pid for p in self.worker_procs]} on replicas "
            f"{[i % self.replicas for i in range(self.workers)]}, capacity {self.capacity}"
        )

    def _wait_healthy(self, i: int, timeout: float) -> None:
        server, url, name = self.servers[i], self.api_urls[i], self._server_name(i)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if server.poll() is not None:
                raise RuntimeError(
                    f"{name} exited with {server.returncode}:\n{self.log_tail(name)}"
                )
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=1.0) as r:
                    if r.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.05)
        raise RuntimeError(f"{name} not healthy after {timeout} s:\n{self.log_tail(name)}")

    def _wait_ready(self, files: Sequence[Path], timeout: float) -> None:
        """Until every worker has registered (each writes its file then), so that all of them
        take part from the first measured run."""
        deadline = time.monotonic() + timeout
        while not all(f.exists() for f in files):
            self.check_alive()
            if time.monotonic() > deadline:
                raise RuntimeError(f"workers not registered after {timeout} s")
            time.sleep(0.05)

    def check_alive(self) -> None:
        for name, proc in self.processes():
            if proc.poll() is not None:
                raise RuntimeError(f"{name} exited with {proc.returncode}:\n{self.log_tail(name)}")

    def processes(self) -> list[tuple[str, subprocess.Popen[bytes]]]:
        procs = [(f"worker-{i}", p) for i, p in enumerate(self.worker_procs)]
        procs += [(self._server_name(i), p) for i, p in enumerate(self.servers)]
        return procs

    def pids(self) -> dict[str, list[int]]:
        """Roles for RssSampler: `server` is every replica summed; with several replicas,
        `server-i` is each one as well."""
        roles = {
            "server": [p.pid for p in self.servers],
            "workers": [p.pid for p in self.worker_procs],
            "client": [os.getpid()],
        }
        if self.replicas > 1:
            for i, p in enumerate(self.servers):
                roles[f"server-{i}"] = [p.pid]
        return roles

    def log_tail(self, name: str, lines: int = 30) -> str:
        path = self._logs.get(name)
        if path is None or not path.exists():
            return "(no log)"
        text = path.read_text(errors="replace").splitlines()
        return "\n".join(text[-lines:])

    def stop(self) -> None:
        """Workers first (they hand back what they hold), then the servers, then the
        throwaway database."""
        # Ctrl-C or SIGTERM while stopping must not leave processes (or a database) behind.
        old_int = signal.signal(signal.SIGINT, signal.SIG_IGN)
        old_term = signal.signal(signal.SIGTERM, signal.SIG_IGN)
        try:
            self._terminate([p for p in self.worker_procs if p.poll() is None], grace=8.0)
            self._terminate([p for p in self.servers if p.poll() is None], grace=8.0)
            for f in self._files:
                f.close()
            self._files.clear()
            if self.throwaway is not None:
                self.throwaway.drop()
            self._tmp.cleanup()
        finally:
            signal.signal(signal.SIGINT, old_int)
            if self._old_sigterm is not None:  # what it was before __enter__
                signal.signal(signal.SIGTERM, self._old_sigterm)
                self._old_sigterm = None
            else:
                signal.signal(signal.SIGTERM, old_term)

    @staticmethod
    def _terminate(procs: Sequence[subprocess.Popen[bytes]], grace: float) -> None:
        for p in procs:
            with contextlib.suppress(ProcessLookupError):
                p.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + grace
        for p in procs:
            try:
                p.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                log(f"pid {p.pid} did not stop after SIGTERM; killing it")
                with contextlib.suppress(ProcessLookupError):
                    p.kill()
                p.wait()
