"""The worker's reporter: batching, per-attempt order with several requests in flight."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from polos import protocol
from polos.worker import reports
from polos.worker.reporter import Reporter


def _step(key: str, position: int) -> reports.StepReport:
    return reports.StepReport(
        key=key, kind="run", status="completed", position=position, result="1"
    )


def _item(execution_id: str, key: str, position: int) -> reports.ReportItem:
    return reports.ReportItem(execution_id=execution_id, attempt=1, steps=[_step(key, position)])


class _Server:
    """Answers each request when told to, and remembers what it received in which order."""

    def __init__(self) -> None:
        self.requests: list[list[reports.ReportItem]] = []
        self.gates: list[asyncio.Future[None]] = []
        self.applied: list[tuple[str, str]] = []

    async def send(self, items: Sequence[reports.ReportItem]) -> list[protocol.ReportItemResult]:
        gate = asyncio.get_running_loop().create_future()
        self.requests.append(list(items))
        self.gates.append(gate)
        await gate
        for item in items:
            self.applied.extend((item.execution_id, s.key) for s in item.steps)
        return [protocol.ReportItemResult(execution_id=i.execution_id, status="ok") for i in items]


async def _settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


@pytest.mark.asyncio
async def test_two_requests_in_flight_but_an_attempt_waits_for_its_answer() -> None:
    server = _Server()
    reporter = Reporter(server.send, max_in_flight=2)
    reporter.start()
    try:
        a1 = reporter.submit(_item("a", "s1", 0))
        await _settle()
        assert len(server.requests) == 1  # sent at once
        a2 = reporter.submit(_item("a", "s2", 1))
        b1 = reporter.submit(_item("b", "s1", 0))
        await _settle()
        # b goes out in a second request; a's second record waits for a's first answer.
        assert len(server.requests) == 2
        assert [i.execution_id for i in server.requests[1]] == ["b"]
        server.gates[1].set_result(None)  # the later request is answered first
        await _settle()
        assert b1.done() and not a2.done()
        assert len(server.requests) == 2
        server.gates[0].set_result(None)
        await _settle()
        assert a1.done()
        assert len(server.requests) == 3
        assert [(i.execution_id, [s.key for s in i.steps]) for i in server.requests[2]] == [
            ("a", ["s2"])
        ]
        server.gates[2].set_result(None)
        await reporter.drain()
        assert a2.result().status == "ok"
        assert server.applied.index(("a", "s1")) < server.applied.index(("a", "s2"))
    finally:
        await reporter.stop()


@pytest.mark.asyncio
async def test_items_of_one_attempt_are_merged_in_order() -> None:
    server = _Server()
    reporter = Reporter(server.send, max_in_flight=1)
    reporter.start()
    try:
        reporter.submit(_item("x", "s0", 0))
        await _settle()
        futures = [reporter.submit(_item("a", f"s{i}", i)) for i in range(3)]
        futures.append(reporter.submit(_item("b", "s0", 0)))
        await _settle()
        assert len(server.requests) == 1  # one in flight: the rest waits
        server.gates[0].set_result(None)
        await _settle()
        merged = server.requests[1]
        assert [(i.execution_id, [s.key for s in i.steps]) for i in merged] == [
            ("a", ["s0", "s1", "s2"]),
            ("b", ["s0"]),
        ]
        server.gates[1].set_result(None)
        await reporter.drain()
        assert all(f.result().status == "ok" for f in futures)
    finally:
        await reporter.stop()


@pytest.mark.asyncio
async def test_a_refused_request_fails_its_items_and_the_reporter_goes_on() -> None:
    calls = 0

    async def send(items: Sequence[reports.ReportItem]) -> list[protocol.ReportItemResult]:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("refused")
        return [protocol.ReportItemResult(execution_id=i.execution_id, status="ok") for i in items]

    reporter = Reporter(send)
    reporter.start()
    try:
        first = reporter.submit(_item("a", "s0", 0))
        with pytest.raises(RuntimeError, match="refused"):
            await first
        second = reporter.submit(_item("a", "s1", 1))
        assert (await second).status == "ok"
        await reporter.drain()
    finally:
        await reporter.stop()


@pytest.mark.asyncio
async def test_a_merge_keeps_everything_in_order_and_changes_no_submitted_item() -> None:
    server = _Server()
    reporter = Reporter(server.send, max_in_flight=1)
    reporter.start()
    try:
        reporter.submit(_item("x", "s0", 0))
        await _settle()
        child = protocol.ChildSubmission(step_key="fan", index=0, workflow_id="c", payload="1")
        event = protocol.EventPublish(topic="news", data="{}")
        first = reports.ReportItem("a", 1, [_step("s0", 0)], [], [event])
        suspension_children = [child]
        last = reports.ReportItem(
            "a",
            1,
            [
                reports.StepReport(
                    key="fan", kind="batch_invoke_and_wait", status="pending", position=2
                )
            ],
            suspension_children,
            [],
            reports.SuspendOutcome(step_key="fan"),
        )
        futures = [
            reporter.submit(first),
            reporter.submit(_item("a", "s1", 1)),
            reporter.submit(last),
        ]
        await _settle()
        server.gates[0].set_result(None)
        await _settle()
        [merged] = server.requests[1]
        assert [s.key for s in merged.steps] == ["s0", "s1", "fan"]
        assert merged.children == [child] and merged.events == [event]
        assert merged.outcome == reports.SuspendOutcome(step_key="fan")
        # The submitted items (and the attempt's own lists in them) are as they were.
        assert [s.key for s in first.steps] == ["s0"] and first.outcome is None
        assert suspension_children == [child] and len(last.steps) == 1
        server.gates[1].set_result(None)
        await reporter.drain()
        assert all(f.result().status == "ok" for f in futures)
    finally:
        await reporter.stop()
