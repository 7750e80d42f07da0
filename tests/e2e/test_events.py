"""Events (issue 5), against real server and worker processes on SQLite and PostgreSQL.

- `ctx.step.publish_event` publishes once per step: a replay does not publish again.
- `wait_for_event` is a mailbox: it gets an event published after its execution started even
  when the wait registers later, never one published before the execution existed; a second
  wait on the same topic gets the next event; a timeout fails the step.
- `polos.events.publish` / `batch_publish`; `stream_topic` from the beginning and from a
  cursor; `stream_workflow` ends after the run's `workflow_finish` (status in its data).
- Event-triggered workflows: batch_size=1 (EventPayload), batch_size=N (BatchEventPayload), a
  partial batch after batch_timeout_seconds (test clock); a new trigger does not consume the
  topic's older events.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from typing import Any

import polos
from polos.events import EventData, StreamEvent
from tests.e2e.apps import model_events, model_waits
from tests.e2e.conftest import ServerFactory, WorkerFactory, async_wait_until
from tests.e2e.model_helpers import (
    TIMEOUT,
    advance_clock,
    events_of,
    executions_of,
    reach_status,
)


def unique(name: str) -> str:
    return f"model/{name}/{uuid.uuid4().hex[:12]}"


async def collect(stream: Any, n: int | None = None) -> list[StreamEvent]:
    """Read `n` events from a stream (or all of them, when it ends by itself), bounded."""
    got: list[StreamEvent] = []
    async with contextlib.aclosing(stream) as events, asyncio.timeout(TIMEOUT):
        async for event in events:
            got.append(event)
            if n is not None and len(got) == n:
                break
    return got


async def test_publish_event_once_per_step(clock_client: polos.PolosClient) -> None:
    client = clock_client
    topic = unique("publish")
    handle = await model_events.ev_publisher.invoke(client, {"topic": topic, "n": 3})
    await reach_status(client, handle.id, "waiting")
    before = await events_of(client, topic)
    assert [e["data"] for e in before] == [{"i": 0}, {"i": 1}, {"i": 2}]
    assert {e["event_type"] for e in before} == {"item"}

    await advance_clock(client, 10 * 60 + 1)  # the replay goes through the three steps again
    assert await handle.result(client, timeout=TIMEOUT) == {"published": 4}
    after = await events_of(client, topic)
    assert [e["data"] for e in after] == [{"i": 0}, {"i": 1}, {"i": 2}, {"i": "last"}]
    assert [e["sequence_id"] for e in after[:3]] == [e["sequence_id"] for e in before]
    assert (await client.get_execution(handle.id))["attempt"] == 2


async def test_wait_for_event_is_a_mailbox(clock_client: polos.PolosClient) -> None:
    client = clock_client
    topic, gate, marker = unique("mailbox"), unique("gate"), unique("marker")
    # Published before the execution exists: never its event.
    await polos.events.publish(client, topic, EventData(event_type="note", data={"n": "old"}))
    handle = await model_events.ev_waiter.invoke(
        client, {"topic": topic, "gate_topic": gate, "marker_topic": marker}
    )
    await reach_status(client, handle.id, "waiting")  # on the gate: no wait on `topic` yet
    first_seq = await polos.events.publish(
        client, topic, EventData(event_type="note", data={"n": 1})
    )
    await polos.events.publish(client, gate, {"data": {"open": True}})

    async def took_first() -> bool:
        return bool(await events_of(client, marker))

    await async_wait_until(took_first, TIMEOUT, "the first event to be taken")
    # Now it waits for the second event (live, this time: the wait is registered first).
    await reach_status(client, handle.id, "waiting")
    second_seq = await polos.events.publish(client, topic, {"event_type": "note", "data": {"n": 2}})
    await polos.events.publish(client, topic, {"n": 3})

    out = await handle.result(client, timeout=TIMEOUT)
    assert out["gate"] == {"open": True}
    assert out["first"] == {"n": 1}
    assert out["second"] == {"n": 2}
    assert (out["first_seq"], out["second_seq"]) == (first_seq, second_seq)
    assert out["first_type"] == "note"
    assert out["first_topic"] == topic
    assert out["types"] == ["EventPayload"] * 3
    marked = await events_of(client, marker)
    assert [e["data"] for e in marked] == [{"first": {"n": 1}}]


async def test_wait_for_event_timeout(clock_client: polos.PolosClient) -> None:
    client = clock_client
    caught = await model_events.ev_timeout.invoke(
        client, {"topic": unique("silence"), "timeout": 300, "catch": True}
    )
    escaped = await model_events.ev_timeout.invoke(
        client, {"topic": unique("silence"), "timeout": 300}
    )
    await reach_status(client, caught.id, "waiting")
    await reach_status(client, escaped.id, "waiting")
    await advance_clock(client, 301)

    out = await caught.result(client, timeout=TIMEOUT)
    assert out["error_type"] == "EventWaitTimeoutError"
    assert "timed out" in out["message"]
    row = await client.wait_for_execution(escaped.id, timeout=TIMEOUT)
    assert row["status"] == "failed"
    assert row["error"]["type"] == "StepExecutionError"
    assert "timed out" in row["error"]["message"]
    assert row["retry_count"] == 0  # a StepExecutionError escaping is final


async def test_publish_batch_publish_and_stream_topic(clock_client: polos.PolosClient) -> None:
    client = clock_client
    topic = unique("stream")
    assert await polos.events.batch_publish(client, topic, []) == []
    seqs = await polos.events.batch_publish(
        client,
        topic,
        [
            EventData(event_type="a", data={"i": 0}),
            {"event_type": "b", "data": {"i": 1}},
            {"i": 2},  # a plain dict is the event's data
        ],
    )
    last = await polos.events.publish(client, topic, EventData(data={"i": 3}))
    assert last is not None
    assert seqs == sorted(seqs) and len(set(seqs)) == 3 and last > seqs[-1]

    # From the beginning of the topic (events published before the stream opened included).
    everything = await collect(polos.events.stream_topic(client, topic), 4)
    assert [e.sequence_id for e in everything] == [*seqs, last]
    assert [e.event_type for e in everything] == ["a", "b", None, None]
    assert [e.data for e in everything] == [{"i": i} for i in range(4)]
    assert {e.topic for e in everything} == {topic}

    # From a cursor: only what came after it, then live events as they are published.
    reader = asyncio.create_task(
        collect(polos.events.stream_topic(client, topic, last_sequence_id=seqs[1]), 3)
    )
    live = await polos.events.publish(client, topic, {"i": 4})
    rest = await reader
    assert [e.sequence_id for e in rest] == [seqs[2], last, live]
    assert [e.data for e in rest] == [{"i": 2}, {"i": 3}, {"i": 4}]

    # The singleton namespace of upstream works too.
    again = await collect(polos.events.events.stream_topic(client, topic, last_sequence_id=last), 1)
    assert [e.sequence_id for e in again] == [live]


async def test_stream_workflow_ends_after_workflow_finish(
    clock_client: polos.PolosClient,
) -> None:
    client = clock_client
    # Opened while the run goes on: live events, then the end.
    handle = await model_events.ev_run_events.invoke(client, {"n": 3})
    events = await collect(polos.events.stream_workflow(client, "ev_run_events", handle.id))
    types = [e.event_type for e in events]
    assert types == ["workflow_start", "progress", "progress", "progress", "workflow_finish"]
    assert events[0].data["payload"] == {"n": 3}
    assert [e.data for e in events[1:4]] == [{"i": 0}, {"i": 1}, {"i": 2}]
    finish = events[-1].data
    assert finish["status"] == "completed"
    assert finish["result"] == {"done": 3}
    assert finish["_metadata"] == {"execution_id": handle.id, "workflow_id": "ev_run_events"}
    # The status is final by the time the finish event can be read.
    assert (await client.get_execution(handle.id))["status"] == "completed"

    # A failed run, streamed after the fact: from the beginning, ends with its failure.
    failed = await model_events.ev_run_events.invoke(client, {"n": 1, "fail": True})
    await client.wait_for_execution(failed.id, timeout=TIMEOUT)
    events = await collect(polos.events.stream_workflow(client, "ev_run_events", failed.id))
    assert [e.event_type for e in events] == ["workflow_start", "progress", "workflow_finish"]
    assert events[-1].data["status"] == "failed"
    assert events[-1].data["error"]["type"] == "StepExecutionError"


async def _triggered(
    client: polos.PolosClient, workflow_id: str, count: int, seqs: set[int]
) -> list[dict[str, Any]]:
    """Wait until `count` completed executions of `workflow_id` handled events among `seqs`."""

    def ours(row: dict[str, Any]) -> bool:
        payload = row["payload"]
        events = payload["events"] if "events" in payload else [payload]
        return any(e["sequence_id"] in seqs for e in events)

    async def done() -> list[dict[str, Any]] | None:
        rows = [r for r in await executions_of(client, workflow_id) if ours(r)]
        if len(rows) >= count and all(r["status"] == "completed" for r in rows):
            return rows
        return None

    rows: list[dict[str, Any]] = await async_wait_until(
        done, TIMEOUT, f"{count} execution(s) of {workflow_id}"
    )
    return rows


async def test_event_triggered_workflows(clock_client: polos.PolosClient) -> None:
    client = clock_client
    # batch_size=1: one execution per event, the payload an EventPayload.
    single = await polos.events.batch_publish(
        client, model_events.SINGLE_TOPIC, [{"n": 1}, {"n": 2}]
    )
    rows = await _triggered(client, "ev_single", 2, set(single))
    assert len(rows) == 2
    results = sorted((r["result"] for r in rows), key=lambda r: r["seq"])
    assert results == [
        {
            "type": "EventPayload",
            "seq": single[0],
            "data": {"n": 1},
            "topic": "model/trigger/single",
        },
        {
            "type": "EventPayload",
            "seq": single[1],
            "data": {"n": 2},
            "topic": "model/trigger/single",
        },
    ]

    # batch_size=3 with a 60 s timeout: 7 events make two full batches at once...
    seqs = await polos.events.batch_publish(
        client, model_events.BATCH_TOPIC, [{"n": i} for i in range(7)]
    )
    rows = await _triggered(client, "ev_batch", 2, set(seqs))
    assert len(rows) == 2
    assert sorted(r["result"]["seqs"] for r in rows) == [seqs[0:3], seqs[3:6]]
    assert {r["result"]["type"] for r in rows} == {"BatchEventPayload"}
    # ... and the 7th waits for its batch's timeout: a partial batch of one.
    await advance_clock(client, model_events.BATCH_TIMEOUT + 1)
    rows = await _triggered(client, "ev_batch", 3, set(seqs))
    assert len(rows) == 3
    batches = sorted(r["result"]["seqs"] for r in rows)
    assert batches == [seqs[0:3], seqs[3:6], seqs[6:7]]
    data = [d for r in sorted(rows, key=lambda r: r["result"]["seqs"]) for d in r["result"]["data"]]
    assert data == [{"n": i} for i in range(7)]  # every event once, in order


async def test_partial_batch_waits_for_its_oldest_event(clock_client: polos.PolosClient) -> None:
    """The batch timeout counts from the oldest event of the batch that is still waiting, not
    from an event a full batch took meanwhile."""
    client = clock_client
    topic, size = model_events.BATCH_TOPIC, model_events.BATCH_SIZE
    (lone,) = await polos.events.batch_publish(client, topic, [{"n": "lone"}])  # at t
    await advance_clock(client, 30)
    more = await polos.events.batch_publish(client, topic, [{"n": f"m{i}"} for i in range(size)])
    seqs = {lone, *more}
    # At t+30 a full batch (lone + 2) starts at once; the last event waits from t+30.
    rows = await _triggered(client, "ev_batch", 1, seqs)
    assert [r["result"]["seqs"] for r in rows] == [[lone, *more[:-1]]]

    # At t+61 the lone event's 60 s are over, but it left in a full batch; the last event has
    # waited 31 s only. A 30.5 s wait registered now is due in the same sweep as the lone
    # event's timer: once it is done, that sweep is over.
    barrier = await model_waits.wait_secs.invoke(client, {"seconds": 30.5})
    await reach_status(client, barrier.id, "waiting")
    await advance_clock(client, 31)
    await barrier.result(client, timeout=TIMEOUT)
    rows = [r for r in await executions_of(client, "ev_batch") if _has_any(r, seqs)]
    assert len(rows) == 1, [r["payload"] for r in rows]

    await advance_clock(client, 30)  # t+91: the last event's own 60 s are over
    rows = await _triggered(client, "ev_batch", 2, seqs)
    assert sorted(r["result"]["seqs"] for r in rows) == [[lone, *more[:-1]], [more[-1]]]


def _has_any(row: dict[str, Any], seqs: set[int]) -> bool:
    return any(e["sequence_id"] in seqs for e in row["payload"]["events"])


async def test_new_trigger_does_not_consume_older_events(
    start_server: ServerFactory, start_worker: WorkerFactory
) -> None:
    from tests.e2e.apps import model_late_trigger

    server = start_server()
    async with polos.PolosClient(api_url=server.url) as client:
        old = await polos.events.batch_publish(
            client, model_late_trigger.LATE_TOPIC, [{"n": "old-1"}, {"n": "old-2"}]
        )
        start_worker(server, "tests.e2e.apps.model_late_trigger")  # registers the trigger
        new = await polos.events.publish(client, model_late_trigger.LATE_TOPIC, {"n": "new"})
        assert new is not None and new > old[-1]

        async def started() -> list[dict[str, Any]]:
            return await executions_of(client, "ev_late")

        rows = await async_wait_until(started, TIMEOUT, "the triggered execution")
        row = await reach_status(client, rows[0]["id"], "completed")
        assert row["result"] == {"seq": new, "data": {"n": "new"}}
        # Triggers fire in the transaction that publishes: had the old events been consumed,
        # their executions would exist by now.
        assert len(await executions_of(client, "ev_late")) == 1
