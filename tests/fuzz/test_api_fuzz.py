"""Fuzzing the HTTP API from its OpenAPI schema (schemathesis), against a real server process
on a temporary SQLite file.

- `test_fuzz_every_operation`: stateless fuzzing of every operation of the live
  `/openapi.json` (schemathesis' Hypothesis strategies, schema-valid and schema-violating
  inputs). Every answer must be: not a 5xx; for a 4xx, JSON with the error body
  `{"error": {"code": str, "message": str}}`; for a 2xx, what the schema declares; and in time
  (`REQUEST_TIMEOUT`, or a long-poll's own bound plus `GRACE`). Hooks mix real identifiers into
  the generated requests (a registered worker, a queued execution, a registered workflow) so
  that the routes get past their lookups, and set `X-Project-ID` to odd values.
- `test_odd_project_header`: every operation with odd `X-Project-ID` values sent as raw bytes
  (NUL, control characters, UTF-8, invalid UTF-8, very long, empty, twice).
- `test_long_polls_answer_within_their_bound`: the two long-polls wait and answer on time.
- `test_server_still_works`: after all that, a real worker runs a workflow to completion;
  `test_server_log_is_clean`: the server logged no traceback.

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
import math
import os
import re
import socket
import time
import zlib
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import hypothesis
import hypothesis.errors
import hypothesis.strategies as st
import pytest
import requests
import schemathesis
from schemathesis import Case, GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

import polos
from polos import protocol
from polos.server.clock import SAFETY_NET_SECONDS
from tests.e2e.apps import errors
from tests.e2e.conftest import HOST, Processes, Server, _make_worker, free_port

# A deeper or another run: POLOS_FUZZ_EXAMPLES=1000 POLOS_FUZZ_SEED=7 pytest -s tests/fuzz
FUZZ_SEED = int(os.environ.get("POLOS_FUZZ_SEED", "20261127"))
MAX_EXAMPLES = int(os.environ.get("POLOS_FUZZ_EXAMPLES", "100"))
REQUEST_TIMEOUT = 10.0
# An event stream never ends by itself: schemathesis reads one for the request's timeout in
# total, then cuts it. Streams are read this long.
STREAM_READ_SECONDS = 2.0
GRACE = 10.0
LONG_POLL_CAP = 0.5
# Default waits of the long-polls when the parameter is absent (see protocol / routes).
CLAIM_DEFAULT_WAIT = 30.0
WAIT_DEFAULT_TIMEOUT = 30.0

FUZZ_WORKFLOW = "fuzz_workflow"
FUZZ_QUEUE = "fuzz_queue"
CLAIM_PATH = f"{protocol.API_PREFIX}/workers/{{worker_id}}/claim"
WAIT_PATH = f"{protocol.API_PREFIX}/executions/{{execution_id}}/wait"
REGISTER_PATH = f"{protocol.API_PREFIX}/workers"

# X-Project-ID values the fuzzer mixes into its requests (all sendable by `requests`; the raw
# test adds what no HTTP client library sends).
PROJECT_HEADERS: list[str | bytes] = [
    "default",
    "",
    "other-project",
    "p" * protocol.MAX_ID_LENGTH,
    "p" * (protocol.MAX_ID_LENGTH + 1),
    "p" * 10_000,
    "caf\xe9",  # latin-1
    "プロジェクト".encode(),
    "🚀\u202e".encode(),
    b"\xff\xfe",  # not UTF-8
    b"\xed\xa0\x80",  # a UTF-8-encoded lone surrogate
    "a\tb",
]
# Integers beyond what a 32- or 64-bit database column holds (and just inside).
BOUNDARY_INTEGERS = [2**31, 2**53 + 1, 2**63 - 1, 2**63, 2**64, -(2**63) - 1]
RAW_PROJECT_HEADERS: list[bytes] = [
    b"",
    b"\x00",
    b"pro\x00ject",
    b"\x01\x7f",
    b"\x1b[31mred",
    "プロジェクト".encode(),
    "🚀".encode(),
    b"\xff\xfe",
    b"\xed\xa0\x80",
    b"x" * 256,
    b"x" * 100_000,
    b" ",
    b" padded ",
    b"a\rb",
]

# Schemathesis' defaults, explicitly (no schemathesis.toml found on the way is read).
CONFIG = schemathesis.Config.from_dict({})


# --------------------------------------------------------------------------- fixtures


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


@pytest.fixture(scope="module")
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


@pytest.fixture(scope="module")
def api_schema(fuzz: Fuzz) -> Any:
    """The live schema, with the hooks that mix real identifiers and odd headers in."""
    schema = schemathesis.openapi.from_url(
        f"{fuzz.server.url}/openapi.json", config=CONFIG, timeout=REQUEST_TIMEOUT
    )

    def flatmap_case(context: Any, case: Case) -> st.SearchStrategy[Case]:
        return st.tuples(
            st.one_of(st.none(), st.sampled_from(PROJECT_HEADERS)),
            st.booleans(),
            st.one_of(st.none(), st.none(), st.sampled_from(BOUNDARY_INTEGERS)),
        ).map(lambda drawn: _adjust(fuzz, case, *drawn))

    schema.hook(flatmap_case)
    return schema


def _adjust(
    fuzz: Fuzz, case: Case, project: str | bytes | None, real: bool, integer: int | None
) -> Case:
    """Real identifiers in about half the cases; an X-Project-ID header in about half; every
    integer of the body replaced by a boundary value in about a third; valid long-poll waits
    lowered to `LONG_POLL_CAP` (in every case)."""
    if integer is not None and isinstance(case.body, dict | list):
        case.body = _replace_integers(case.body, integer)
    if project is not None:
        case.headers = {**(case.headers or {}), "X-Project-ID": project}
    params = case.path_parameters
    if real and params is not None:
        if "worker_id" in params:
            params["worker_id"] = fuzz.worker_id
        if "execution_id" in params:
            params["execution_id"] = fuzz.execution_id
        if "workflow_id" in params:
            params["workflow_id"] = FUZZ_WORKFLOW
    body = case.body
    if real and isinstance(body, dict):
        for item in _dicts(body.get("workflows")):
            if "workflow_id" in item:
                item["workflow_id"] = FUZZ_WORKFLOW
        for item in _dicts(body.get("items")):
            if "execution_id" in item:
                item["execution_id"] = fuzz.execution_id
        if isinstance(body.get("execution_ids"), list) and body["execution_ids"]:
            body["execution_ids"][0] = fuzz.execution_id
    if case.operation.path == CLAIM_PATH and isinstance(body, dict):
        wait = body.get("wait_seconds", CLAIM_DEFAULT_WAIT)
        if _valid_wait(wait):
            body["wait_seconds"] = min(float(wait), LONG_POLL_CAP)
    if case.operation.path == WAIT_PATH:
        query = dict(case.query or {})
        timeout = query.get("timeout", WAIT_DEFAULT_TIMEOUT)
        if _valid_wait(timeout):
            lowered = min(_number(timeout), LONG_POLL_CAP)
            query["timeout"] = str(lowered) if isinstance(timeout, str) else lowered
            case.query = query
    return case


def _replace_integers(value: Any, integer: int) -> Any:
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return integer
    if isinstance(value, list):
        return [_replace_integers(v, integer) for v in value]
    if isinstance(value, dict):
        return {k: _replace_integers(v, integer) for k, v in value.items()}
    return value


def _dicts(value: Any) -> list[dict[str, Any]]:
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


def _number(value: Any) -> float:
    if isinstance(value, bool):
        raise ValueError("a boolean")
    return float(value)


def _valid_wait(value: Any) -> bool:
    """A wait the server accepts (0..60 seconds)."""
    try:
        number = _number(value)
    except (TypeError, ValueError):
        return False
    return math.isfinite(number) and 0 <= number <= protocol.MAX_LONG_POLL_SECONDS


def _declared_wait(case: Case) -> float:
    """How long this request may legitimately take before answering (its long-poll bound)."""
    if case.method.upper() == "POST" and case.operation.path == CLAIM_PATH:
        body = case.body
        value = body.get("wait_seconds", CLAIM_DEFAULT_WAIT) if isinstance(body, dict) else 0
        return _number(value) if _valid_wait(value) else 0.0
    if case.method.upper() == "GET" and case.operation.path == WAIT_PATH:
        value = (case.query or {}).get("timeout", WAIT_DEFAULT_TIMEOUT)
        return _number(value) if _valid_wait(value) else 0.0
    return 0.0


def _targets_real_worker(fuzz: Fuzz, case: Case) -> bool:
    return (case.path_parameters or {}).get("worker_id") == fuzz.worker_id


# --------------------------------------------------------------------------- checks


def _describe_request(case: Case, response: schemathesis.Response | None) -> str:
    """The request as sent (when an answer came back), else as generated."""
    if response is not None:
        sent = response.request
        body = sent.body
        if isinstance(body, bytes):
            body = body.decode("utf-8", "replace")
        text = (
            f"{sent.method} {sent.url}\nheaders: {dict(sent.headers)!r}\nbody: {str(body)[:3000]}"
        )
    else:
        text = (
            f"{case.method.upper()} {case.formatted_path} query={case.query!r}\n"
            f"headers: {case.headers!r}\nbody: {str(case.body)[:3000]}"
        )
    try:
        return f"{text}\nreproduce: {case.as_curl_command()}"
    except Exception:  # the curl command is a convenience; never hide the finding
        return text


def _traceback(log: str, which: int = -1) -> str:
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


# --------------------------------------------------------------------------- the fuzzing


def check_case(fuzz: Fuzz, case: Case) -> None:
    """Send one generated request; fail on a 5xx, a hang, a late long-poll, a 4xx without the
    error body, or a 2xx that does not match the schema."""
    if _targets_real_worker(fuzz, case):
        fuzz.register_worker()
    declared = _declared_wait(case)
    streams = case.operation.path.endswith("/stream")
    if declared:
        timeout = declared + GRACE
    else:
        timeout = STREAM_READ_SECONDS if streams else REQUEST_TIMEOUT
    label = f"{case.method.upper()} {case.operation.path}"
    started = time.monotonic()
    try:
        response = case.call(session=fuzz.session, timeout=timeout)
    except requests.Timeout:
        fuzz.counts[f"{label} -> timeout"] += 1
        raise AssertionError(
            f"HANG: no answer within {timeout} s (declared wait {declared} s)\n"
            f"{_describe_request(case, None)}\n{_traceback(fuzz.server_log())}"
        ) from None
    except requests.ConnectionError as exc:
        fuzz.counts[f"{label} -> connection error"] += 1
        raise AssertionError(
            f"CONNECTION ERROR: {exc}\n{_describe_request(case, None)}\n"
            f"{_traceback(fuzz.server_log())}"
        ) from None
    elapsed = time.monotonic() - started
    status = response.status_code
    fuzz.counts[f"{label} -> {status}"] += 1
    text = response.content[:2000].decode("utf-8", "replace")
    content_type = (response.headers.get("content-type") or [""])[0]
    where = f"{_describe_request(case, response)}\nanswer: {status} {content_type} {text}"

    assert status < 500, f"SERVER ERROR\n{where}\n{_traceback(fuzz.server_log())}"
    if declared:
        assert elapsed <= declared + GRACE, (
            f"LONG-POLL LATE: answered after {elapsed:.1f} s, declared {declared} s\n{where}"
        )
    elif streams and status == 200:
        assert content_type.startswith("text/event-stream"), f"NOT A STREAM\n{where}"
        assert elapsed <= STREAM_READ_SECONDS + GRACE, f"STREAM NOT CUT: {elapsed:.1f} s\n{where}"
        # Whatever arrived is whole server-sent-event frames (events or keep-alives).
        assert all(
            line == "" or line.startswith(("id: ", "data: ", ": keepalive"))
            for line in response.content.decode("utf-8").splitlines()
        ), f"NOT SSE FRAMES\n{where}"
        return
    else:
        assert elapsed <= REQUEST_TIMEOUT, f"SLOW: answered after {elapsed:.1f} s\n{where}"
    if 400 <= status < 500:
        problem = check_error_body(status, content_type, response.content)
        assert problem is None, f"BAD ERROR BODY: {problem}\n{where}"
    elif status == 204:
        assert response.content == b"", f"204 with a body\n{where}"
    else:
        # Schema conformance of successful answers (and, again, no server error).
        case.validate_response(response, checks=[not_a_server_error, response_schema_conformance])


def _render(exc: BaseException) -> str:
    """An exception Hypothesis raised, with its falsifying example(s)."""
    if isinstance(exc, BaseExceptionGroup):
        return "\n\n".join(_render(e) for e in exc.exceptions)
    notes = "\n".join(getattr(exc, "__notes__", []))
    return f"{type(exc).__name__}: {exc}\n{notes}"


@pytest.mark.timeout(max(300, 3 * MAX_EXAMPLES))
def test_fuzz_every_operation(fuzz: Fuzz, api_schema: Any) -> None:
    """Stateless fuzzing: `MAX_EXAMPLES` schema-valid and `MAX_EXAMPLES` schema-violating
    requests for every operation of the live schema; every finding is collected and reported."""
    findings: dict[str, str] = {}
    operations = 0
    started = time.monotonic()
    for result in api_schema.get_all_operations():
        operation = result.ok()
        operations += 1
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            # A seed per operation and mode: adding an operation changes no other's inputs.
            @hypothesis.seed(FUZZ_SEED + zlib.crc32(f"{operation.label} {mode.value}".encode()))
            @hypothesis.settings(
                max_examples=MAX_EXAMPLES,
                database=None,
                deadline=None,
                suppress_health_check=list(hypothesis.HealthCheck),
                print_blob=False,
            )
            @hypothesis.given(case=operation.as_strategy(generation_mode=mode))
            def fuzz_operation(case: Case) -> None:
                check_case(fuzz, case)

            try:
                fuzz_operation()
            except hypothesis.errors.Unsatisfiable:
                pass  # nothing to violate (e.g. no parameters and no body): no negative cases
            except Exception as exc:
                if not isinstance(exc.__cause__, Exception | None):
                    raise  # Hypothesis wrapped an interruption (e.g. pytest-timeout's)
                findings[f"{operation.label} ({mode.value})"] = _render(exc)
    fuzz.counts["fuzzing seconds"] = round(time.monotonic() - started)
    assert operations >= 10, f"only {operations} operations in the schema"
    assert not findings, f"{len(findings)} operation(s) with findings:\n\n" + "\n\n".join(
        f"===== {label}\n{text}" for label, text in findings.items()
    )


# --------------------------------------------------------------------------- raw requests


@dataclass
class RawResponse:
    status: int
    headers: dict[str, str]
    body: bytes


def raw_request(
    port: int, method: str, target: str, headers: list[tuple[bytes, bytes]], body: bytes = b""
) -> RawResponse:
    """One HTTP/1.1 request written byte for byte (no client library would send NUL bytes or
    invalid UTF-8 in a header)."""
    head = f"{method} {target} HTTP/1.1\r\nHost: {HOST}:{port}\r\nConnection: close\r\n".encode()
    for name, value in headers:
        head += name + b": " + value + b"\r\n"
    if body or method in ("POST", "PUT", "PATCH"):
        head += b"Content-Type: application/json\r\nContent-Length: %d\r\n" % len(body)
    with socket.create_connection((HOST, port), timeout=REQUEST_TIMEOUT) as sock:
        sock.sendall(head + b"\r\n" + body)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head_bytes, _, rest = data.partition(b"\r\n\r\n")
    lines = head_bytes.decode("latin-1").split("\r\n")
    match = re.match(r"HTTP/1\.[01] (\d{3})", lines[0])
    assert match, f"not an HTTP answer: {data[:500]!r}"
    parsed = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        parsed[name.strip().lower()] = value.strip()
    return RawResponse(int(match.group(1)), parsed, rest)


# Minimal valid bodies by request schema name; other operations get `{}`.
VALID_BODIES: dict[str, Any] = {
    "SubmitRequest": {"payload": {"n": 2}},
    "BatchSubmitRequest": {"workflows": [{"workflow_id": FUZZ_WORKFLOW}]},
    "RegisterWorkerRequest": {
        "workflows": [{"workflow_id": FUZZ_WORKFLOW, "queue_name": FUZZ_QUEUE}]
    },
    "HeartbeatRequest": {"execution_ids": []},
    "ClaimRequest": {"max": 1, "wait_seconds": 0},
    "ReportRequest": {"items": []},
}


def _operations(raw_schema: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    methods = {"get", "post", "put", "patch", "delete"}
    return [
        (method.upper(), path, spec)
        for path, item in raw_schema["paths"].items()
        for method, spec in item.items()
        if method in methods
    ]


def _valid_request(fuzz: Fuzz, path: str, spec: dict[str, Any]) -> tuple[str, bytes]:
    """A request target and body for `path` that the server would accept (real identifiers)."""
    values = {
        "worker_id": fuzz.worker_id,
        "execution_id": fuzz.execution_id,
        "workflow_id": FUZZ_WORKFLOW,
    }
    target = re.sub(r"\{(\w+)\}", lambda m: values.get(m.group(1), "x"), path)
    query = [
        f"{p['name']}=0"
        for p in spec.get("parameters", [])
        if p.get("in") == "query" and p["name"] in ("timeout", "wait_seconds")
    ]
    if query:
        target += "?" + "&".join(query)
    body = b""
    content = spec.get("requestBody", {}).get("content", {}).get("application/json")
    if content is not None:
        name = content["schema"].get("$ref", "").rsplit("/", 1)[-1]
        body = json.dumps(VALID_BODIES.get(name, {})).encode()
    return target, body


def test_odd_project_header(fuzz: Fuzz) -> None:
    """Every operation, once per odd X-Project-ID value, the value written as raw bytes; and
    once with the header twice. No 5xx, no dropped connection; a 4xx has the error body."""
    raw_schema = requests.get(f"{fuzz.server.url}/openapi.json", timeout=REQUEST_TIMEOUT).json()
    # (value, problem) -> the requests that had it
    findings: dict[tuple[str, str], list[str]] = {}
    sent = 0
    values: list[list[bytes]] = [[v] for v in RAW_PROJECT_HEADERS] + [[b"one", b"two"]]
    for method, path, spec in _operations(raw_schema):
        for project in values:
            fuzz.register_worker()
            target, body = _valid_request(fuzz, path, spec)
            headers = [(b"X-Project-ID", v) for v in project]
            value = f"{[v[:40] for v in project]!r} (lengths {[len(v) for v in project]})"
            request = f"{method} {target} body={body[:200]!r}"
            try:
                answer = raw_request(fuzz.server.port, method, target, headers, body)
            except OSError as exc:
                findings.setdefault((value, f"no answer: {exc!r}"), []).append(request)
                continue
            sent += 1
            fuzz.counts[f"raw {method} {path} -> {answer.status}"] += 1
            if answer.status >= 500:
                problem = f"{answer.status} {answer.body[:500]!r}"
            elif answer.status >= 400:
                content_type = answer.headers.get("content-type", "")
                problem = check_error_body(answer.status, content_type, answer.body) or ""
            else:
                problem = ""
            if problem:
                findings.setdefault((value, problem), []).append(request)
    assert sent > 0
    report = [
        f"X-Project-ID={value}: {problem}\n    in {len(requests_)} request(s), e.g. {requests_[0]}"
        for (value, problem), requests_ in findings.items()
    ]
    assert not findings, (
        f"{sum(len(r) for r in findings.values())} of {sent} requests with odd X-Project-ID "
        "values were mishandled:\n" + "\n".join(report) + f"\n{_traceback(fuzz.server_log())}"
    )


# --------------------------------------------------------------------------- long-polls


def test_long_polls_answer_within_their_bound(fuzz: Fuzz) -> None:
    """A claim with nothing to claim answers after `wait_seconds`; a wait on an execution that
    stays queued answers after `timeout` (not sooner, and not much later). Both waits span a
    wake-up of the server's safety net (which wakes every parked long-poll)."""
    wait = SAFETY_NET_SECONDS + 1.0
    with requests.Session() as http:
        registered = http.post(
            f"{fuzz.api}/workers",
            json={"workflows": [{"workflow_id": "fuzz_long_poll", "queue_name": "fuzz_lp"}]},
            timeout=REQUEST_TIMEOUT,
        )
        assert registered.status_code == 200, registered.text
        worker_id = registered.json()["worker_id"]
        submitted = http.post(
            f"{fuzz.api}/workflows/fuzz_long_poll/run", json={}, timeout=REQUEST_TIMEOUT
        )
        assert submitted.status_code == 200, submitted.text
        execution_id = submitted.json()["execution_id"]

        started = time.monotonic()
        waited = http.get(
            f"{fuzz.api}/executions/{execution_id}/wait",
            params={"timeout": wait},
            timeout=wait + GRACE,
        )
        elapsed = time.monotonic() - started
        assert waited.status_code == 200, waited.text
        assert waited.json()["status"] == "queued"
        assert wait - 0.1 <= elapsed <= wait + GRACE, (
            f"GET /executions/{{id}}/wait?timeout={wait} answered a non-final execution after "
            f"{elapsed:.2f} s"
        )

        # Takes the queued execution at once, then finds nothing for `wait` seconds.
        first = http.post(
            f"{fuzz.api}/workers/{worker_id}/claim",
            json={"max": 10, "wait_seconds": wait},
            timeout=wait + GRACE,
        )
        assert first.status_code == 200, first.text
        assert [e["id"] for e in first.json()["executions"]] == [execution_id]
        started = time.monotonic()
        second = http.post(
            f"{fuzz.api}/workers/{worker_id}/claim",
            json={"max": 10, "wait_seconds": wait},
            timeout=wait + GRACE,
        )
        elapsed = time.monotonic() - started
        assert second.status_code == 200, second.text
        assert second.json()["executions"] == []
        assert wait - 0.1 <= elapsed <= wait + GRACE, (
            f"a claim with wait_seconds={wait} answered nothing after {elapsed:.2f} s"
        )
        http.delete(f"{fuzz.api}/workers/{worker_id}", timeout=REQUEST_TIMEOUT)
    fuzz.counts["setup requests"] += 6


# --------------------------------------------------------------------------- big integers


def test_integers_beyond_column_range(fuzz: Fuzz) -> None:
    """Every integer field of a request that reaches the database, set to 2**31 (more than a
    PostgreSQL `integer` holds) and to 2**63 (more than any 64-bit column holds), including
    those of a report on a claimed execution, which random inputs rarely reach: refused with a
    4xx or stored, never a 5xx."""
    api = fuzz.api
    workflow = {"workflow_id": "fuzz_bounds", "queue_name": "fuzz_bounds"}
    registered = requests.post(f"{api}/workers", json={"workflows": [workflow]}, timeout=10)
    assert registered.status_code == 200, registered.text
    worker_id = registered.json()["worker_id"]
    submitted = requests.post(f"{api}/workflows/fuzz_bounds/run", json={}, timeout=10)
    assert submitted.status_code == 200, submitted.text
    claimed = requests.post(
        f"{api}/workers/{worker_id}/claim", json={"max": 1, "wait_seconds": 5}, timeout=15
    )
    assert claimed.status_code == 200, claimed.text
    (execution,) = claimed.json()["executions"]

    def report(**item: Any) -> dict[str, Any]:
        return {
            "items": [{"execution_id": execution["id"], "attempt": execution["attempt"], **item}]
        }

    child = {"workflow_id": "fuzz_bounds", "payload": "1"}
    reports = f"/workers/{worker_id}/reports"
    cases: list[tuple[str, dict[str, Any]]] = []
    for big in (2**31, 2**63):
        limit = {"queue_name": f"fuzz_{big}", "queue_concurrency_limit": big}
        step = {"key": f"s{big}", "kind": "run", "status": "completed", "position": big}
        cases += [
            ("/workers", {"workflows": [{**workflow, **limit}]}),
            ("/workflows/fuzz_bounds/run", limit),
            ("/workflows/batch_run", {"workflows": [{**child, **limit}]}),
            (reports, report(steps=[step])),
            (reports, report(children=[{**child, "step_key": f"c{big}", "index": big}])),
            (reports, report(children=[{**child, "step_key": f"d{big}", "index": 0, **limit}])),
            (reports, report(attempt=big)),
        ]
    findings = []
    for path, body in cases:
        # A new connection each time: the server closes one after a 5xx.
        response = requests.post(f"{api}{path}", json=body, timeout=REQUEST_TIMEOUT)
        fuzz.counts[
            f"big-integer POST {path.replace(worker_id, '{worker_id}')} -> {response.status_code}"
        ] += 1
        if response.status_code >= 500:
            findings.append(
                f"POST {api}{path} {json.dumps(body)}\n  -> {response.status_code} "
                f"{response.text[:300]}"
            )
        elif response.status_code >= 400:
            content_type = response.headers.get("content-type", "")
            problem = check_error_body(response.status_code, content_type, response.content)
            assert problem is None, f"POST {path} {body}: {problem}"
    assert not findings, (
        f"{len(findings)} of {len(cases)} requests failed:\n"
        + "\n".join(findings)
        + f"\n{_traceback(fuzz.server_log())}"
    )


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
    first = _traceback(log, which=0)
    for marker in ("Traceback", "internal error"):
        assert marker not in log, f"the server logged {marker!r}; the first traceback:\n{first}"


def _print_counts(fuzz: Fuzz) -> None:
    total = sum(n for key, n in fuzz.counts.items() if " -> " in key)
    print(f"\n{total} requests (+{fuzz.counts['setup requests']} set-up requests):")
    for key, n in sorted(fuzz.counts.items()):
        print(f"  {n:6d}  {key}")
