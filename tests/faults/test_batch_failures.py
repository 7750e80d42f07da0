"""Fault test 5 of issue 4: failures inside a batch (workflows in tests/faults/apps/batch.py).

One `batch_invoke_and_wait` over 18 children: some succeed at once, some fail after exhausting
their step's retries, some fail twice and then succeed — at step level (`ctx.step.run` retries)
and at workflow level (the engine retries a failed execution twice) — some fail at workflow
level three times, and some are another workflow with another result model. The batch returns,
in input order, typed failures (`success=False`, the error message naming the step, the error
type) and typed successes (each child's pydantic model rebuilt), and never raises.
"""

from __future__ import annotations

import itertools
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import polos
from polos import protocol
from tests.e2e.conftest import ServerFactory, WorkerFactory
from tests.faults import checker
from tests.faults.harness import log_lines, sql

MODULE = "tests.faults.apps.batch"
MODES = ["ok", "step_fails", "step_flaky", "workflow_flaky", "workflow_fails", "echo"]
# Three rounds, each in another order: input order is not the order children finish in.
ORDER = MODES + MODES[::-1] + MODES[3:] + MODES[:3]
TIMEOUT = 45.0
ITEM_DONE = "tests.faults.apps.batch:ItemDone"
ECHO = "tests.faults.apps.batch:Echo"


def _expected(i: int, mode: str) -> dict[str, Any]:
    """What the parent's batch holds for child `i`, rebuilt in the parent's worker."""
    if mode == "step_fails":
        return {
            "success": False,
            "error": f"Step 'work' failed after 3 attempt(s): ValueError: item {i}: try 3 failed",
            "error_type": "StepExecutionError",
            "result_type": None,
            "result": None,
        }
    if mode == "workflow_fails":
        return {
            "success": False,
            "error": f"item {i}: workflow attempt 3 failed",
            "error_type": "RuntimeError",
            "result_type": None,
            "result": None,
        }
    if mode == "echo":
        result: dict[str, Any] = {"index": i, "text": f"echo-{i}"}
        return {
            "success": True,
            "error": None,
            "error_type": None,
            "result_type": ECHO,
            "result": result,
        }
    result = {
        "index": i,
        "mode": mode,
        "step_tries": 3 if mode == "step_flaky" else 1,
        "workflow_attempts": 3 if mode == "workflow_flaky" else 1,
    }
    return {
        "success": True,
        "error": None,
        "error_type": None,
        "result_type": ITEM_DONE,
        "result": result,
    }


# (status, attempt, retry_count) of each child: a StepExecutionError is not retried.
_ROW = {
    "ok": ("completed", 1, 0),
    "step_fails": ("failed", 1, 0),
    "step_flaky": ("completed", 1, 0),
    "workflow_flaky": ("completed", 3, 2),
    "workflow_fails": ("failed", 3, 2),
    "echo": ("completed", 1, 0),
}
# The outcomes of the tries of (step body "work", workflow attempt) of each child.
_TRIES = {
    "ok": (["ok"], ["ok"]),
    "step_fails": (["fail", "fail", "fail"], []),
    "step_flaky": (["fail", "fail", "ok"], ["ok"]),
    "workflow_flaky": (["ok"], ["fail", "fail", "ok"]),
    "workflow_fails": (["ok"], ["fail", "fail", "fail"]),
    "echo": ([], []),
}


async def test_failures_inside_a_batch(
    start_server: ServerFactory, start_worker: WorkerFactory, tmp_path: Path
) -> None:
    began = time.monotonic()
    server = start_server()
    start_worker(server, MODULE, workflows=["batch_parent"])
    start_worker(server, MODULE, workflows=["batch_item", "batch_echo"], capacity=20)
    log, tries = tmp_path / "side-effects.log", tmp_path / "tries.log"

    async with polos.PolosClient(api_url=server.url) as client:
        handle = await client.invoke(
            "batch_parent", {"log": str(log), "tries": str(tries), "modes": ORDER}
        )
        row = await client.wait_for_execution(handle.id, timeout=TIMEOUT)
        assert row["status"] == "completed", row
        results = row["result"]["results"]
        child_ids = [
            protocol.child_execution_id(handle.id, "children", i) for i in range(len(ORDER))
        ]
        children = [await client.get_execution(c) for c in child_ids]

    # The batch: one entry per input, in input order, failures as values, models rebuilt.
    assert len(results) == len(ORDER)
    for i, (mode, got) in enumerate(zip(ORDER, results, strict=True)):
        assert got["execution_id"] == child_ids[i]
        assert got["workflow_id"] == ("batch_echo" if mode == "echo" else "batch_item")
        rest = {k: v for k, v in got.items() if k not in ("execution_id", "workflow_id")}
        assert rest == _expected(i, mode), (i, mode)

    # The executions: the engine's retries, and the stored errors (type and whole message).
    rows = {
        str(r[0]): (str(r[1]), int(r[2]), int(r[3]))
        for r in sql(
            server,
            "SELECT id, status, attempt, retry_count FROM executions "
            f"WHERE parent_execution_id = '{handle.id}'",
        )
    }
    for i, mode in enumerate(ORDER):
        assert rows[child_ids[i]] == _ROW[mode], (i, mode, rows[child_ids[i]])
        expected = _expected(i, mode)
        if expected["success"]:
            assert children[i]["error"] is None
        else:
            assert children[i]["error"] == {
                "type": expected["error_type"],
                "message": expected["error"],
            }

    # Every try, from the tries file; retries waited (step: base 0.05 s with jitter in
    # [0.5, 1); workflow: 1 s, then 2 s).
    seen: dict[tuple[str, str], list[tuple[str, float]]] = defaultdict(list)
    for line in log_lines(tries):
        execution_id, what, number, outcome, at = line.split()
        assert int(number) == len(seen[(execution_id, what)]) + 1
        seen[(execution_id, what)].append((outcome, float(at)))
    for i, mode in enumerate(ORDER):
        step, attempts = _TRIES[mode]
        assert [o for o, _ in seen[(child_ids[i], "work")]] == step, (i, mode)
        assert [o for o, _ in seen[(child_ids[i], "workflow")]] == attempts, (i, mode)
        times = [at for _, at in seen[(child_ids[i], "work")]]
        for k, (a, b) in enumerate(itertools.pairwise(times)):
            assert b - a >= 0.05 * 2**k * 0.5, (i, mode, times)
        times = [at for _, at in seen[(child_ids[i], "workflow")]]
        for k, (a, b) in enumerate(itertools.pairwise(times)):
            assert b - a >= 1.0 * 2**k, (i, mode, times)

    first_failure = min(float(line.split()[4]) for line in log_lines(tries) if " fail " in line)
    report = checker.check(
        log,
        server.database_url,
        first_fault_at=first_failure,
        parent_id=handle.id,
        children_step="children",
        n_children=len(ORDER),
    )
    # Nothing crashed: every step body that succeeded ran once — a workflow retry replays the
    # step it recorded before failing.
    assert report.reran == 0
    assert report.bodies == report.steps == 2 + sum(1 for m in ORDER if m != "step_fails")
    failures = sum(len([o for o, _ in v if o == "fail"]) for v in seen.values())
    print(
        f"\n[batch] {len(ORDER)} children: {failures} injected failures "
        f"({sum(1 for m in ORDER if m.endswith('fails'))} children failed, "
        f"{sum(1 for m in ORDER if m.endswith('flaky'))} recovered); "
        f"{time.monotonic() - began:.1f} s\n[batch] {report}"
    )
