"""The API the CLI and the dashboard read, against a real server and worker on both backends:
execution filters and keyset pages, journals with timings, progress counts, the fan-out tree,
queues, workers in flight, recent events; 404s and refusals.

Counts are checked exactly: a nested fan-out (20 children with 5 grandchildren each, two
grandchildren failing), a flat one of 300, and a batch whose children are in every status at
once (waiting on an event, running until a file appears, queued behind a limit of 2, failed,
completed)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

import polos
from polos import protocol
from polos.events import publish
from tests.e2e.conftest import Server, async_wait_until
from tests.e2e.observe_helpers import TIMEOUT, api_get, counts, get_json
from tests.e2e.observe_helpers import observe_server_fixture as observe_server_fixture
from tests.e2e.observe_helpers import observe_server_module as observe_server_module

NESTED = {"children": 20, "grandchildren": 5, "fail": [[3, 1], [7, 4]]}


def middle_id(root: str, i: int) -> str:
    return protocol.child_execution_id(root, "middles", i)


def leaf_id(middle: str, j: int) -> str:
    return protocol.child_execution_id(middle, "leaves", j)


async def run_nested(server: Server) -> str:
    async with polos.PolosClient(api_url=server.url) as client:
        handle = await client.invoke("obs_root", NESTED)
        result = await client.wait_for_result(handle.id, timeout=TIMEOUT)
    assert result == {"children": 20, "failed_leaves": 2}
    return handle.id


def list_all(server: Server, page: int, **filters: Any) -> list[dict[str, Any]]:
    """Every execution the filters select, page by page (cursor)."""
    found: list[dict[str, Any]] = []
    cursor = None
    while True:
        params = {**filters, "limit": page}
        if cursor is not None:
            params["cursor"] = cursor
        body = get_json(server, "/executions", **params)
        assert len(body["executions"]) <= page
        found += body["executions"]
        cursor = body["next_cursor"]
        if cursor is None:
            return found


# --------------------------------------------------------------------------- nested fan-out


async def test_progress_of_a_nested_fan_out(observe_server: Server) -> None:
    root = await run_nested(observe_server)
    body = get_json(observe_server, f"/executions/{root}/progress")
    assert body == {
        "execution_id": root,
        "workflow_id": "obs_root",
        "status": "completed",
        "children": counts(completed=20),
        "descendants": counts(completed=118, failed=2),
    }
    # An inner execution: its subtree is walked.
    middle = middle_id(root, 3)
    body = get_json(observe_server, f"/executions/{middle}/progress")
    assert body["status"] == "completed"
    assert body["children"] == counts(completed=4, failed=1)
    assert body["descendants"] == counts(completed=4, failed=1)
    # A leaf has neither.
    body = get_json(observe_server, f"/executions/{leaf_id(middle, 1)}/progress")
    assert body["status"] == "failed"
    assert body["children"] == counts() and body["descendants"] == counts()


async def test_tree_of_a_nested_fan_out(observe_server: Server) -> None:
    root = await run_nested(observe_server)
    tree = get_json(observe_server, f"/executions/{root}/tree", depth=2, limit_per_group=3)
    assert tree["depth"] == 2 and tree["limit_per_group"] == 3 and not tree["truncated"]
    assert tree["levels"] == [counts(completed=20), counts(completed=98, failed=2)]
    top = tree["root"]
    assert top["execution"]["id"] == root and top["execution"]["status"] == "completed"
    assert top["children"] == counts(completed=20) and top["expanded"]
    (group,) = top["groups"]
    assert group["step_key"] == "middles"
    assert group["counts"] == counts(completed=20)
    assert group["more"] == 17
    listed = group["executions"]
    assert [n["execution"]["id"] for n in listed] == [middle_id(root, i) for i in range(3)]
    for i, node in enumerate(listed):
        e = node["execution"]
        assert e["batch_index"] == i and e["step_key"] == "middles"
        assert e["parent_execution_id"] == root and e["workflow_id"] == "obs_middle"
        assert node["expanded"] and node["children"] == counts(completed=5)
        (leaves,) = node["groups"]
        assert leaves["step_key"] == "leaves" and leaves["more"] == 2
        assert leaves["counts"] == counts(completed=5)
        assert [n["execution"]["batch_index"] for n in leaves["executions"]] == [0, 1, 2]
        for leaf in leaves["executions"]:
            # The last level: not expanded, with the counts of its own (no) children.
            assert not leaf["expanded"] and leaf["groups"] == []
            assert leaf["children"] == counts()

    # A middle with a failed leaf, listed with everything: the failure and its error.
    middle = middle_id(root, 3)
    sub = get_json(observe_server, f"/executions/{middle}/tree", depth=2, limit_per_group=10)
    assert sub["levels"] == [counts(completed=4, failed=1), counts()]
    (leaves,) = sub["root"]["groups"]
    assert leaves["more"] == 0
    failed = [
        n["execution"] for n in leaves["executions"] if n["execution"]["status"] != "completed"
    ]
    assert [(e["id"], e["status"]) for e in failed] == [(leaf_id(middle, 1), "failed")]
    assert failed[0]["error"]["type"] == "StepExecutionError"
    assert "leaf 1 failed" in failed[0]["error"]["message"]

    # depth 1: the middles are listed, not expanded, and carry their children's counts.
    shallow = get_json(observe_server, f"/executions/{root}/tree", depth=1)
    assert shallow["levels"] == [counts(completed=20)]
    (group,) = shallow["root"]["groups"]
    assert len(group["executions"]) == 10 and group["more"] == 10  # the default of 10
    assert all(not n["expanded"] for n in group["executions"])
    assert [n["children"] for n in group["executions"]] == [
        counts(completed=4, failed=1) if i in (3, 7) else counts(completed=5) for i in range(10)
    ]
    # depth 0: the node and its counts only; limit 0: groups with counts, nobody listed.
    bare = get_json(observe_server, f"/executions/{root}/tree", depth=0)
    assert bare["levels"] == [] and not bare["root"]["expanded"]
    assert bare["root"]["children"] == counts(completed=20) and bare["root"]["groups"] == []
    none_listed = get_json(observe_server, f"/executions/{root}/tree", limit_per_group=0)
    (group,) = none_listed["root"]["groups"]
    assert group["executions"] == [] and group["more"] == 20


async def test_steps_with_times_and_pages(observe_server: Server) -> None:
    root = await run_nested(observe_server)
    body = get_json(observe_server, f"/executions/{root}/steps")
    assert body["execution_id"] == root and body["next_cursor"] is None
    steps = body["steps"]
    assert [(s["key"], s["kind"], s["status"], s["position"]) for s in steps] == [
        ("prepare", "run", "completed", 0),
        ("middles", "batch_invoke_and_wait", "completed", 1),
    ]
    for s in steps:
        assert s["created_at"] and s["completed_at"] and s["error"] is None
        assert s["duration_seconds"] is not None and s["duration_seconds"] >= 0
        assert s["result"] is None  # only with include_results
    created = datetime.fromisoformat(steps[1]["created_at"])
    completed = datetime.fromisoformat(steps[1]["completed_at"])
    # The batch wait lasted until the last middle finished.
    assert completed >= created

    first = get_json(observe_server, f"/executions/{root}/steps", limit=1, include_results=True)
    assert [s["key"] for s in first["steps"]] == ["prepare"]
    assert first["steps"][0]["result"] == "ready"
    second = get_json(
        observe_server, f"/executions/{root}/steps", limit=1, cursor=first["next_cursor"]
    )
    assert [s["key"] for s in second["steps"]] == ["middles"]
    assert second["next_cursor"] is None

    failed_leaf = leaf_id(middle_id(root, 7), 4)
    (step,) = get_json(observe_server, f"/executions/{failed_leaf}/steps")["steps"]
    assert (step["key"], step["kind"], step["status"]) == ("work", "run", "failed")
    assert step["error"] == {
        "type": "ValueError",
        "message": "Step 'work' failed after 1 attempt(s): ValueError: leaf 4 failed",
    }


async def test_execution_filters_and_pages(observe_server: Server) -> None:
    root = await run_nested(observe_server)
    tree = list_all(observe_server, 7, root_execution_id=root)
    ids = [e["id"] for e in tree]
    assert len(ids) == 121 and len(set(ids)) == 121
    assert root in ids
    expected_leaves = {leaf_id(middle_id(root, i), j) for i in range(20) for j in range(5)}
    assert expected_leaves <= set(ids)
    moments = [(e["created_at"]) for e in tree]
    assert moments == sorted(moments, reverse=True)  # newest first

    failed = list_all(observe_server, 50, root_execution_id=root, status="failed")
    assert {e["id"] for e in failed} == {
        leaf_id(middle_id(root, 3), 1),
        leaf_id(middle_id(root, 7), 4),
    }
    by_error = list_all(observe_server, 1, root_execution_id=root, error_type="StepExecutionError")
    assert {e["id"] for e in by_error} == {e["id"] for e in failed}
    assert list_all(observe_server, 50, root_execution_id=root, error_type="Nope") == []
    children = list_all(observe_server, 2, parent_execution_id=middle_id(root, 3))
    assert {e["id"] for e in children} == {leaf_id(middle_id(root, 3), j) for j in range(5)}
    middles = list_all(observe_server, 6, root_execution_id=root, workflow_id="obs_middle")
    assert {e["id"] for e in middles} == {middle_id(root, i) for i in range(20)}
    completed_middles = list_all(observe_server, 3, parent_execution_id=root, status="completed")
    assert len(completed_middles) == 20

    # Time filters, in ISO 8601 and in unix seconds.
    # (Times in the API are rounded to the microsecond: keep a millisecond away from them.)
    created = datetime.fromisoformat(get_json(observe_server, f"/executions/{root}")["created_at"])
    start = created - timedelta(milliseconds=1)
    later = (start + timedelta(hours=1)).isoformat()
    assert list_all(observe_server, 50, root_execution_id=root, created_after=later) == []
    before = list_all(observe_server, 50, root_execution_id=root, created_before=start.timestamp())
    assert before == []
    since = list_all(observe_server, 500, root_execution_id=root, created_after=start.timestamp())
    assert len(since) == 121
    naive = start.astimezone(UTC).replace(tzinfo=None).isoformat()  # a naive time is UTC
    assert len(list_all(observe_server, 500, root_execution_id=root, created_after=naive)) == 121

    # The project-wide listing walks the same executions in pages.
    everything = list_all(observe_server, 500, workflow_id="obs_leaf", status="failed")
    assert {e["id"] for e in failed} <= {e["id"] for e in everything}


async def test_a_flat_fan_out_is_one_collapsed_group(observe_server: Server) -> None:
    n = 300
    async with polos.PolosClient(api_url=observe_server.url) as client:
        handle = await client.invoke("obs_wide", {"n": n, "fail": [5, 250]})
        assert await client.wait_for_result(handle.id, timeout=TIMEOUT) == n - 2
    root = handle.id
    progress = get_json(observe_server, f"/executions/{root}/progress")
    assert progress["children"] == counts(completed=n - 2, failed=2)
    assert progress["descendants"] == progress["children"]
    tree = get_json(observe_server, f"/executions/{root}/tree", depth=3)
    assert tree["levels"] == [counts(completed=n - 2, failed=2), counts(), counts()]
    (group,) = tree["root"]["groups"]
    assert group["counts"] == counts(completed=n - 2, failed=2)
    assert len(group["executions"]) == 10 and group["more"] == n - 10
    pages = list_all(observe_server, 37, parent_execution_id=root)
    assert len({e["id"] for e in pages}) == n
    assert {e["batch_index"] for e in pages} == set(range(n))


# --------------------------------------------------------------------------- every status


async def test_every_status_is_counted_exactly(observe_server: Server, tmp_path: Path) -> None:
    """3 waiting, 2 running, 2 queued (limit 2), 2 failed, 3 completed: in the progress
    counts, the tree, the queues and the worker's executions in flight; then all final."""
    gate = tmp_path / "gate"
    topic = f"obs-gate-{uuid.uuid4()}"
    async with polos.PolosClient(api_url=observe_server.url) as client:
        handle = await client.invoke("obs_mixed_root", {"topic": topic, "file": str(gate)})
        root = handle.id
        expected = counts(waiting=3, running=2, queued=2, failed=2, completed=3)

        async def settled() -> Any:
            body = get_json(observe_server, f"/executions/{root}/progress")
            return body if body["children"] == expected else None

        progress = await async_wait_until(settled, TIMEOUT, f"the counts {expected}")
        assert progress["status"] == "waiting"
        assert progress["descendants"] == expected

        tree = get_json(observe_server, f"/executions/{root}/tree", depth=1, limit_per_group=20)
        (group,) = tree["root"]["groups"]
        assert group["step_key"] == "mixed" and group["counts"] == expected
        statuses = [n["execution"]["status"] for n in group["executions"]]
        assert statuses[:3] == ["waiting"] * 3
        assert sorted(statuses[3:7]) == ["queued", "queued", "running", "running"]
        assert statuses[7:] == ["failed", "failed", "completed", "completed", "completed"]

        queues = {q["name"]: q for q in get_json(observe_server, "/queues")["queues"]}
        assert queues["obs_limited"] == {
            "name": "obs_limited",
            "concurrency_limit": 2,
            "running": 2,
            "queued": 2,
            "waiting": 0,
        }
        assert queues["obs_event_child"]["waiting"] == 3
        assert queues["obs_mixed_root"]["waiting"] >= 1
        (worker,) = get_json(observe_server, "/workers")["workers"]
        assert worker["alive"] is True
        assert worker["in_flight"] == 2
        assert "obs_blocked_child" in worker["workflow_ids"]

        await publish(client, topic, {"event_type": "go", "data": {}})
        gate.write_text("go")
        assert await client.wait_for_result(root, timeout=TIMEOUT) == {"ok": 10, "failed": 2}
    final = get_json(observe_server, f"/executions/{root}/progress")
    assert final["children"] == counts(completed=10, failed=2)
    queues = {q["name"]: q for q in get_json(observe_server, "/queues")["queues"]}
    assert queues["obs_limited"]["running"] == 0 and queues["obs_limited"]["queued"] == 0

    async def idle() -> bool:
        (worker,) = get_json(observe_server, "/workers")["workers"]
        return bool(worker["in_flight"] == 0)

    await async_wait_until(idle, TIMEOUT, "the worker to hold nothing")


# --------------------------------------------------------------------------- events


async def test_recent_events_newest_first(observe_server: Server) -> None:
    one, two = f"obs-a-{uuid.uuid4()}", f"obs-b-{uuid.uuid4()}"
    async with polos.PolosClient(api_url=observe_server.url) as client:
        sequences = [
            await publish(client, one, {"event_type": "first", "data": {"n": 1}}),
            await publish(client, two, {"event_type": "second", "data": {"n": 2}}),
            await publish(client, one, {"event_type": "third", "data": {"n": 3}}),
        ]
    latest = get_json(observe_server, "/events/recent", limit=3)["events"]
    assert [e["sequence_id"] for e in latest] == sequences[::-1]
    assert [(e["topic"], e["event_type"], e["data"]) for e in latest] == [
        (one, "third", {"n": 3}),
        (two, "second", {"n": 2}),
        (one, "first", {"n": 1}),
    ]
    page = get_json(observe_server, "/events/recent", limit=1)
    assert page["next_before_sequence_id"] == sequences[2]
    older = get_json(
        observe_server,
        "/events/recent",
        limit=1,
        before_sequence_id=page["next_before_sequence_id"],
    )
    assert [e["sequence_id"] for e in older["events"]] == [sequences[1]]
    of_one = get_json(observe_server, "/events/recent", topic=one)
    assert [e["event_type"] for e in of_one["events"]] == ["third", "first"]
    assert of_one["next_before_sequence_id"] is None
    assert get_json(observe_server, "/events/recent", project="elsewhere-obs")["events"] == []


# --------------------------------------------------------------------------- refusals


def _error(response: httpx.Response, status: int, code: str) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["error"]["code"] == code, body
    message: str = body["error"]["message"]
    return message


async def test_unknown_and_foreign_executions_are_404(observe_server: Server) -> None:
    root = await run_nested(observe_server)
    unknown = str(uuid.uuid4())
    for suffix in ("steps", "progress", "tree"):
        message = _error(
            api_get(observe_server, f"/executions/{unknown}/{suffix}"), 404, "execution_not_found"
        )
        assert unknown in message
        # Another project's execution is as unknown as one that does not exist.
        _error(
            api_get(observe_server, f"/executions/{root}/{suffix}", project="other-obs"),
            404,
            "execution_not_found",
        )
    # Filters naming another project's tree select nothing.
    assert get_json(observe_server, "/executions", root_execution_id=root)["executions"]
    for name in ("root_execution_id", "parent_execution_id"):
        response = api_get(observe_server, "/executions", project="other-obs", **{name: root})
        assert response.status_code == 200 and response.json()["executions"] == []


async def test_bad_inputs_are_refused(observe_server: Server) -> None:
    root = await run_nested(observe_server)
    _error(api_get(observe_server, "/executions", cursor="garbage!"), 400, "invalid_cursor")
    _error(
        api_get(observe_server, f"/executions/{root}/steps", cursor="nope"), 400, "invalid_cursor"
    )
    _error(
        api_get(observe_server, "/executions", created_after="yesterday"), 422, "invalid_request"
    )
    _error(api_get(observe_server, "/executions", status="sleeping"), 422, "invalid_request")
    _error(api_get(observe_server, f"/executions/{root}/tree", depth=11), 422, "invalid_request")
    _error(
        api_get(observe_server, f"/executions/{root}/tree", limit_per_group=-1),
        422,
        "invalid_request",
    )
    _error(api_get(observe_server, "/events/recent", limit=0), 422, "invalid_request")
