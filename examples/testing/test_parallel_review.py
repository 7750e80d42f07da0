"""Tests of the parallel-review workflows with `polos.testing`: an in-process server and
worker per test (the `polos_env` fixture, or `Environment` directly), and time that moves only
when the test says so.

Run them from the root of the repository:

    pytest examples/testing

(`make test` runs them too, from tests/harness/test_example.py.)
"""

from __future__ import annotations

from datetime import timedelta

import pytest
import reviews
from reviews import AggregatedReview, DocumentReviewRequest, parallel

from polos.testing import Environment

# `pytest.mark.asyncio` is only needed under pytest-asyncio's strict mode (this repository
# uses asyncio_mode = "auto"); it does no harm either way.
pytestmark = pytest.mark.asyncio

REVIEWERS = ["alice", "bob", "carol"]


@pytest.fixture(autouse=True)
def quick_analysis(monkeypatch: pytest.MonkeyPatch) -> None:
    """The example's document analysis pretends to take 0.5 s of real time; tests need not."""
    monkeypatch.setattr(parallel, "ANALYSIS_SECONDS", 0.0)


def document(document_id: str = "doc-1") -> DocumentReviewRequest:
    return DocumentReviewRequest(
        document_id=document_id,
        content="A well written proposal with enough words to review.",
        reviewers=REVIEWERS,
    )


async def test_parallel_review_aggregates_every_reviewer(polos_env: Environment) -> None:
    result = await parallel.parallel_review.run(polos_env.client, document())
    # The result is the workflow's return type, rebuilt: an AggregatedReview model.
    assert isinstance(result, AggregatedReview)
    assert result.total_reviews == 3 and result.approved_count == 3 and result.all_approved
    # Children's results come back in input order.
    assert [r.reviewer_id for r in result.reviews] == REVIEWERS
    # The sequential version agrees.
    sequential = await parallel.sequential_review.run(polos_env.client, document())
    assert sequential.reviews == result.reviews


async def test_data_processor_fans_out_over_chunks(polos_env: Environment) -> None:
    data = [f"item{i}" for i in range(25)]
    result = await parallel.data_processor.run(polos_env.client, {"data": data})
    assert result["chunks_processed"] == 3
    assert result["processed"] == [item.upper() for item in data]


async def test_fire_and_forget_tasks_all_finish(polos_env: Environment) -> None:
    launched = await parallel.launch_tasks.run(polos_env.client, {"task_ids": [1, 2, 3]})
    # launch_tasks returned at once; settle() waits until its children have run too.
    await polos_env.settle()
    for execution_id in launched["launched"]:
        row = await polos_env.client.get_execution(execution_id)
        assert row["status"] == "completed"


async def test_three_day_cooling_off_without_waiting_three_days(polos_env: Environment) -> None:
    handle = await reviews.review_after_cooling_off.invoke(polos_env.client, document("doc-2"))
    await polos_env.advance(days=2, hours=23)
    row = await polos_env.client.get_execution(handle.id)
    assert row["status"] == "waiting"  # suspended in its wait, holding no worker slot

    await polos_env.advance(hours=1)
    result = await handle.result(polos_env.client, timeout=10)
    assert isinstance(result, AggregatedReview)
    assert result.document_id == "doc-2" and result.all_approved


# Only the workflows this test needs: nothing else is registered, so nothing else fires.
@pytest.mark.polos_env(
    workflows=[reviews.nightly_review, parallel.parallel_review, parallel.single_review]
)
async def test_nightly_review_runs_once_a_night(polos_env: Environment) -> None:
    start = polos_env.now()
    await polos_env.advance(days=3)

    response = await polos_env.client.request(
        "GET", "/api/v1/executions", params={"workflow_id": "nightly_review"}
    )
    nights = sorted(response.json()["executions"], key=lambda r: r["payload"]["timestamp"])
    assert len(nights) == 3  # one per night, none twice

    first = start.replace(hour=2, minute=0, second=0, microsecond=0)
    if first <= start:
        first += timedelta(days=1)
    for i, row in enumerate(nights):
        slot = first + timedelta(days=i)
        assert row["status"] == "completed"
        assert row["payload"]["timestamp"].startswith(slot.strftime("%Y-%m-%dT02:00:00"))
        assert row["result"]["document_id"] == f"report-{slot.date().isoformat()}"
        assert row["result"]["approved_count"] == 3


async def test_the_environment_without_the_fixture() -> None:
    """`Environment` is the fixture's engine; use it directly for options per block."""
    async with Environment(max_retries=0) as env:
        handle = await parallel.parallel_review.invoke(env.client, document("doc-3"))
        result = await handle.result(env.client, timeout=10)
        assert result.document_id == "doc-3"
