"""A workflow module written with postponed annotations whose models are defined *after* the
functions that use them (imported by test_workflow_decorator.py)."""

from __future__ import annotations

from pydantic import BaseModel

from polos import WorkflowContext, workflow


@workflow(id="fixture_future_annotations")
async def late_models(ctx: WorkflowContext, payload: LateRequest) -> LateResult:
    return LateResult(echoed=payload.text, pages=len(payload.pages))


@workflow(id="fixture_future_annotations_optional")
async def late_optional(ctx: WorkflowContext, payload: LateRequest | None) -> list[LateResult]:
    return []


class LateRequest(BaseModel):
    text: str
    pages: list[int]


class LateResult(BaseModel):
    echoed: str
    pages: int
