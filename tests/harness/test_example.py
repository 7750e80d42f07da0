"""examples/testing (users' tests of the parallel-review workflows with polos.testing) passes.

It runs in a pytest subprocess of its own: its workflows share IDs with other apps of this
suite (`task`, `process_chunk`, `data_processor` in tests/e2e/apps/seed.py), and one process
can define a workflow ID only once."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
TIMEOUT = 240.0
# Plugins of this suite's other tests that only slow the subprocess's start.
QUIET_PLUGINS = ["-p", "no:cacheprovider", "-p", "no:schemathesis", "-p", "no:hypothesispytest"]


def test_example_tests_pass() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", *QUIET_PLUGINS, "examples/testing"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    passed = re.search(r"(\d+) passed", out)
    assert passed and int(passed.group(1)) >= 6, out
    assert not re.search(r"\d+ (failed|error|skipped)", out), out
