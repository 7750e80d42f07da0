"""`make demo`: an example (the parallel-review one by default), end to end, on a throwaway
server.

1. starts `polos-server start` on 127.0.0.1 (port 8080 if free, else any free port) with a
   SQLite database in a temporary directory (plus any `--server-arg`, e.g. `--test-clock`),
   and waits for GET /health;
2. starts `python worker.py` in the example's directory, pointed at that server, and waits
   until it has registered its workflows;
3. runs `python main.py` there, its output going straight to this terminal;
4. stops the worker, then the server (SIGTERM, then SIGKILL if they do not exit in time), and
   removes the temporary directory: also on Ctrl-C, on SIGTERM and on failure.

Exit status: main.py's (0 when every demo passed), 1 if the setup failed, 130 on Ctrl-C.
The server's and worker's logs are printed when something fails.

Run it with the project's Python (`make demo`, or `.venv/bin/python scripts/demo.py`):

    .venv/bin/python scripts/demo.py                       # examples/parallel_review
    .venv/bin/python scripts/demo.py examples/events
    .venv/bin/python scripts/demo.py examples/schedules --test-clock

The worker and main.py get POLOS_API_URL (the throwaway server), POLOS_PROJECT_ID=default and
the POLOS_DEPLOYMENT_ID of the example's .env.example (else the directory's name).
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from types import FrameType

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_EXAMPLE = ROOT / "examples" / "parallel_review"
HOST = "127.0.0.1"
PREFERRED_PORT = 8080
# The worker logs this once it has registered its workflows with the server (polos.worker).
WORKER_READY_MARK = " serving "
STOP_TIMEOUT_SECONDS = 15.0


class DemoError(Exception):
    """The demo could not be set up."""


class Terminated(BaseException):
    """This script received SIGTERM (handled like Ctrl-C)."""


def say(message: str) -> None:
    print(f"[demo] {message}", flush=True)


def free_port(preferred: int | None = PREFERRED_PORT) -> int:
    """`preferred` if nothing listens there, else a port the kernel picks."""
    for port in (preferred, 0) if preferred else (0,):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.bind((HOST, port))
            except OSError:
                continue
            return int(s.getsockname()[1])
    raise DemoError("no free TCP port")


def server_command() -> list[str]:
    """`polos-server` next to this interpreter (the venv's), else the one on PATH."""
    local = Path(sys.executable).parent / "polos-server"
    if local.exists():
        return [str(local)]
    found = shutil.which("polos-server")
    if found:
        return [found]
    raise DemoError(
        f"polos-server not found next to {sys.executable} nor on PATH: run `make install` "
        "and start this script with .venv/bin/python (or `make demo`)"
    )


def start(
    cmd: list[str], cwd: Path, env: dict[str, str], log: Path | None
) -> subprocess.Popen[bytes]:
    """Start `cmd` in a session of its own: Ctrl-C then reaches this script only, which stops
    the children in order (worker before server). Output goes to `log`, else to ours."""
    if log is None:
        return subprocess.Popen(
            cmd, cwd=cwd, env=env, stdin=subprocess.DEVNULL, start_new_session=True
        )
    with open(log, "wb") as out:
        return subprocess.Popen(
            cmd,
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def stop(name: str, proc: subprocess.Popen[bytes] | None) -> None:
    """SIGTERM, wait, SIGKILL if it does not exit in time."""
    if proc is None or proc.poll() is not None:
        return
    say(f"stopping {name} (pid {proc.pid})")
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(STOP_TIMEOUT_SECONDS)
    except subprocess.TimeoutExpired:
        say(f"{name} did not stop within {STOP_TIMEOUT_SECONDS:.0f} s: killing it")
        proc.kill()
        proc.wait()


def wait_for_health(url: str, server: subprocess.Popen[bytes], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise DemoError(f"the server exited with status {server.returncode}")
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=1.0) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.1)
    raise DemoError(f"the server did not answer {url}/health within {timeout:.0f} s")


def start_server(
    tmp: Path, env: dict[str, str], log: Path, extra_args: list[str]
) -> tuple[subprocess.Popen[bytes], str]:
    """Start the server and wait until it answers. Another process may take the port between
    the check and the bind: then try again on a port the kernel picks."""
    database_url = f"sqlite:///{tmp / 'polos.db'}"
    preferred: int | None = PREFERRED_PORT
    for attempt in range(3):
        port = free_port(preferred)
        url = f"http://{HOST}:{port}"
        say(f"starting polos-server on {url} (database {database_url})")
        cmd = [*server_command(), "start", "--host", HOST, "--port", str(port)]
        server = start([*cmd, "--database-url", database_url, *extra_args], ROOT, env, log)
        try:
            wait_for_health(url, server, timeout=30)
            return server, url
        except DemoError:
            stop("the server", server)
            if attempt == 2 or "already in use" not in log.read_text(errors="replace"):
                raise
            say(f"port {port} was taken meanwhile; trying another one")
            preferred = None
    raise AssertionError("unreachable")


def wait_for_worker(log: Path, worker: subprocess.Popen[bytes], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if WORKER_READY_MARK in log.read_text(errors="replace"):
            return
        if worker.poll() is not None:
            raise DemoError(f"the worker exited with status {worker.returncode}")
        time.sleep(0.05)
    raise DemoError(f"the worker did not register within {timeout:.0f} s")


def print_log(name: str, path: Path, lines: int = 40) -> None:
    if not path.exists():
        return
    tail = path.read_text(errors="replace").splitlines()[-lines:]
    print(f"\n----- last {len(tail)} lines of the {name} log -----", file=sys.stderr)
    for line in tail:
        print(line, file=sys.stderr)
    sys.stderr.flush()


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise Terminated()


def find_example(name: str) -> Path:
    """The example directory `name` (a path, or a name under examples/)."""
    for candidate in (Path(name), ROOT / name, ROOT / "examples" / name):
        if candidate.is_dir():
            directory = candidate.resolve()
            missing = [f for f in ("worker.py", "main.py") if not (directory / f).is_file()]
            if missing:
                raise DemoError(f"{directory} has no {' nor '.join(missing)}")
            return directory
    raise DemoError(f"no example directory {name!r} (try examples/parallel_review)")


def deployment_id(example: Path) -> str:
    """POLOS_DEPLOYMENT_ID from the example's .env.example, else the directory's name."""
    env_example = example / ".env.example"
    if env_example.is_file():
        for line in env_example.read_text().splitlines():
            key, sep, value = line.strip().partition("=")
            if sep and key.strip() == "POLOS_DEPLOYMENT_ID" and value.strip():
                return value.strip().strip("\"'")
    return example.name.replace("_", "-")


def run(example: Path, server_args: list[str], timeout: float, keep: bool = False) -> int:
    tmp = Path(tempfile.mkdtemp(prefix="polos-demo-"))
    server_log, worker_log = tmp / "server.log", tmp / "worker.log"
    server = worker = main = None
    started = time.monotonic()
    status = 1
    try:
        env = dict(os.environ)
        env.update(
            POLOS_PROJECT_ID="default",
            POLOS_DEPLOYMENT_ID=deployment_id(example),
            PYTHONUNBUFFERED="1",
        )
        server, env["POLOS_API_URL"] = start_server(tmp, env, server_log, server_args)

        say(f"starting the worker: python worker.py (in {example})")
        worker = start([sys.executable, "worker.py"], example, env, worker_log)
        wait_for_worker(worker_log, worker, timeout=30)

        say("running: python main.py")
        print(flush=True)
        main = start([sys.executable, "main.py"], example, env, None)
        try:
            status = main.wait(timeout)
        except subprocess.TimeoutExpired:
            raise DemoError(f"main.py did not finish within {timeout:.0f} s") from None
        print(flush=True)
        if status != 0:
            say(f"main.py failed with exit status {status}")
    except DemoError as exc:
        say(f"error: {exc}")
        status = 1
    except (KeyboardInterrupt, Terminated):
        print(flush=True)
        say("interrupted")
        status = 130
    finally:
        # Stopping must not be cut short by a second Ctrl-C or SIGTERM.
        previous_int = signal.signal(signal.SIGINT, signal.SIG_IGN)
        previous_term = signal.signal(signal.SIGTERM, signal.SIG_IGN)
        try:
            stop("main.py", main)
            stop("the worker", worker)
            stop("the server", server)
            if status not in (0, 130):
                print_log("server", server_log)
                print_log("worker", worker_log)
            if keep and status not in (0, 130):
                say(f"kept {tmp} (database and logs) for a post-mortem")
            else:
                shutil.rmtree(tmp, ignore_errors=True)
        finally:
            signal.signal(signal.SIGINT, previous_int)
            signal.signal(signal.SIGTERM, previous_term)
    say(f"done in {time.monotonic() - started:.1f} s (exit status {status})")
    return status


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument(
        "example",
        nargs="?",
        default=str(DEFAULT_EXAMPLE),
        help="the example's directory, e.g. examples/events (default examples/parallel_review)",
    )
    parser.add_argument(
        "--timeout", type=float, default=300.0, help="seconds main.py may take (default 300)"
    )
    parser.add_argument(
        "--test-clock",
        action="store_true",
        help="start the server with --test-clock (examples/schedules moves its time forward)",
    )
    parser.add_argument(
        "--server-arg",
        action="append",
        default=[],
        metavar="ARG",
        help="one more argument for `polos-server start` (repeatable; write "
        "--server-arg=--flag for a flag)",
    )
    parser.add_argument(
        "--keep",
        action="store_true",
        help="when the demo fails, keep its temporary directory (database, logs)",
    )
    args = parser.parse_args()
    if importlib.util.find_spec("polos") is None:
        say(f"polos is not installed for {sys.executable}: run `make install`, then `make demo`")
        return 1
    try:
        example = find_example(args.example)
    except DemoError as exc:
        say(f"error: {exc}")
        return 1
    server_args = list(args.server_arg)
    if args.test_clock and "--test-clock" not in server_args:
        server_args.append("--test-clock")
    # Ctrl-C raises KeyboardInterrupt even when started with SIGINT ignored (a background job).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _on_sigterm)
    return run(example, server_args, args.timeout, args.keep)


if __name__ == "__main__":
    sys.exit(main())
