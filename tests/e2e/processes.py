"""The processes of the end-to-end suite: `polos-server` and worker processes on 127.0.0.1,
each logging to a file (`Proc`, `Processes`, `Server`, `Worker`), and the polling helpers the
tests wait with. The fixtures that start them are in conftest.py (which re-exports these)."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parents[2]
HOST = "127.0.0.1"
SERVER_START_DEADLINE = 30.0
WORKER_START_DEADLINE = 30.0
STOP_DEADLINE = 15.0


def wait_until(
    condition: Callable[[], Any], timeout: float, what: str, interval: float = 0.02
) -> Any:
    """Poll `condition` until it returns something truthy; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


async def async_wait_until(
    condition: Callable[[], Any], timeout: float, what: str, interval: float = 0.02
) -> Any:
    """`wait_until` for async conditions (a coroutine function)."""
    deadline = time.monotonic() + timeout
    while True:
        value = await condition()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(interval)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def _env(api_url: str) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    env["PYTHONUNBUFFERED"] = "1"
    env["POLOS_API_URL"] = api_url
    for name in ("POLOS_API_KEY", "POLOS_PROJECT_ID", "POLOS_DEPLOYMENT_ID"):
        env.pop(name, None)
    return env


@dataclass
class Proc:
    """A child process whose stdout and stderr go to a log file."""

    name: str
    args: list[str]
    log_path: Path
    env: dict[str, str]
    popen: subprocess.Popen[bytes] | None = None

    def spawn(self) -> None:
        with open(self.log_path, "ab") as log:
            log.write(f"----- {self.name}: {' '.join(self.args)}\n".encode())
            log.flush()
            self.popen = subprocess.Popen(
                self.args,
                cwd=REPO,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )

    @property
    def pid(self) -> int:
        assert self.popen is not None
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def terminate(self, timeout: float = STOP_DEADLINE) -> int | None:
        """SIGTERM, then wait; SIGKILL if it does not stop in time. Returns the exit code."""
        if self.popen is None:
            return None
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(5)
                raise AssertionError(
                    f"{self.name} did not stop within {timeout} s of SIGTERM"
                ) from None
        return self.popen.returncode

    def kill9(self) -> None:
        assert self.popen is not None
        self.popen.send_signal(signal.SIGKILL)
        self.popen.wait(10)


class Processes:
    """Every process the tests start: for the failure logs and the final cleanup."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.all: list[Proc] = []
        self._counter = 0

    def new(self, name: str, args: list[str], env: dict[str, str]) -> Proc:
        self._counter += 1
        proc = Proc(name, args, self.tmp / f"{self._counter:03d}-{name}.log", env)
        self.all.append(proc)
        return proc

    def stop_all(self) -> None:
        # Workers first, so that they do not spend their last seconds retrying a dead server.
        for proc in sorted(self.all, key=lambda p: not p.name.startswith("worker")):
            if proc.alive():
                try:
                    proc.terminate()
                except AssertionError:
                    pass


@dataclass
class Server:
    procs: Processes
    database_url: str
    port: int
    lease_seconds: float | None
    proc: Proc | None = None
    history: list[Proc] = field(default_factory=list)
    workers: list[Worker] = field(default_factory=list)
    # Extra environment of the next start (e.g. POLOS_FAIL_POINTS for the crash tests).
    env: dict[str, str] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def start(self) -> None:
        args = [
            str(Path(sys.executable).parent / "polos-server"),
            "start",
            "--host",
            HOST,
            "--port",
            str(self.port),
            "--database-url",
            self.database_url,
        ]
        if self.lease_seconds is not None:
            args += ["--lease-seconds", str(self.lease_seconds)]
        self.proc = self.procs.new(f"server-{self.port}", args, {**_env(self.url), **self.env})
        self.history.append(self.proc)
        self.proc.spawn()
        proc = self.proc

        def healthy() -> bool:
            if not proc.alive():
                raise AssertionError(f"the server exited early:\n{proc.log()}")
            try:
                return httpx.get(f"{self.url}/health", timeout=1.0).status_code == 200
            except httpx.TransportError:
                return False

        wait_until(healthy, SERVER_START_DEADLINE, f"GET {self.url}/health", interval=0.05)

    def stop(self) -> None:
        """SIGTERM; the server must stop in time and cleanly (uvicorn re-raises the signal
        after its graceful shutdown, so the exit status is -SIGTERM)."""
        assert self.proc is not None
        code = self.proc.terminate()
        assert code in (0, -signal.SIGTERM), f"the server exited with {code}"
        check_server_log(self.proc)


@dataclass
class Worker:
    proc: Proc
    server: Server

    def ready_count(self) -> int:
        return self.proc.log().count(" serving ")

    def stop(self) -> int | None:
        return self.proc.terminate()

    def kill9(self) -> None:
        self.proc.kill9()


def check_server_log(proc: Proc) -> None:
    """A 5xx (an internal error) is always a bug, and so is a traceback in the server's log."""
    text = proc.log()
    for marker in ("Traceback", "internal error"):
        assert marker not in text, f"{proc.name} logged {marker!r}:\n{text[-20000:]}"


ServerFactory = Callable[..., Server]
WorkerFactory = Callable[..., Worker]
