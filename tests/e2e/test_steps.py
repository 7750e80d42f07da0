"""Step primitives end to end: retries with backoff, the same values and errors on replay,
workflow-level retries, and children named by an ID the caller never imported."""

from __future__ import annotations

from pathlib import Path

import polos
from tests.e2e.apps import steps
from tests.e2e.conftest import Server, ServerFactory, WorkerFactory

TIMEOUT = 60.0


def _lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


async def test_a_step_that_fails_twice_then_succeeds(
    client: polos.PolosClient, tmp_path: Path
) -> None:
    log = tmp_path / "flaky.log"
    result = await steps.flaky_step.run(client, {"log": str(log), "failures": 2}, timeout=TIMEOUT)
    assert result == {"value": "finally"}
    # Two failures, one success; the replay after the child returned the recorded value.
    assert _lines(log) == ["attempt"] * 3


async def test_a_step_that_gives_up_raises_the_same_error_on_replay(
    client: polos.PolosClient,
) -> None:
    result = await steps.step_gives_up.run(client, {}, timeout=TIMEOUT)
    message = "Step 'always_fails' failed after 2 attempt(s): ValueError: boom"
    assert result["first"]["message"] == message
    assert result["replayed"] == message
    assert result["key"] == "always_fails"
    # One sleep of base_delay x jitter in [0.5, 1) between the two attempts, none after the
    # last: under 1 s plus overhead. A sleep after the last attempt would add at least 1 s.
    assert 0.5 <= result["first"]["elapsed"] < 1.45


async def test_uuid_now_random_are_the_same_after_a_replay(client: polos.PolosClient) -> None:
    result = await steps.recorded_values.run(client, {}, timeout=TIMEOUT)
    assert result["first"] == result["replayed"]
    assert len(result["first"]["uuid"]) == 36
    assert isinstance(result["first"]["now"], int)
    assert 0.0 <= result["first"]["random"] < 1.0


async def test_a_transient_workflow_failure_is_retried_and_steps_are_not_rerun(
    client: polos.PolosClient, tmp_path: Path
) -> None:
    attempts, step_log = tmp_path / "attempts.log", tmp_path / "steps.log"
    handle = await steps.retry_whole.invoke(
        client, {"attempts": str(attempts), "steps": str(step_log)}
    )
    row = await client.wait_for_execution(handle.id, timeout=TIMEOUT)
    assert row["status"] == "completed", row
    assert row["retry_count"] == 1
    assert row["attempt"] == 2
    assert _lines(attempts) == ["attempt", "attempt"]
    assert _lines(step_log) == ["step"]  # recorded in attempt 1, replayed in attempt 2


async def test_a_child_named_by_an_id_the_caller_never_imported(
    start_server: ServerFactory, start_worker: WorkerFactory
) -> None:
    server: Server = start_server()
    # One worker serves the caller only, another the child only.
    start_worker(server, "tests.e2e.apps.steps", workflows=["calls_by_id"])
    start_worker(server, "tests.e2e.apps.by_id_child")
    async with polos.PolosClient(api_url=server.url) as client:
        result = await steps.calls_by_id.run(client, {"n": 21}, timeout=TIMEOUT)
        # The caller's process imports the child's result class by its stored name.
        assert result["result"] == {"value": 42}
        assert result["type"] == "Doubled"
        fired = await client.wait_for_execution(result["fired"], timeout=TIMEOUT)
        assert fired["status"] == "completed"
        assert fired["result"] == {"value": 0}
        assert fired["workflow_id"] == "by_id_child"
