"""`make demo` end to end: scripts/demo.py starts a server and the parallel-review example's
worker, runs its main.py, and stops everything. Checks the example's output, the exit status,
and that nothing is left behind (processes, temporary directory).

Self-contained: uses no fixture of this suite (the demo starts its own processes).
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DEMO = REPO / "scripts" / "demo.py"
DEMO_TIMEOUT = 240.0

EXPECTED_LINES = [
    # 1. single review
    "Approved: True",
    "Score: 8/10",
    # 2. parallel review
    "Total Reviews: 4",
    "Approved Count: 4/4",
    "Average Score: 8.0/10",
    "All Approved: True",
    # 3. fan-out/fan-in
    "Total items: 25",
    "Chunks processed: 3",
    "Items processed: 25",
    "- ITEM_0",
    # 4. fire and forget
    "Tasks launched: 5",
    # end
    "All demos completed!",
]
UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"


def _run_demo() -> tuple[int, str]:
    env = dict(os.environ)
    env["PYTHONUNBUFFERED"] = "1"
    proc = subprocess.Popen(
        [sys.executable, str(DEMO)],
        cwd=REPO,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        out, _ = proc.communicate(timeout=DEMO_TIMEOUT)
    except subprocess.TimeoutExpired:
        # SIGTERM lets the demo stop its server and worker before it exits.
        proc.send_signal(signal.SIGTERM)
        try:
            out, _ = proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, _ = proc.communicate()
        pytest.fail(f"the demo did not finish within {DEMO_TIMEOUT:.0f} s:\n{out}")
    return proc.returncode, out


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie (not yet reaped by its parent) is gone for our purposes.
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


@pytest.mark.timeout(DEMO_TIMEOUT + 60)
def test_make_demo_runs_the_parallel_review_example() -> None:
    status, out = _run_demo()
    assert status == 0, f"the demo exited with status {status}:\n{out}"

    lines = [line.strip() for line in out.splitlines()]
    missing = [expected for expected in EXPECTED_LINES if expected not in lines]
    assert not missing, f"missing lines {missing} in the demo's output:\n{out}"

    # The 5 launched tasks' execution IDs follow "Tasks launched: 5", and each task completed.
    after = "\n".join(lines[lines.index("Tasks launched: 5") :])
    launched = re.findall(rf"^- ({UUID})$", after, flags=re.MULTILINE)
    assert len(launched) == 5 and len(set(launched)) == 5, out
    assert len(re.findall(r"^[0-9a-f]{8}\.\.\. completed: ", after, flags=re.MULTILINE)) == 5

    # Sequential vs parallel: 4 reviews of >= 0.5 s each take >= 2 s one after the other.
    sequential = re.search(r"^\s*Sequential: 4 reviews in ([\d.]+) s$", out, flags=re.MULTILINE)
    parallel = re.search(r"^\s*Parallel:\s+4 reviews in ([\d.]+) s$", out, flags=re.MULTILINE)
    assert sequential and parallel, out
    assert float(sequential.group(1)) >= 2.0
    assert float(parallel.group(1)) < float(sequential.group(1)), out
    assert re.search(r"Speedup: [\d.]+x faster in parallel", out), out

    # Nothing is left behind: the server and the worker stopped, the temporary dir is gone.
    pids = [int(p) for p in re.findall(r"\[demo\] stopping the \w+ \(pid (\d+)\)", out)]
    assert len(pids) >= 2, out
    assert not [pid for pid in pids if _alive(pid)], out
    database = re.search(r"database sqlite:///(\S+)\)", out)
    assert database, out
    assert not Path(database.group(1)).parent.exists(), out
