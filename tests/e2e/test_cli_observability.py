"""The `polos` client commands as users run them: the real command in a subprocess (so its
output is not a terminal: plain text, no colours) against a real server and worker, on both
backends. Plain output and `--json` are both checked; `--json` must be what the API says."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import httpx

from polos import protocol
from tests.e2e.conftest import REPO, Server, free_port
from tests.e2e.observe_helpers import counts, get_json
from tests.e2e.observe_helpers import observe_server_fixture as observe_server_fixture
from tests.e2e.observe_helpers import observe_server_module as observe_server_module

POLOS = str(Path(sys.executable).parent / "polos")
NESTED = {"children": 20, "grandchildren": 5, "fail": [[3, 1], [7, 4]]}


def env_for(server: Server) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("POLOS_")}
    env["POLOS_API_URL"] = server.url
    env.pop("FORCE_COLOR", None)
    return env


def polos_cmd(
    server: Server, *args: str, timeout: float = 120.0
) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [POLOS, *args],
        env=env_for(server),
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    # Not a terminal: no colours, no cursor movements.
    assert "\x1b" not in result.stdout and "\x1b" not in result.stderr, result
    return result


def ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, f"exit {result.returncode}\n{result.stdout}\n{result.stderr}"
    return result.stdout


def run_nested(server: Server) -> str:
    """`polos run obs_root --wait`: the nested fan-out; returns the root's ID."""
    result = polos_cmd(server, "run", "obs_root", "--payload", json.dumps(NESTED), "--wait")
    assert json.loads(ok(result)) == {"children": 20, "failed_leaves": 2}
    lines = result.stderr.splitlines()
    workflow, execution_id = lines[0].split()
    assert workflow == "obs_root"
    # The last progress line: the descendants, waiting ones counted as such.
    assert re.fullmatch(
        r"completed: done 118 · failed 2 · running 0 · waiting 0 · queued 0 of 120 \(\S+\)",
        lines[-1],
    ), lines
    return execution_id


def middle_id(root: str, i: int) -> str:
    return protocol.child_execution_id(root, "middles", i)


# --------------------------------------------------------------------------- run


def test_run_wait_prints_the_result_and_exits_by_status(
    observe_server: Server, tmp_path: Path
) -> None:
    run_nested(observe_server)
    payload = tmp_path / "payload.json"
    payload.write_text(json.dumps({"i": 1, "fail": True}))
    failed = polos_cmd(observe_server, "run", "obs_leaf", "--payload", f"@{payload}", "--wait")
    assert failed.returncode == 1
    assert failed.stdout == ""
    assert failed.stderr.splitlines()[-1] == (
        "failed: StepExecutionError: Step 'work' failed after 1 attempt(s): ValueError: leaf 1 "
        "failed"
    )
    as_json = polos_cmd(observe_server, "run", "obs_leaf", "-p", f"@{payload}", "--wait", "--json")
    assert as_json.returncode == 1
    execution = json.loads(as_json.stdout)
    assert execution["status"] == "failed"
    assert execution["error"]["type"] == "StepExecutionError"


def test_run_without_wait_then_result(observe_server: Server) -> None:
    execution_id = ok(polos_cmd(observe_server, "run", "obs_leaf", "-p", '{"i": 4}')).strip()
    uuid.UUID(execution_id)
    assert json.loads(
        ok(polos_cmd(observe_server, "executions", "result", execution_id, "-w"))
    ) == {
        "i": 4,
        "value": 8,
    }
    started = json.loads(
        ok(polos_cmd(observe_server, "run", "obs_leaf", "-p", '{"i": 5}', "--json"))
    )
    assert started["workflow_id"] == "obs_leaf" and started["created"] is True
    whole = json.loads(
        ok(
            polos_cmd(
                observe_server, "executions", "result", started["execution_id"], "-w", "--json"
            )
        )
    )
    assert whole["id"] == started["execution_id"] and whole["result"] == {"i": 5, "value": 10}


# --------------------------------------------------------------------------- tree


def test_tree_of_a_nested_fan_out(observe_server: Server) -> None:
    root = run_nested(observe_server)
    text = ok(polos_cmd(observe_server, "executions", "tree", root))
    lines = text.splitlines()
    assert lines[0] == "level 1: 20 · 20 completed"
    assert lines[1] == "level 2: 100 · 98 completed, 2 failed"
    assert re.fullmatch(rf"obs_root {root}  completed \S+", lines[2]), lines[2]
    assert lines[3] == "└── step 'middles' · 20: 20 completed"
    # Ten middles listed (the default limit per group), each with its five leaves.
    middles = [line for line in lines if " obs_middle " in line]
    assert len(middles) == 10
    for i, line in enumerate(middles):
        assert re.fullmatch(
            rf"    ├── \[{i}\] obs_middle {middle_id(root, i)}  completed \S+", line
        ), line
    leaf_groups = [line.strip("│ ") for line in lines if "step 'leaves'" in line]
    assert leaf_groups == [
        "└── step 'leaves' · 5: " + ("4 completed, 1 failed" if i in (3, 7) else "5 completed")
        for i in range(10)
    ]
    assert len([line for line in lines if " obs_leaf " in line]) == 50
    failed = [line for line in lines if " obs_leaf " in line and "  failed " in line]
    assert len(failed) == 2
    assert any("ValueError: leaf 1 failed" in line for line in lines)
    assert any("ValueError: leaf 4 failed" in line for line in lines)
    assert lines[-1] == "    └── … 10 more: 10 completed"
    assert "not listed above" not in text  # both failures are in the listing

    # Fewer per group: the failed leaves of middles 3 and 7 are collapsed, and said so.
    short = ok(polos_cmd(observe_server, "executions", "tree", root, "--limit-per-group", "2"))
    short_lines = short.splitlines()
    assert short_lines[-2] == "    └── … 18 more: 18 completed"
    assert short_lines[-1] == (
        f"2 failed or cancelled not listed above: polos executions list --root {root} "
        "--status failed"
    )
    shallow = ok(polos_cmd(observe_server, "executions", "tree", root, "--depth", "1"))
    assert shallow.splitlines()[0] == "level 1: 20 · 20 completed"
    assert f"[3] obs_middle {middle_id(root, 3)}  completed" in shallow
    assert "· 5 children: 4 completed, 1 failed" in shallow

    as_json = json.loads(ok(polos_cmd(observe_server, "executions", "tree", root, "--json")))
    assert as_json == get_json(
        observe_server, f"/executions/{root}/tree", depth=2, limit_per_group=10
    )


# --------------------------------------------------------------------------- list, show


def test_executions_list(observe_server: Server) -> None:
    root = run_nested(observe_server)
    text = ok(polos_cmd(observe_server, "executions", "list", "--root", root, "--status", "failed"))
    header, *rows = text.splitlines()
    assert header.split() == ["ID", "WORKFLOW", "STATUS", "CREATED", "DURATION", "ERROR"]
    assert len(rows) == 2
    expected = {
        protocol.child_execution_id(middle_id(root, 3), "leaves", 1),
        protocol.child_execution_id(middle_id(root, 7), "leaves", 4),
    }
    assert {row.split()[0] for row in rows} == expected
    for row in rows:
        assert row.split()[1:3] == ["obs_leaf", "failed"]
        assert "StepExecutionError: Step 'work' failed after 1 attempt(s)" in row

    listed = json.loads(
        ok(
            polos_cmd(
                observe_server,
                "executions",
                "list",
                "--root",
                root,
                "--error-type",
                "StepExecutionError",
                "--json",
            )
        )
    )
    assert {e["id"] for e in listed["executions"]} == expected
    assert listed["next_cursor"] is None

    # --limit over several API pages, then --cursor to go on.
    first = json.loads(
        ok(polos_cmd(observe_server, "executions", "list", "--root", root, "-n", "7", "--json"))
    )
    assert len(first["executions"]) == 7 and first["next_cursor"]
    rest = json.loads(
        ok(
            polos_cmd(
                observe_server,
                "executions",
                "list",
                "--root",
                root,
                "--cursor",
                first["next_cursor"],
                "-n",
                "500",
                "--json",
            )
        )
    )
    ids = [e["id"] for e in first["executions"] + rest["executions"]]
    assert len(ids) == 121 == len(set(ids))
    plain = polos_cmd(observe_server, "executions", "list", "--root", root, "-n", "3")
    assert len(ok(plain).splitlines()) == 4
    assert plain.stderr.startswith("more: --cursor ")
    middles = json.loads(
        ok(
            polos_cmd(
                observe_server,
                "executions",
                "list",
                "--workflow",
                "obs_middle",
                "--parent",
                root,
                "--json",
            )
        )
    )
    assert {e["id"] for e in middles["executions"]} == {middle_id(root, i) for i in range(20)}
    none = polos_cmd(observe_server, "executions", "list", "--root", root, "--since", "2999-01-01")
    assert ok(none) == "" and none.stderr.strip() == "no executions"


def test_executions_show(observe_server: Server) -> None:
    root = run_nested(observe_server)
    text = ok(polos_cmd(observe_server, "executions", "show", root))
    lines = text.splitlines()
    facts = dict(re.split(r"\s{2,}", line, maxsplit=1) for line in lines[:12] if "  " in line)
    assert facts["id"] == root
    assert facts["workflow"] == "obs_root"
    assert facts["status"] == "completed"
    assert facts["children"] == "20: 20 completed"
    assert facts["descendants"] == "120: 118 completed, 2 failed"
    assert "payload" in lines and "result" in lines
    steps_at = lines.index("steps (2)")
    assert lines[steps_at + 1].split() == ["#", "STEP", "KIND", "STATUS", "DURATION", "ERROR"]
    assert lines[steps_at + 2].split()[:4] == ["0", "prepare", "run", "completed"]
    assert lines[steps_at + 3].split()[:4] == ["1", "middles", "batch_invoke_and_wait", "completed"]

    as_json = json.loads(ok(polos_cmd(observe_server, "executions", "show", root, "--json")))
    assert as_json["execution"]["id"] == root
    assert as_json["progress"]["descendants"] == counts(completed=118, failed=2)
    assert [s["key"] for s in as_json["steps"]] == ["prepare", "middles"]

    leaf = protocol.child_execution_id(middle_id(root, 3), "leaves", 1)
    failed = ok(polos_cmd(observe_server, "executions", "show", leaf)).splitlines()
    error_at = failed.index("error")
    assert failed[error_at + 1] == (
        "StepExecutionError: Step 'work' failed after 1 attempt(s): ValueError: leaf 1 failed"
    )
    assert any(line.startswith("parent") and middle_id(root, 3) in line for line in failed)


# --------------------------------------------------------------------------- cancel, result


def test_cancel_and_results_by_status(observe_server: Server) -> None:
    topic = f"never-{uuid.uuid4()}"
    execution_id = ok(
        polos_cmd(observe_server, "run", "obs_event_child", "-p", json.dumps({"topic": topic}))
    ).strip()
    not_final = polos_cmd(observe_server, "executions", "result", execution_id)
    assert not_final.returncode == 3
    assert "not final yet" in not_final.stderr and not_final.stdout == ""
    timed_out = polos_cmd(
        observe_server, "executions", "result", execution_id, "--wait", "--timeout", "0.3"
    )
    assert timed_out.returncode == 3

    cancelled = ok(polos_cmd(observe_server, "executions", "cancel", execution_id))
    assert cancelled.strip() == f"{execution_id} cancelled (1 execution(s) cancelled)"
    again = json.loads(
        ok(polos_cmd(observe_server, "executions", "cancel", execution_id, "--json"))
    )
    assert again == {"execution_id": execution_id, "status": "cancelled", "cancelled": 0}
    result = polos_cmd(observe_server, "executions", "result", execution_id)
    assert result.returncode == 1 and result.stdout == ""
    assert result.stderr.startswith("cancelled: ")


# --------------------------------------------------------------------------- workers, queues


def test_workers_and_queues(observe_server: Server) -> None:
    text = ok(polos_cmd(observe_server, "workers", "list"))
    header, row = text.splitlines()
    assert re.split(r"\s{2,}", header) == [
        "ID",
        "ALIVE",
        "IN FLIGHT",
        "CAPACITY",
        "LAST HEARTBEAT",
        "WORKFLOWS",
    ]
    cells = re.split(r"\s{2,}", row)
    assert cells[1:4] == ["yes", "0", "100"]
    assert "obs_root" in cells[5] and "obs_leaf" in cells[5]
    workers = json.loads(ok(polos_cmd(observe_server, "workers", "list", "--json")))
    (worker,) = workers["workers"]
    assert worker["id"] == cells[0] and worker["alive"] is True and worker["in_flight"] == 0

    text = ok(polos_cmd(observe_server, "queues", "list"))
    header, *rows = text.splitlines()
    assert header.split() == ["QUEUE", "LIMIT", "RUNNING", "QUEUED", "WAITING"]
    table = {row.split()[0]: row.split()[1:] for row in rows}
    assert table["obs_limited"] == ["2", "0", "0", "0"]
    assert table["obs_root"] == ["-", "0", "0", "0"]
    queues = json.loads(ok(polos_cmd(observe_server, "queues", "list", "--json")))
    assert queues == get_json(observe_server, "/queues")


# --------------------------------------------------------------------------- events


def _publish(server: Server, topic: str, event_type: str, data: dict[str, Any]) -> int:
    response = httpx.post(
        f"{server.url}{protocol.API_PREFIX}/events/publish",
        json={"topic": topic, "events": [{"event_type": event_type, "data": data}]},
        timeout=30,
    )
    assert response.status_code == 200, response.text
    (sequence,) = response.json()["sequence_ids"]
    return int(sequence)


def test_events_tail(observe_server: Server) -> None:
    topic = f"tail-{uuid.uuid4()}"
    for n in range(3):
        _publish(observe_server, topic, f"e{n}", {"n": n})
    text = ok(polos_cmd(observe_server, "events", "tail", topic, "-n", "2", "--no-follow"))
    lines = text.splitlines()
    assert len(lines) == 2
    assert re.fullmatch(r"\S+ \S+  #\d+  e1  \{\"n\":1\}", lines[0]), lines
    assert re.fullmatch(r"\S+ \S+  #\d+  e2  \{\"n\":2\}", lines[1]), lines

    # Following: the latest one first, then what is published, until --count.
    follower = subprocess.Popen(
        [POLOS, "events", "tail", topic, "-n", "1", "--count", "3", "--json"],
        env=env_for(observe_server),
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert follower.stderr is not None
        note = follower.stderr.readline()
        assert note.startswith(f"following {topic} after #"), note
        _publish(observe_server, topic, "late", {"n": 3})
        _publish(observe_server, topic, "later", {"n": 4})
        out, err = follower.communicate(timeout=60)
    finally:
        if follower.poll() is None:
            follower.kill()
            follower.wait()
    assert follower.returncode == 0, err
    events = [json.loads(line) for line in out.splitlines()]
    assert [(e["event_type"], e["data"], e["topic"]) for e in events] == [
        ("e2", {"n": 2}, topic),
        ("late", {"n": 3}, topic),
        ("later", {"n": 4}, topic),
    ]
    assert all(
        set(e) == {"id", "sequence_id", "topic", "event_type", "data", "created_at"} for e in events
    )


# --------------------------------------------------------------------------- errors


def test_errors_are_messages_with_exit_codes(observe_server: Server) -> None:
    unknown = str(uuid.uuid4())
    missing = polos_cmd(observe_server, "executions", "show", unknown)
    assert missing.returncode == 1 and missing.stdout == ""
    assert missing.stderr.strip() == (
        f"Error: execution '{unknown}' not found in project 'default'"
    )
    for args in (["executions", "tree", unknown], ["executions", "cancel", unknown]):
        assert polos_cmd(observe_server, *args).returncode == 1
    not_registered = polos_cmd(observe_server, "run", "no_such_workflow")
    assert not_registered.returncode == 1
    assert "no_such_workflow" in not_registered.stderr
    bad_payload = polos_cmd(observe_server, "run", "obs_leaf", "--payload", "{nope")
    assert bad_payload.returncode == 2 and "not JSON" in bad_payload.stderr
    unreachable = subprocess.run(
        [POLOS, "workers", "list", "--api-url", f"http://127.0.0.1:{free_port()}"],
        env=env_for(observe_server),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert unreachable.returncode == 1
    assert "cannot reach the server" in unreachable.stderr
