"""A child workflow that the caller (tests/e2e/apps/steps.py) names only by its ID."""

from __future__ import annotations

from pydantic import BaseModel

from polos import WorkflowContext, workflow


class Doubled(BaseModel):
    value: int


@workflow(id="by_id_child")
async def by_id_child(ctx: WorkflowContext, payload: dict[str, int]) -> Doubled:
    return Doubled(value=payload["n"] * 2)
