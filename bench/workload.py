"""The peers' fan-out workload, written for polos (see /work/shared/bench/peers/README.md).

- `single_review(reviewer_id, document_id, content)`: two durable steps, count the words, then
  return `{approved, score: 8, comments}`;
- `parallel_review(document_id, content, reviewers)`: starts one `single_review` child per
  reviewer at once (one `batch_invoke_and_wait` step), waits for all, aggregates.

The step functions are plain (synchronous) functions, as in the peers' versions; polos runs
them in a thread. The benchmark scripts import this module as `workload` (bench/ is on
sys.path), in the client and in the worker processes alike, so stored schema names agree.
"""

from __future__ import annotations

from pydantic import BaseModel

import polos
from polos import BatchWorkflowInput, WorkflowContext

# The same document as every peer engine (126 words; the peers' comment says 120).
DOCUMENT_ID = "doc-1"
CONTENT = (
    "The quick brown fox jumps over the lazy dog while the reviewer reads "
    "every line of this short design document carefully. "
) * 6


class ReviewRequest(BaseModel):
    reviewer_id: str
    document_id: str
    content: str


class Review(BaseModel):
    reviewer_id: str
    approved: bool
    score: int
    comments: str


class ParallelReviewRequest(BaseModel):
    document_id: str
    content: str
    reviewers: list[str]


class ReviewSummary(BaseModel):
    document_id: str
    reviews: int
    approved: int
    average_score: float


# -- the pure logic (identical to the peers' benchlib) ------------------------------------


def count_words(content: str) -> int:
    return len(content.split())


def score_review(reviewer_id: str, document_id: str, words: int) -> Review:
    score = 8
    return Review(
        reviewer_id=reviewer_id,
        approved=score >= 6,
        score=score,
        comments=f"{reviewer_id} reviewed {document_id}: {words} words, looks good",
    )


def aggregate(document_id: str, results: list[Review]) -> ReviewSummary:
    n = len(results)
    approved = sum(1 for r in results if r.approved)
    average = sum(r.score for r in results) / n if n else 0.0
    return ReviewSummary(
        document_id=document_id, reviews=n, approved=approved, average_score=average
    )


# -- workflows ----------------------------------------------------------------------------


@polos.workflow(id="single_review")
async def single_review(ctx: WorkflowContext, req: ReviewRequest) -> Review:
    words: int = await ctx.step.run("count_words", count_words, req.content)
    review: Review = await ctx.step.run(
        "score_review", score_review, req.reviewer_id, req.document_id, words
    )
    return review


@polos.workflow(id="parallel_review")
async def parallel_review(ctx: WorkflowContext, req: ParallelReviewRequest) -> ReviewSummary:
    children = [
        BatchWorkflowInput(
            id=single_review.id,
            payload=ReviewRequest(
                reviewer_id=reviewer, document_id=req.document_id, content=req.content
            ),
        )
        for reviewer in req.reviewers
    ]
    outcomes = await ctx.step.batch_invoke_and_wait("reviews", children)
    failed = [o for o in outcomes if not o.success]
    if failed:
        raise RuntimeError(f"{len(failed)} review(s) failed, first: {failed[0].error}")
    reviews = [Review.model_validate(o.result) for o in outcomes]
    return aggregate(req.document_id, reviews)


WORKFLOWS = [single_review, parallel_review]


# -- inputs and checks used by the benchmark scripts ---------------------------------------


def reviewers(n: int) -> list[str]:
    return [f"reviewer-{i}" for i in range(n)]


def parent_request(n: int) -> ParallelReviewRequest:
    return ParallelReviewRequest(document_id=DOCUMENT_ID, content=CONTENT, reviewers=reviewers(n))


def single_request(reviewer_id: str = "reviewer-x") -> ReviewRequest:
    return ReviewRequest(reviewer_id=reviewer_id, document_id=DOCUMENT_ID, content=CONTENT)


def check_summary(summary: object, n: int) -> str | None:
    """None when `summary` is the right aggregate of n reviews, else what is wrong."""
    if not isinstance(summary, ReviewSummary):
        return f"expected a ReviewSummary, got {type(summary).__name__}: {summary!r:.200}"
    if summary.reviews != n or summary.approved != n or abs(summary.average_score - 8.0) > 1e-9:
        return f"wrong aggregate for N={n}: {summary!r}"
    return None


def check_review(review: object) -> str | None:
    if not isinstance(review, Review):
        return f"expected a Review, got {type(review).__name__}: {review!r:.200}"
    words = f"{count_words(CONTENT)} words"
    if not review.approved or review.score != 8 or words not in review.comments:
        return f"wrong review: {review!r}"
    return None
