"""After the other fuzz modules (this one runs last, by name): the server still serves a real
workflow and logged no traceback. The suite is described in tests/fuzz/fuzz_support.py.
"""

from __future__ import annotations

from pathlib import Path

import polos
from tests.e2e.apps import errors
from tests.e2e.conftest import Processes, _make_worker
from tests.fuzz.fuzz_support import Fuzz, server_traceback

# --------------------------------------------------------------------------- still works


async def test_server_still_works(fuzz: Fuzz, tmp_path: Path) -> None:
    """After the fuzzing, a real worker serves a real workflow to completion."""
    procs = Processes(tmp_path)
    try:
        _make_worker(procs, fuzz.server, "tests.e2e.apps.errors", workflows=["echo"])
        async with polos.PolosClient(api_url=fuzz.server.url) as client:
            result = await errors.echo.run(client, {"after": "fuzzing"}, timeout=60.0)
        assert result == {"echo": {"after": "fuzzing"}}
    finally:
        procs.stop_all()
    assert fuzz.server.proc is not None and fuzz.server.proc.alive()
    _print_counts(fuzz)


def test_server_log_is_clean(fuzz: Fuzz) -> None:
    """No traceback and no internal error in the server's log (also those that no response
    showed, e.g. of background tasks)."""
    log = fuzz.server_log()
    first = server_traceback(log, which=0)
    for marker in ("Traceback", "internal error"):
        assert marker not in log, f"the server logged {marker!r}; the first traceback:\n{first}"


def _print_counts(fuzz: Fuzz) -> None:
    total = sum(n for key, n in fuzz.counts.items() if " -> " in key)
    print(f"\n{total} requests (+{fuzz.counts['setup requests']} set-up requests):")
    for key, n in sorted(fuzz.counts.items()):
        print(f"  {n:6d}  {key}")
