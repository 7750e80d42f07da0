"""The bench scripts' common ground (re-exported by bench/harness.py): the paths, the log line,
machine info, the JSON lines a run appends to, and the statistics of its figures.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import platform
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

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
        "speed_probe": speed_probe(),
        # The package's dependencies are ranges: what this run had.
        "packages": {name: _version(name) for name in _PACKAGES},
    }


_PACKAGES = ("uvicorn", "starlette", "fastapi", "pydantic", "orjson", "uvloop", "httptools")


def _version(name: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(name)
    except PackageNotFoundError:
        return None


def probe_text(machine: dict[str, Any]) -> str:
    """The speed probe for a summary line ('' for records from before it existed)."""
    probe = machine.get("speed_probe")
    if not probe:
        return ""
    return (
        f", speed probe: Python loop {probe['python_loop_ms']:.1f} ms, "
        f"fdatasync {probe['fdatasync_ms']:.2f} ms"
    )


def speed_probe() -> dict[str, float]:
    """How fast this machine is right now, for comparing runs of different days: these VMs
    differ by more than 2x from one session to the next (2026-11-28: the SQL floor 23,437
    children/s one day, 9,343 the next, same code). Best of five:

    - python_loop_ms: a fixed loop of 1,000,000 additions in the interpreter (one core);
    - fdatasync_ms: a 4 KiB append and `fdatasync` in the temporary directory (where the
      benchmarks' SQLite files live)."""
    loops = []
    for _ in range(5):
        t0 = time.perf_counter()
        total = 0
        for i in range(1_000_000):
            total += i
        loops.append(time.perf_counter() - t0)
    syncs = []
    with tempfile.TemporaryDirectory(prefix="polos-probe-") as d:
        fd = os.open(os.path.join(d, "probe"), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            for _ in range(5):
                t0 = time.perf_counter()
                os.write(fd, b"\0" * 4096)
                os.fdatasync(fd)
                syncs.append(time.perf_counter() - t0)
        finally:
            os.close(fd)
    return {
        "python_loop_ms": round(min(loops) * 1000, 2),
        "fdatasync_ms": round(min(syncs) * 1000, 3),
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
