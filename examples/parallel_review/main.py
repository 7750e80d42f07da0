"""Parallel workflow patterns, demonstrated against a running server and worker.

Run with (a server and `python worker.py` running):
    python main.py
"""

import asyncio
import sys
import time
import traceback

from dotenv import load_dotenv
from workflows import (
    DocumentReviewRequest,
    ReviewRequest,
    data_processor,
    launch_tasks,
    parallel_review,
    sequential_review,
    single_review,
)

from polos import PolosClient

load_dotenv()

REVIEWERS = ["alice", "bob", "charlie", "diana"]


def print_header(title: str) -> None:
    print("\n" + "=" * 60)
    print(title)
    print("=" * 60)


def print_section(title: str) -> None:
    print(f"\n--- {title} ---")


async def demo_single_review(client: PolosClient) -> None:
    print_header("1. Single Review")
    print("One reviewer, one document: a workflow with two durable steps.")

    result = await single_review.run(
        client,
        ReviewRequest(
            reviewer_id="alice",
            document_id="DOC-001",
            content="This is a sample document for review. It contains important information.",
        ),
    )
    # `run` returns the workflow's return value rebuilt into its model: a ReviewResult.
    print(f"  Reviewer: {result.reviewer_id}")
    print(f"  Document: {result.document_id}")
    print(f"  Approved: {result.approved}")
    print(f"  Score: {result.score}/10")
    print(f"  Comments: {result.comments}")


async def demo_parallel_review(client: PolosClient) -> None:
    print_header("2. Parallel Review (batch_invoke_and_wait)")
    print("All reviewers review the document at the same time; the results are aggregated.")
    print(f"  Document: DOC-002, reviewers: {', '.join(REVIEWERS)}")

    result = await parallel_review.run(
        client,
        DocumentReviewRequest(
            document_id="DOC-002",
            content="An important proposal that needs several approvals.",
            reviewers=REVIEWERS,
        ),
    )

    print_section("Aggregated results")
    print(f"  Document ID: {result.document_id}")
    print(f"  Total Reviews: {result.total_reviews}")
    print(f"  Approved Count: {result.approved_count}/{result.total_reviews}")
    print(f"  Average Score: {result.average_score:.1f}/10")
    print(f"  All Approved: {result.all_approved}")
    print("  Individual reviews:")
    for review in result.reviews:
        status = "[OK]" if review.approved else "[X] "
        print(f"    {status} {review.reviewer_id}: score={review.score}")


async def demo_data_processor(client: PolosClient) -> None:
    print_header("3. Data Processing (fan-out/fan-in)")
    print("The data is split into chunks of 10, processed in parallel, then gathered.")

    data = [f"item_{i}" for i in range(25)]
    result = await data_processor.run(client, {"data": data})

    # data_processor has no return annotation: its result is a plain dict.
    print(f"  Total items: {result['total_items']}")
    print(f"  Chunks processed: {result['chunks_processed']}")
    print(f"  Items processed: {len(result['processed'])}")
    print("  Sample results (first 5):")
    for item in result["processed"][:5]:
        print(f"    - {item}")


async def demo_fire_and_forget(client: PolosClient) -> None:
    print_header("4. Fire and Forget (batch_invoke)")
    print("The launcher starts 5 tasks and returns their IDs without waiting for them.")

    result = await launch_tasks.run(client, {"task_ids": list(range(5))})
    launched = result["launched"]
    print(f"  Tasks launched: {len(launched)}")
    print("  Execution IDs:")
    for execution_id in launched:
        print(f"    - {execution_id}")

    print_section("Checking on the tasks later")
    for execution_id in launched:
        execution = await client.wait_for_execution(execution_id, timeout=60)
        print(f"    {execution_id[:8]}... {execution['status']}: {execution['result']}")


async def demo_timing(client: PolosClient) -> None:
    print_header("5. Sequential vs Parallel")
    print(f"The same {len(REVIEWERS)} reviews, one after the other, then all at once.")

    request = DocumentReviewRequest(
        document_id="DOC-003", content="Timing test document", reviewers=REVIEWERS
    )

    start = time.perf_counter()
    sequential = await sequential_review.run(client, request)
    sequential_time = time.perf_counter() - start
    print(f"  Sequential: {sequential.total_reviews} reviews in {sequential_time:.2f} s")

    start = time.perf_counter()
    parallel = await parallel_review.run(client, request)
    parallel_time = time.perf_counter() - start
    print(f"  Parallel:   {parallel.total_reviews} reviews in {parallel_time:.2f} s")

    print(f"  Speedup: {sequential_time / parallel_time:.1f}x faster in parallel")


async def main() -> int:
    print("Parallel Review Workflow Examples")
    print("  1. Single review workflow")
    print("  2. Parallel multi-reviewer workflow (batch_invoke_and_wait)")
    print("  3. Data chunk processing (fan-out/fan-in)")
    print("  4. Fire-and-forget batch (batch_invoke)")
    print("  5. Sequential vs parallel comparison")

    async with PolosClient() as client:
        try:
            await demo_single_review(client)
            await demo_parallel_review(client)
            await demo_data_processor(client)
            await demo_fire_and_forget(client)
            await demo_timing(client)
        except Exception:
            print("\nA demo failed:", file=sys.stderr)
            traceback.print_exc()
            return 1

    print("\n" + "=" * 60)
    print("All demos completed!")
    print("=" * 60)
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
