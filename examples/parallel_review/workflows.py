"""Parallel review workflows.

Run several workflows at once and aggregate what they return:

- `single_review`: one reviewer reviews one document (two durable steps).
- `parallel_review`: every reviewer at once with `batch_invoke_and_wait`, then aggregation.
- `sequential_review`: the same reviews one after the other with `invoke_and_wait`
  (to compare timings with `parallel_review`).
- `data_processor` / `process_chunk`: fan-out/fan-in over chunks of 10 items.
- `launch_tasks` / `task`: fire-and-forget with `batch_invoke`.
"""

import asyncio

from pydantic import BaseModel

from polos import WorkflowContext, workflow
from polos.types.types import BatchWorkflowInput

# How long one simulated document analysis takes. It makes the difference between running
# reviews one after the other and running them in parallel visible.
ANALYSIS_SECONDS = 0.5


# ----------------------------------------------------------------------------- models


class ReviewRequest(BaseModel):
    """One reviewer, one document."""

    reviewer_id: str
    document_id: str
    content: str


class ReviewResult(BaseModel):
    """What one reviewer decided."""

    reviewer_id: str
    document_id: str
    approved: bool
    score: int  # 1-10
    comments: str


class DocumentReviewRequest(BaseModel):
    """A document and the reviewers who must review it."""

    document_id: str
    content: str
    reviewers: list[str]


class AggregatedReview(BaseModel):
    """All reviews of one document, summed up."""

    document_id: str
    total_reviews: int
    approved_count: int
    average_score: float
    all_approved: bool
    reviews: list[ReviewResult]
    failed_reviewers: list[str] = []


# ----------------------------------------------------------------------------- one review


async def analyze_document(document_id: str, content: str) -> dict:
    """Pretend to analyse the document (takes ANALYSIS_SECONDS)."""
    await asyncio.sleep(ANALYSIS_SECONDS)
    return {
        "document_id": document_id,
        "word_count": len(content.split()),
        "quality_score": 8,  # simulated
    }


def generate_review(reviewer_id: str, analysis: dict) -> dict:
    """Turn an analysis into a decision."""
    score = analysis.get("quality_score", 5)
    return {
        "approved": score >= 6,
        "score": score,
        "comments": f"Review by {reviewer_id}: quality score {score}/10",
    }


@workflow(id="single_review")
async def single_review(ctx: WorkflowContext, payload: ReviewRequest) -> ReviewResult:
    """One review. Each step runs once; a replay returns its recorded result."""
    analysis = await ctx.step.run(
        "analyze_document", analyze_document, payload.document_id, payload.content
    )
    review = await ctx.step.run("generate_review", generate_review, payload.reviewer_id, analysis)
    return ReviewResult(
        reviewer_id=payload.reviewer_id,
        document_id=payload.document_id,
        approved=review["approved"],
        score=review["score"],
        comments=review["comments"],
    )


def aggregate(document_id: str, reviews: list[ReviewResult], failed: list[str]) -> AggregatedReview:
    approved_count = sum(1 for r in reviews if r.approved)
    average = sum(r.score for r in reviews) / len(reviews) if reviews else 0.0
    return AggregatedReview(
        document_id=document_id,
        total_reviews=len(reviews),
        approved_count=approved_count,
        average_score=average,
        all_approved=bool(reviews) and approved_count == len(reviews) and not failed,
        reviews=reviews,
        failed_reviewers=failed,
    )


# ----------------------------------------------------------------------------- many reviews


@workflow(id="parallel_review")
async def parallel_review(ctx: WorkflowContext, payload: DocumentReviewRequest) -> AggregatedReview:
    """Every reviewer at once: one `single_review` child per reviewer, then aggregation.

    While the children run, this execution waits without holding a worker slot.
    """
    requests = [
        BatchWorkflowInput(
            id="single_review",
            payload=ReviewRequest(
                reviewer_id=reviewer,
                document_id=payload.document_id,
                content=payload.content,
            ),
        )
        for reviewer in payload.reviewers
    ]
    results = await ctx.step.batch_invoke_and_wait("parallel_reviews", requests)

    reviews: list[ReviewResult] = []
    failed: list[str] = []
    for reviewer, batch_result in zip(payload.reviewers, results, strict=True):
        # Check `success` before reading `result`: a failed child is a value, not an exception.
        if not batch_result.success:
            failed.append(reviewer)
            continue
        # `.result` is the child's ReviewResult, rebuilt from the child's return type.
        review: ReviewResult = batch_result.result
        reviews.append(review)
    return aggregate(payload.document_id, reviews, failed)


@workflow(id="sequential_review")
async def sequential_review(
    ctx: WorkflowContext, payload: DocumentReviewRequest
) -> AggregatedReview:
    """The same reviews as `parallel_review`, one after the other."""
    reviews: list[ReviewResult] = []
    for i, reviewer in enumerate(payload.reviewers):
        # Keys in a loop carry the index: a step key is unique within an execution.
        review = await ctx.step.invoke_and_wait(
            f"review_{i}",
            single_review,
            ReviewRequest(
                reviewer_id=reviewer,
                document_id=payload.document_id,
                content=payload.content,
            ),
        )
        reviews.append(review)
    return aggregate(payload.document_id, reviews, [])


# ----------------------------------------------------------------------------- fan-out/fan-in


@workflow(id="data_processor")
async def data_processor(ctx, payload):
    data = payload["data"]

    # Fan-out: Split into chunks
    chunks = [data[i : i + 10] for i in range(0, len(data), 10)]

    requests = [BatchWorkflowInput(id="process_chunk", payload={"chunk": c}) for c in chunks]

    # Execute in parallel
    results = await ctx.step.batch_invoke_and_wait("parallel", requests)

    # Fan-in: Aggregate results
    all_processed = []
    for r in results:
        if r.success:
            all_processed.extend(r.result["items"])

    return {
        "processed": all_processed,
        "total_items": len(data),
        "chunks_processed": sum(1 for r in results if r.success),
    }


def upper_items(items: list) -> list:
    return [item.upper() if isinstance(item, str) else item * 2 for item in items]


@workflow(id="process_chunk")
async def process_chunk(ctx: WorkflowContext, payload: dict) -> dict:
    """Process one chunk: strings are upper-cased, numbers doubled."""
    items = await ctx.step.run("process_items", upper_items, payload["chunk"])
    return {"items": items}


# ----------------------------------------------------------------------------- fire and forget


@workflow(id="launch_tasks")
async def launch_tasks(ctx: WorkflowContext, payload: dict) -> dict:
    """Start one `task` per requested ID and return at once, without waiting for them."""
    requests = [BatchWorkflowInput(id="task", payload={"id": i}) for i in payload["task_ids"]]

    # Launch all workflows (non-blocking)
    handles = await ctx.step.batch_invoke("launch_tasks", requests)

    # Return immediately with execution IDs for tracking
    return {"launched": [h.execution_id for h in handles]}


@workflow(id="task")
async def task(ctx: WorkflowContext, payload: dict) -> dict:
    """A background job."""
    result = await ctx.step.run("execute_task", lambda: {"id": payload["id"], "status": "done"})
    return result
