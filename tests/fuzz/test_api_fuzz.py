"""Stateless fuzzing of every operation of the HTTP API's live OpenAPI schema (schemathesis);
the suite is described in tests/fuzz/fuzz_support.py.

Here: the hooks that mix real identifiers, odd `X-Project-ID` values and boundary integers into
the generated requests, lower valid long-poll waits, and the check of each answer.
"""

from __future__ import annotations

import math
import os
import time
import zlib
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

from polos import protocol
from tests.fuzz.fuzz_support import (
    FUZZ_WORKFLOW,
    GRACE,
    REQUEST_TIMEOUT,
    Fuzz,
    check_error_body,
    server_traceback,
)

# A deeper or another run: POLOS_FUZZ_EXAMPLES=1000 POLOS_FUZZ_SEED=7 pytest -s tests/fuzz
FUZZ_SEED = int(os.environ.get("POLOS_FUZZ_SEED", "20261127"))
MAX_EXAMPLES = int(os.environ.get("POLOS_FUZZ_EXAMPLES", "100"))
# An event stream never ends by itself: schemathesis reads one for the request's timeout in
# total, then cuts it. Streams are read this long.
STREAM_READ_SECONDS = 2.0
LONG_POLL_CAP = 0.5
# Default waits of the long-polls when the parameter is absent (see protocol / routes).
CLAIM_DEFAULT_WAIT = 30.0
WAIT_DEFAULT_TIMEOUT = 30.0

CLAIM_PATH = f"{protocol.API_PREFIX}/workers/{{worker_id}}/claim"
WAIT_PATH = f"{protocol.API_PREFIX}/executions/{{execution_id}}/wait"

# X-Project-ID values the fuzzer mixes into its requests (all sendable by `requests`; the raw
# test in test_api_targeted.py adds what no HTTP client library sends).
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

# Schemathesis' defaults, explicitly (no schemathesis.toml found on the way is read).
CONFIG = schemathesis.Config.from_dict({})


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
            f"{_describe_request(case, None)}\n{server_traceback(fuzz.server_log())}"
        ) from None
    except requests.ConnectionError as exc:
        fuzz.counts[f"{label} -> connection error"] += 1
        raise AssertionError(
            f"CONNECTION ERROR: {exc}\n{_describe_request(case, None)}\n"
            f"{server_traceback(fuzz.server_log())}"
        ) from None
    elapsed = time.monotonic() - started
    status = response.status_code
    fuzz.counts[f"{label} -> {status}"] += 1
    text = response.content[:2000].decode("utf-8", "replace")
    content_type = (response.headers.get("content-type") or [""])[0]
    where = f"{_describe_request(case, response)}\nanswer: {status} {content_type} {text}"

    assert status < 500, f"SERVER ERROR\n{where}\n{server_traceback(fuzz.server_log())}"
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
