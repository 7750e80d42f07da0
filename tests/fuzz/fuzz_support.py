"""What the fuzz tests of the HTTP API share: their settings, the server under test with the
real identifiers the requests use (`Fuzz`; the `fuzz` fixture in conftest.py starts it), and
the checks of an error body and of the server log.

The suite fuzzes the HTTP API from its OpenAPI schema (schemathesis) against one real server
process on a temporary SQLite file, shared by all its modules, which run in this order (pytest
runs a directory's modules in name order):

- test_api_fuzz.py, `test_fuzz_every_operation`: stateless fuzzing of every operation of the
  live `/openapi.json` (schemathesis' Hypothesis strategies, schema-valid and schema-violating
  inputs). Every answer must be: not a 5xx; for a 4xx, JSON with the error body
  `{"error": {"code": str, "message": str}}`; for a 2xx, what the schema declares; and in time
  (`REQUEST_TIMEOUT`, or a long-poll's own bound plus `GRACE`). Hooks mix real identifiers into
  the generated requests (a registered worker, a queued execution, a registered workflow) so
  that the routes get past their lookups, and set `X-Project-ID` to odd values.
- test_api_targeted.py: `test_odd_project_header`, every operation with odd `X-Project-ID`
  values sent as raw bytes (NUL, control characters, UTF-8, invalid UTF-8, very long, empty,
  twice); `test_long_polls_answer_within_their_bound`, the two long-polls wait and answer on
  time; `test_integers_beyond_column_range`, integers no database column holds.
- test_server_after_fuzz.py, `test_server_still_works`: after all that, a real worker runs a
  workflow to completion; `test_server_log_is_clean`: the server logged no traceback.

Long-polls: while fuzzing, valid `wait_seconds` (claim) and `timeout` (wait) values are lowered
to at most `LONG_POLL_CAP` seconds so that the run stays short (values outside 0..60 and of the
wrong type are left alone: they must be refused). Every request still has to answer within its
declared bound plus `GRACE`.

Reproducible: each operation and generation mode has its own Hypothesis seed, derived from
`FUZZ_SEED`, and runs `MAX_EXAMPLES` examples (both can be changed by environment variables for
a deeper run). A summary (requests per operation and status) is printed by
`test_server_still_works` (`pytest -s tests/fuzz` shows it).
"""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass, field

import requests

from polos import protocol
from tests.e2e.conftest import Server

REQUEST_TIMEOUT = 10.0
GRACE = 10.0

FUZZ_WORKFLOW = "fuzz_workflow"
FUZZ_QUEUE = "fuzz_queue"
REGISTER_PATH = f"{protocol.API_PREFIX}/workers"


@dataclass
class Fuzz:
    """The server under test, the real identifiers the hooks use, and what was sent."""

    server: Server
    worker_id: str
    execution_id: str
    # One for the generated requests, one for ours (a connection that the server closes
    # after a 5xx must not fail our own next request).
    session: requests.Session = field(default_factory=requests.Session)
    setup_session: requests.Session = field(default_factory=requests.Session)
    counts: Counter[str] = field(default_factory=Counter)

    @property
    def api(self) -> str:
        return f"{self.server.url}{protocol.API_PREFIX}"

    def register_worker(self) -> None:
        """(Again:) the fuzzer deletes it, re-registers it with other workflows, or the server
        forgets it after a silence."""
        response = self.setup_session.post(
            f"{self.api}/workers",
            json={
                "worker_id": self.worker_id,
                "workflows": [{"workflow_id": FUZZ_WORKFLOW, "queue_name": FUZZ_QUEUE}],
            },
            timeout=REQUEST_TIMEOUT,
        )
        assert response.status_code == 200, response.text
        self.counts["setup requests"] += 1

    def server_log(self) -> str:
        assert self.server.proc is not None
        return self.server.proc.log()


def server_traceback(log: str, which: int = -1) -> str:
    """One traceback of the server log (the last by default), with the log line before it."""
    starts = [m.start() for m in re.finditer(r"^Traceback \(most recent call last\):", log, re.M)]
    if not starts:
        return "(no traceback in the server log)"
    start = starts[which]
    lines = log[start:].splitlines()
    shown = lines[:1]
    for line in lines[1:]:
        shown.append(line)
        if line and not line[0].isspace():  # the exception line ends it
            break
    before = log[:start].rstrip("\n").rsplit("\n", 1)[-1]
    return f"server log ({len(starts)} traceback(s) in all):\n{before}\n" + "\n".join(shown)


def check_error_body(status: int, content_type: str, body: bytes) -> str | None:
    """None when `body` is the API's error body; else what is wrong with it."""
    if not content_type.startswith("application/json"):
        return f"{status} with content-type {content_type!r}, not JSON: {body[:500]!r}"
    try:
        parsed = json.loads(body)
    except ValueError:
        return f"{status} with a body that is not JSON: {body[:500]!r}"
    error = parsed.get("error") if isinstance(parsed, dict) else None
    if not (
        isinstance(error, dict)
        and isinstance(error.get("code"), str)
        and error["code"]
        and isinstance(error.get("message"), str)
    ):
        return f'{status} without the {{"error": {{"code", "message"}}}} shape: {parsed!r}'
    return None
