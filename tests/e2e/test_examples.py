"""Every example under examples/, end to end: `scripts/demo.py examples/NAME` starts a server
on a temporary SQLite file and the example's worker, runs its main.py, and stops everything.
Each main.py checks its own results and exits with status 1 when one is wrong, so the test
asserts the demo's exit status (0) and that it finishes in time.

Examples are discovered: every directory under examples/ is one (a directory whose name starts
with "." or "_" is not), so a new example is covered without touching this file, and it must
have README.md, worker.py, workflows.py and main.py.

Extra arguments of scripts/demo.py come from DEMO_ARGS, by example name. An example whose
main.py moves the server's clock (`polos.testing.advance_clock`) needs `--test-clock`: without
it, examples/schedules skips that part and still exits 0, so add such an example there.

examples/parallel_review is left out: it is `make demo`'s example, run (and its output checked
line by line) by test_example_parallel_review.py. examples/testing is left out too: it is a test
suite (polos.testing), not a demo; tests/harness/test_example.py runs it.

Self-contained and SQLite-only: uses no fixture of this suite (the demo starts its own
processes), so it does not take the `backend` parameter.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DEMO = REPO / "scripts" / "demo.py"
EXAMPLES = REPO / "examples"
# Covered by test_example_parallel_review.py and tests/harness/test_example.py.
EXCLUDED = {"parallel_review", "testing"}
DEMO_ARGS: dict[str, list[str]] = {
    "schedules": ["--test-clock"],
}
REQUIRED_FILES = ("README.md", "worker.py", "workflows.py", "main.py")
# Each example takes well under a minute; this catches a hang. demo.py's own limit for main.py
# comes first, so that a stuck main.py is reported with the server's and the worker's logs.
DEMO_TIMEOUT = 180.0
MAIN_TIMEOUT = DEMO_TIMEOUT - 45.0
OUTPUT_LINES_SHOWN = 150


def _examples() -> list[str]:
    return sorted(
        p.name
        for p in EXAMPLES.iterdir()
        if p.is_dir() and not p.name.startswith((".", "_")) and p.name not in EXCLUDED
    )


def _tail(out: str) -> str:
    return "\n".join(out.splitlines()[-OUTPUT_LINES_SHOWN:])


def _run_demo(args: list[str]) -> tuple[int, str]:
    env = dict(os.environ)
    env["PYTHONUNBUFFERED"] = "1"
    proc = subprocess.Popen(
        [sys.executable, str(DEMO), *args],
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
        pytest.fail(f"{' '.join(args)} did not finish within {DEMO_TIMEOUT:.0f} s:\n{_tail(out)}")
    return proc.returncode, out


@pytest.mark.timeout(DEMO_TIMEOUT + 60)
@pytest.mark.parametrize("name", _examples())
def test_example_runs_end_to_end(name: str) -> None:
    example = EXAMPLES / name
    missing = [f for f in REQUIRED_FILES if not (example / f).is_file()]
    assert not missing, f"examples/{name} has no {', '.join(missing)}"

    args = [f"examples/{name}", "--timeout", str(MAIN_TIMEOUT), *DEMO_ARGS.get(name, [])]
    status, out = _run_demo(args)
    assert status == 0, f"scripts/demo.py {' '.join(args)} exited {status}:\n{_tail(out)}"
    assert "[demo] running: python main.py" in out, _tail(out)
