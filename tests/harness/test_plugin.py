"""The pytest plugin (entry point `pytest11`): the `polos_env` fixture, its `polos_env` marker,
and the message when pytest-asyncio is missing or disabled (in a pytest subprocess)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from polos.testing import Environment
from tests.harness import apps

pytestmark = pytest.mark.polos_env(workflows=apps.PLAIN, max_retries=0)

SUBPROCESS_TIMEOUT = 120.0
# Plugins of this suite's other tests that only slow the subprocess's start.
QUIET_PLUGINS = ["-p", "no:cacheprovider", "-p", "no:schemathesis", "-p", "no:hypothesispytest"]


async def test_polos_env_is_a_started_environment(polos_env: Environment) -> None:
    assert isinstance(polos_env, Environment)
    # The module's marker reached the Environment.
    assert polos_env.settings.max_workflow_retries == 0
    assert set(polos_env.worker.workflows) == {wf.id for wf in apps.PLAIN}
    assert await apps.h_square.run(polos_env.client, {"n": 9}) == 81
    handle = await apps.h_sleeper.invoke(polos_env.client, {"name": "fixture", "hours": 3})
    await polos_env.advance(hours=3)
    assert await handle.result(polos_env.client, timeout=5) == "fixture"


@pytest.mark.polos_env(workflows=[apps.h_greet], lease_seconds=4.0)
async def test_the_closest_marker_wins(polos_env: Environment) -> None:
    assert polos_env.settings.lease_seconds == 4.0
    assert set(polos_env.worker.workflows) == {"h_greet"}


def _pytest(tmp_path: Path, *args: str, pythonpath: Path | None = None) -> tuple[int, str]:
    (tmp_path / "test_uses_env.py").write_text(
        "async def test_uses_env(polos_env):\n    pass\n", encoding="utf-8"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    if pythonpath is not None:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(pythonpath), env.get("PYTHONPATH")]))
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", *QUIET_PLUGINS, *args, "test_uses_env.py"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=SUBPROCESS_TIMEOUT,
    )
    return proc.returncode, proc.stdout + proc.stderr


def test_without_pytest_asyncio_the_fixture_says_what_is_missing(tmp_path: Path) -> None:
    # Installed but disabled.
    status, out = _pytest(tmp_path, "-p", "no:asyncio")
    assert status == 1, out
    assert "the polos_env fixture is async and needs the pytest-asyncio plugin" in out, out

    # Not installed at all: an importable-looking package that refuses to import.
    fake = tmp_path / "site"
    (fake / "pytest_asyncio").mkdir(parents=True)
    (fake / "pytest_asyncio" / "__init__.py").write_text(
        "raise ImportError('pytest-asyncio is not installed (simulated)')\n", encoding="utf-8"
    )
    status, out = _pytest(tmp_path, "-p", "no:asyncio", pythonpath=fake)
    assert status == 1, out
    assert "the polos_env fixture is async and needs the pytest-asyncio plugin" in out, out
