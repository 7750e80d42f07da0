"""What bench/fanout.py and bench/latency.py share: processes, RSS sampling, machine info.

`Cluster` starts `replicas` `polos-server` processes (one unless PostgreSQL: several replicas
share one database), each on a free loopback port, and the requested worker processes
(`python bench/harness.py worker ...`, which serves the workflows of bench/workload.py), worker
i attached to replica i mod replicas. It stops all of them on exit, also on failure, Ctrl-C or
SIGTERM, and drops the throwaway PostgreSQL database it created, if any. Children get SIGTERM
if the benchmark process dies without cleaning up (Linux PR_SET_PDEATHSIG).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import datetime as dt
import json
import logging
import os
import platform
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import types
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Coroutine, Mapping, Sequence
from pathlib import Path
from typing import IO, Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

import psutil

T = TypeVar("T")

BENCH_DIR = Path(__file__).resolve().parent
REPO_DIR = BENCH_DIR.parent
RESULTS_DIR = BENCH_DIR / "results"
MIB = 2**20


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# -- machine info -------------------------------------------------------------------------


def _cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def _git_commit() -> str:
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=REPO_DIR, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=REPO_DIR,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return commit + ("-dirty" if dirty else "")


def machine_info() -> dict[str, Any]:
    from importlib.metadata import version

    return {
        "cpu_count": os.cpu_count(),
        "cpu_model": _cpu_model(),
        "memory_mib": round(psutil.virtual_memory().total / MIB),
        "os": platform.platform(),
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "polos": version("polos"),
        "git_commit": _git_commit(),
        "load_avg_at_start": [round(x, 2) for x in os.getloadavg()],
    }


def now_utc() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def default_output(name: str) -> Path:
    return RESULTS_DIR / f"{name}-{dt.date.today().isoformat()}.jsonl"


def append_jsonl(path: Path, record: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as f:
        f.write(json.dumps(record, sort_keys=False) + "\n")


def percentile(sorted_values: Sequence[float], p: float) -> float:
    """Nearest-rank percentile (p in 0..100) of an ascending sequence."""
    if not sorted_values:
        raise ValueError("no values")
    rank = max(1, -(-len(sorted_values) * p // 100))  # ceil(n * p / 100)
    return sorted_values[int(rank) - 1]


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values))


# -- PostgreSQL ---------------------------------------------------------------------------


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


# -- RSS / CPU sampling -------------------------------------------------------------------


class RssSampler:
    """Peak RSS per role (summed over the role's processes), sampled in a thread; with
    `pg_backends`, also the CPU time of the PostgreSQL backends (role `postgres`, no RSS: their
    shared buffers would be counted once per backend)."""

    def __init__(
        self,
        roles: Mapping[str, Sequence[int]],
        interval: float = 0.05,
        pg_backends: PgBackends | None = None,
    ) -> None:
        self._procs: dict[str, list[psutil.Process]] = {
            role: [psutil.Process(pid) for pid in pids] for role, pids in roles.items()
        }
        self.interval = interval
        self.pg_backends = pg_backends
        self._peak: dict[str, int] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="rss-sampler", daemon=True)

    def start(self) -> RssSampler:
        if self.pg_backends is not None:
            self.pg_backends.refresh()
        self._thread.start()
        return self

    def sample(self) -> None:
        current: dict[str, int] = {}
        for role, procs in self._procs.items():
            total = 0
            for proc in procs:
                with contextlib.suppress(psutil.Error):
                    total += proc.memory_info().rss
            current[role] = total
        with self._lock:
            for role, rss in current.items():
                self._peak[role] = max(self._peak.get(role, 0), rss)

    def _loop(self) -> None:
        ticks = 0
        while not self._stop.wait(self.interval):
            self.sample()
            ticks += 1
            if self.pg_backends is not None and ticks % 10 == 0:  # new backends, dying ones
                self.pg_backends.refresh()

    def reset(self) -> None:
        self.sample()  # outside the lock
        with self._lock:
            self._peak = {}
        self.sample()

    def peak_mib(self) -> dict[str, float]:
        self.sample()
        with self._lock:
            return {role: round(rss / MIB, 1) for role, rss in self._peak.items()}

    def cpu_seconds(self) -> dict[str, float]:
        """CPU time (user + system) used so far by each role."""
        out: dict[str, float] = {}
        for role, procs in self._procs.items():
            total = 0.0
            for proc in procs:
                with contextlib.suppress(psutil.Error):
                    t = proc.cpu_times()
                    total += t.user + t.system
            out[role] = total
        if self.pg_backends is not None:
            self.pg_backends.refresh()
            out["postgres"] = self.pg_backends.read()
        return out

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=1.0)


def cpu_delta(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    return {role: round(after[role] - before.get(role, 0.0), 2) for role in after}


# -- command line -------------------------------------------------------------------------


def add_cluster_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--database-url",
        default=None,
        help="sqlite:///path or postgresql://... (default: a temporary SQLite file); a\n"
        "postgresql:// URL without a database (postgresql://postgres@127.0.0.1:5432)\n"
        "gets a throwaway database, as with --pg-create",
    )
    p.add_argument(
        "--replicas",
        type=int,
        default=1,
        help="server processes on the one database (PostgreSQL only; default 1); worker i\n"
        "is attached to replica i mod N, the client submits through replica 0",
    )
    p.add_argument(
        "--pg-create",
        action="store_true",
        help="create a database with a unique name on the --database-url's server for\n"
        "this run and drop it afterwards, also on failure or Ctrl-C (the URL's database\n"
        "is only where CREATE/DROP DATABASE run)",
    )


def check_cluster_args(p: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    if args.replicas < 1:
        p.error("--replicas must be positive")
    if not is_postgres(args.database_url):
        if args.replicas > 1:
            p.error(
                f"--replicas {args.replicas} needs PostgreSQL: a SQLite database serves one "
                "server process. Pass --database-url postgresql://USER@HOST:PORT (a throwaway "
                "database is created) or postgresql://.../DBNAME."
            )
        if args.pg_create:
            p.error("--pg-create needs a postgresql:// --database-url")
    elif not pg_database(args.database_url):
        args.pg_create = True  # the URL names a server, not a database: use a fresh one


# -- processes ----------------------------------------------------------------------------


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


# -- the client side ----------------------------------------------------------------------


def run_async(main: Callable[[], Any], uvloop: bool = False) -> Any:
    if uvloop:
        import uvloop as _uvloop

        return _uvloop.run(main())
    return asyncio.run(main())


async def bounded(coro: Any, timeout: float) -> Any:
    async with asyncio.timeout(timeout):
        return await coro


async def wait_for_workers(cluster: Cluster, make_call: Callable[[], Any], timeout: float) -> Any:
    """Retry a first call until the workers registered its workflow (they start in parallel)."""
    import polos

    deadline = time.monotonic() + timeout
    while True:
        cluster.check_alive()
        try:
            return await bounded(make_call(), timeout)
        except polos.WorkflowNotFoundError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.05)


# -- the worker process -------------------------------------------------------------------


async def _serve(api_url: str, capacity: int, ready_file: str | None) -> None:
    import workload  # bench/ is sys.path[0] when this file runs as a script

    import polos

    client = polos.PolosClient(api_url=api_url)
    worker = polos.Worker(client, workflows=workload.WORKFLOWS, max_concurrent_workflows=capacity)
    if ready_file:
        await worker.start()  # registered; run() below finds it started
        Path(ready_file).write_text(str(os.getpid()))
    await worker.run()


def worker_main(argv: Sequence[str]) -> None:
    parser = argparse.ArgumentParser(prog="harness.py worker")
    parser.add_argument("--api-url", required=True)
    parser.add_argument("--capacity", type=int, default=100)
    parser.add_argument("--uvloop", action="store_true")
    parser.add_argument("--ready-file", default=None, help="written once registered")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    run_async(lambda: _serve(args.api_url, args.capacity, args.ready_file), uvloop=args.uvloop)


if __name__ == "__main__":
    if len(sys.argv) >= 2 and sys.argv[1] == "worker":
        worker_main(sys.argv[2:])
    else:
        sys.exit(
            "usage: harness.py worker --api-url URL [--capacity N] [--uvloop] [--ready-file F]"
        )
