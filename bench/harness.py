"""What bench/fanout.py and bench/latency.py share: processes, RSS sampling, machine info.

`Cluster` starts one `polos-server` on a free loopback port and the requested worker processes
(`python bench/harness.py worker ...`, which serves the workflows of bench/workload.py), and
stops all of them on exit, also on failure, Ctrl-C or SIGTERM. Children get SIGTERM if the
benchmark process dies without cleaning up (Linux PR_SET_PDEATHSIG).
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
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import IO, Any

import psutil

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


# -- RSS / CPU sampling -------------------------------------------------------------------


class RssSampler:
    """Peak RSS per role (summed over the role's processes), sampled in a thread."""

    def __init__(self, roles: Mapping[str, Sequence[int]], interval: float = 0.05) -> None:
        self._procs: dict[str, list[psutil.Process]] = {
            role: [psutil.Process(pid) for pid in pids] for role, pids in roles.items()
        }
        self.interval = interval
        self._peak: dict[str, int] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="rss-sampler", daemon=True)

    def start(self) -> RssSampler:
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
        while not self._stop.wait(self.interval):
            self.sample()

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
        return out

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=1.0)


def cpu_delta(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    return {role: round(after[role] - before.get(role, 0.0), 2) for role in after}


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
    """One server and `workers` worker processes on 127.0.0.1; a context manager."""

    def __init__(
        self,
        database_url: str | None,
        workers: int = 1,
        capacity: int = 100,
        uvloop: bool = False,
        server_log_level: str = "warning",
    ) -> None:
        self.workers = workers
        self.capacity = capacity
        self.uvloop = uvloop
        self.server_log_level = server_log_level
        self._tmp = tempfile.TemporaryDirectory(prefix="polos-bench-")
        self.tmp_dir = Path(self._tmp.name)
        self.database_url = database_url or f"sqlite:///{self.tmp_dir / 'polos.db'}"
        self.port = free_port()
        self.api_url = f"http://127.0.0.1:{self.port}"
        self.server: subprocess.Popen[bytes] | None = None
        self.worker_procs: list[subprocess.Popen[bytes]] = []
        self._logs: dict[str, Path] = {}
        self._files: list[IO[bytes]] = []
        self._old_sigterm: Any = None

    @property
    def database_kind(self) -> str:
        return self.database_url.split(":", 1)[0]

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

    def start(self) -> None:
        cmd = [
            *_server_command(),
            "start",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--database-url",
            self.database_url,
            "--log-level",
            self.server_log_level,
        ]
        self.server = self._spawn("server", cmd)
        self._wait_healthy(timeout=30.0)
        for i in range(self.workers):
            cmd = [
                sys.executable,
                str(BENCH_DIR / "harness.py"),
                "worker",
                "--api-url",
                self.api_url,
                "--capacity",
                str(self.capacity),
            ]
            if self.uvloop:
                cmd.append("--uvloop")
            self.worker_procs.append(self._spawn(f"worker-{i}", cmd))
        log(
            f"server pid {self.server.pid} on {self.api_url} ({self.database_kind}), "
            f"{self.workers} worker(s) pids {[p.pid for p in self.worker_procs]}, "
            f"capacity {self.capacity}"
        )

    def _wait_healthy(self, timeout: float) -> None:
        assert self.server is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.server.poll() is not None:
                raise RuntimeError(
                    f"polos-server exited with {self.server.returncode}:\n{self.log_tail('server')}"
                )
            try:
                with urllib.request.urlopen(f"{self.api_url}/health", timeout=1.0) as r:
                    if r.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.05)
        raise RuntimeError(
            f"polos-server not healthy after {timeout} s:\n{self.log_tail('server')}"
        )

    def check_alive(self) -> None:
        for name, proc in self.processes():
            if proc.poll() is not None:
                raise RuntimeError(f"{name} exited with {proc.returncode}:\n{self.log_tail(name)}")

    def processes(self) -> list[tuple[str, subprocess.Popen[bytes]]]:
        procs = [(f"worker-{i}", p) for i, p in enumerate(self.worker_procs)]
        if self.server is not None:
            procs.append(("server", self.server))
        return procs

    def pids(self) -> dict[str, list[int]]:
        return {
            "server": [self.server.pid] if self.server is not None else [],
            "workers": [p.pid for p in self.worker_procs],
            "client": [os.getpid()],
        }

    def log_tail(self, name: str, lines: int = 30) -> str:
        path = self._logs.get(name)
        if path is None or not path.exists():
            return "(no log)"
        text = path.read_text(errors="replace").splitlines()
        return "\n".join(text[-lines:])

    def stop(self) -> None:
        """Workers first (they hand back what they hold), then the server."""
        # Ctrl-C while stopping must not leave processes behind.
        old_int = signal.signal(signal.SIGINT, signal.SIG_IGN)
        try:
            self._terminate([p for p in self.worker_procs if p.poll() is None], grace=8.0)
            if self.server is not None and self.server.poll() is None:
                self._terminate([self.server], grace=8.0)
            for f in self._files:
                f.close()
            self._files.clear()
            if self._old_sigterm is not None:
                signal.signal(signal.SIGTERM, self._old_sigterm)
                self._old_sigterm = None
            self._tmp.cleanup()
        finally:
            signal.signal(signal.SIGINT, old_int)

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


async def _serve(api_url: str, capacity: int) -> None:
    import workload  # bench/ is sys.path[0] when this file runs as a script

    import polos

    client = polos.PolosClient(api_url=api_url)
    worker = polos.Worker(client, workflows=workload.WORKFLOWS, max_concurrent_workflows=capacity)
    await worker.run()


def worker_main(argv: Sequence[str]) -> None:
    parser = argparse.ArgumentParser(prog="harness.py worker")
    parser.add_argument("--api-url", required=True)
    parser.add_argument("--capacity", type=int, default=100)
    parser.add_argument("--uvloop", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    run_async(lambda: _serve(args.api_url, args.capacity), uvloop=args.uvloop)


if __name__ == "__main__":
    if len(sys.argv) >= 2 and sys.argv[1] == "worker":
        worker_main(sys.argv[2:])
    else:
        sys.exit("usage: harness.py worker --api-url URL [--capacity N] [--uvloop]")
