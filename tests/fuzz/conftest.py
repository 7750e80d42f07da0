"""The fuzz tests' server (tests/fuzz/fuzz_support.py describes the suite).

One server for the whole package, not one per module: test_server_after_fuzz.py checks that the
server survived what the other modules sent it (it still runs a workflow, its log has no
traceback), so they must all talk to the same one.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests

from polos import protocol
from tests.e2e.conftest import Processes, Server, free_port
from tests.fuzz.fuzz_support import (
    FUZZ_QUEUE,
    FUZZ_WORKFLOW,
    REGISTER_PATH,
    REQUEST_TIMEOUT,
    Fuzz,
)


@pytest.fixture(scope="package")
def fuzz(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fuzz]:
    tmp = tmp_path_factory.mktemp("fuzz")
    procs = Processes(tmp)
    server = Server(procs, f"sqlite:///{tmp / 'fuzz.db'}", free_port(), lease_seconds=None)
    try:
        server.start()
        with requests.Session() as http:
            registered = http.post(
                f"{server.url}{REGISTER_PATH}",
                json={"workflows": [{"workflow_id": FUZZ_WORKFLOW, "queue_name": FUZZ_QUEUE}]},
                timeout=REQUEST_TIMEOUT,
            )
            assert registered.status_code == 200, registered.text
            submitted = http.post(
                f"{server.url}{protocol.API_PREFIX}/workflows/{FUZZ_WORKFLOW}/run",
                json={"payload": {"n": 1}},
                timeout=REQUEST_TIMEOUT,
            )
            assert submitted.status_code == 200, submitted.text
        state = Fuzz(server, registered.json()["worker_id"], submitted.json()["execution_id"])
        state.counts["setup requests"] += 2
        yield state
        state.session.close()
        state.setup_session.close()
    finally:
        procs.stop_all()
