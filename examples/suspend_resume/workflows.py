"""Suspend and resume: workflows that pause until someone (or something) answers.

`ctx.step.suspend(key, data, timeout)` publishes a `suspend_{key}` event with `data` on the
execution's topic and suspends the execution: it holds no worker slot while it waits. A
`client.resume(workflow_id, execution_id, key, answer)` publishes `resume_{key}`; the execution
is queued again and `suspend` returns the resume event as a dict, the answer in `["data"]`.

- `approval_workflow`: one approval, with a 24-hour timeout.
- `multi_step_form`: three suspends in a row, one per page of a form.
- `document_review`: one suspend per reviewer, keys `review_{i}_{name}`.
"""

from pydantic import BaseModel

from polos import WorkflowContext, workflow

# ============================================================================ approval models


class ApprovalRequest(BaseModel):
    request_id: str
    requester: str
    description: str
    amount: float


class ApprovalDecision(BaseModel):
    approved: bool
    approver: str
    comments: str | None = None


class ApprovalResult(BaseModel):
    request_id: str
    status: str
    approved: bool | None = None
    approver: str | None = None
    comments: str | None = None


# ============================================================================ form models


class PersonalInfo(BaseModel):
    first_name: str
    last_name: str
    email: str


class AddressInfo(BaseModel):
    street: str
    city: str
    country: str


class Preferences(BaseModel):
    newsletter: bool = False
    notifications: bool = True


class MultiStepFormPayload(BaseModel):
    form_id: str
    form_type: str = "registration"


class MultiStepFormResult(BaseModel):
    form_id: str
    status: str
    personal_info: PersonalInfo | None = None
    address_info: AddressInfo | None = None
    preferences: Preferences | None = None
    fields_count: int = 0


# ============================================================================ review models


class ReviewFeedback(BaseModel):
    approved: bool
    comments: str | None = None
    rating: int | None = None  # 1-5


class ReviewerResult(BaseModel):
    reviewer: str
    feedback: ReviewFeedback


class DocumentReviewPayload(BaseModel):
    document_id: str
    document_title: str
    reviewers: list[str]


class DocumentReviewResult(BaseModel):
    document_id: str
    document_title: str
    reviews: list[ReviewerResult]
    all_approved: bool
    status: str


# ============================================================================ approval


@workflow(id="approval_workflow")
async def approval_workflow(ctx: WorkflowContext, payload: ApprovalRequest) -> ApprovalResult:
    """Prepare the request, wait for a decision, act on it."""
    await ctx.step.run(
        "prepare_request", lambda: {"prepared": True, "request_id": payload.request_id}
    )

    # The execution pauses here until `client.resume(..., "await_approval", decision)`. After
    # 24 hours without an answer the step fails with StepExecutionError (SuspendTimeoutError).
    resume_event = await ctx.step.suspend(
        "await_approval",
        data={
            "request_id": payload.request_id,
            "requester": payload.requester,
            "description": payload.description,
            "amount": payload.amount,
            "message": "Please review and approve/reject this request",
        },
        timeout=86400,
    )
    decision = ApprovalDecision.model_validate(resume_event.get("data", {}))

    if decision.approved:
        await ctx.step.run(
            "process_approval", lambda: {"action": "approved", "request_id": payload.request_id}
        )
        status = "approved"
    else:
        await ctx.step.run(
            "process_rejection", lambda: {"action": "rejected", "request_id": payload.request_id}
        )
        status = "rejected"

    return ApprovalResult(
        request_id=payload.request_id,
        status=status,
        approved=decision.approved,
        approver=decision.approver,
        comments=decision.comments,
    )


# ============================================================================ multi-step form


@workflow(id="multi_step_form")
async def multi_step_form(
    ctx: WorkflowContext, payload: MultiStepFormPayload
) -> MultiStepFormResult:
    """Three suspends in a row: each page of the form is one resume."""
    step1 = await ctx.step.suspend(
        "personal_info",
        data={
            "form_id": payload.form_id,
            "step": 1,
            "total_steps": 3,
            "prompt": "Please provide your personal information",
            "fields": ["first_name", "last_name", "email"],
        },
    )
    personal_info = PersonalInfo.model_validate(step1.get("data", {}))

    step2 = await ctx.step.suspend(
        "address_info",
        data={
            "form_id": payload.form_id,
            "step": 2,
            "total_steps": 3,
            "prompt": "Please provide your address",
            "fields": ["street", "city", "country"],
        },
    )
    address_info = AddressInfo.model_validate(step2.get("data", {}))

    step3 = await ctx.step.suspend(
        "preferences",
        data={
            "form_id": payload.form_id,
            "step": 3,
            "total_steps": 3,
            "prompt": "Please select your preferences",
            "fields": ["newsletter", "notifications"],
        },
    )
    preferences = Preferences.model_validate(step3.get("data", {}))

    fields_count = 3 + 3 + 2  # personal + address + preferences
    return MultiStepFormResult(
        form_id=payload.form_id,
        status="completed",
        personal_info=personal_info,
        address_info=address_info,
        preferences=preferences,
        fields_count=fields_count,
    )


# ============================================================================ document review


@workflow(id="document_review")
async def document_review(
    ctx: WorkflowContext, payload: DocumentReviewPayload
) -> DocumentReviewResult:
    """One suspend per reviewer, in order; the keys carry the index and the name."""
    reviews: list[ReviewerResult] = []
    for i, reviewer in enumerate(payload.reviewers):
        review_event = await ctx.step.suspend(
            f"review_{i}_{reviewer}",
            data={
                "document_id": payload.document_id,
                "document_title": payload.document_title,
                "reviewer": reviewer,
                "reviewer_number": i + 1,
                "total_reviewers": len(payload.reviewers),
                "prompt": f"Please review document: {payload.document_title}",
                "fields": ["approved", "comments", "rating"],
            },
            timeout=172800,  # 48 hours per reviewer
        )
        feedback = ReviewFeedback.model_validate(review_event.get("data", {}))
        reviews.append(ReviewerResult(reviewer=reviewer, feedback=feedback))

    all_approved = all(r.feedback.approved for r in reviews)
    return DocumentReviewResult(
        document_id=payload.document_id,
        document_title=payload.document_title,
        reviews=reviews,
        all_approved=all_approved,
        status="approved" if all_approved else "needs_revision",
    )
