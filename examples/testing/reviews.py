"""Two workflows built on the parallel-review example, to show time in tests:

- `nightly_review`: every night at 02:00 UTC, the reviewers review that night's report
  (a `parallel_review` child, waited for).
- `review_after_cooling_off`: a document is reviewed only after a three-day cooling-off
  period (`ctx.step.wait_for(days=3)`).

The parallel-review workflows are imported from `examples/parallel_review/workflows.py` by
path, under the module name `parallel_review_workflows`, so that this folder needs no package
layout. In your own project, import your workflow modules as usual.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

from polos import SchedulePayload, WorkflowContext, workflow


def _load(name: str, path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None, path
    module = importlib.util.module_from_spec(spec)
    # Registered before it runs: pydantic models (and the codec, which rebuilds results by
    # `module:QualName`) look the module up by name.
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


parallel = _load(
    "parallel_review_workflows",
    Path(__file__).resolve().parent.parent / "parallel_review" / "workflows.py",
)
AggregatedReview = parallel.AggregatedReview
DocumentReviewRequest = parallel.DocumentReviewRequest

NIGHTLY_REVIEWERS = ["alice", "bob", "carol"]


@workflow(id="nightly_review", schedule="0 2 * * *")
async def nightly_review(ctx: WorkflowContext, payload: SchedulePayload) -> AggregatedReview:
    """Every night at 02:00 UTC: review that night's report with every reviewer at once."""
    night = payload.timestamp.date().isoformat()
    request = DocumentReviewRequest(
        document_id=f"report-{night}",
        content=f"The report of {night}: all systems nominal, no incidents.",
        reviewers=NIGHTLY_REVIEWERS,
    )
    review: AggregatedReview = await ctx.step.invoke_and_wait(
        "review", parallel.parallel_review, request
    )
    return review


@workflow(id="review_after_cooling_off")
async def review_after_cooling_off(
    ctx: WorkflowContext, payload: DocumentReviewRequest
) -> AggregatedReview:
    """Wait three days (suspended: no worker slot is held), then review."""
    await ctx.step.wait_for("cooling_off", days=3)
    review: AggregatedReview = await ctx.step.invoke_and_wait(
        "review", parallel.parallel_review, payload
    )
    return review
