"""Requests the fuzzer rarely or never makes, written by hand: odd `X-Project-ID` values as raw
bytes, the long-polls' bounds, integers beyond what a database column holds. The suite is
described in tests/fuzz/fuzz_support.py.
"""

from __future__ import annotations

import json
import re
import socket
import time
from dataclasses import dataclass
from typing import Any

import requests

from polos.server.clock import SAFETY_NET_SECONDS
from tests.e2e.conftest import HOST
from tests.fuzz.fuzz_support import (
    FUZZ_QUEUE,
    FUZZ_WORKFLOW,
    GRACE,
    REQUEST_TIMEOUT,
    Fuzz,
    check_error_body,
    server_traceback,
)

# X-Project-ID values sent as raw bytes, including what no HTTP client library sends (NUL and
# control characters, invalid UTF-8); test_api_fuzz.py mixes the sendable ones into its cases.
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
        "values were mishandled:\n" + "\n".join(report) + f"\n{server_traceback(fuzz.server_log())}"
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
        + f"\n{server_traceback(fuzz.server_log())}"
    )
