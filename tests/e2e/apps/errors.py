"""Workflows that go wrong in the ways a user can cause."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from polos import PolosClient, WorkflowContext, workflow


class StrictPayload(BaseModel):
    count: int = Field(ge=0)
    name: str


@workflow(id="strict_input")
async def strict_input(ctx: WorkflowContext, payload: StrictPayload) -> dict[str, Any]:
    return {"count": payload.count, "name": payload.name}


class NotJson:
    def __repr__(self) -> str:
        return "<NotJson>"


@workflow(id="bad_step_value")
async def bad_step_value(ctx: WorkflowContext, payload: dict[str, Any]) -> dict[str, Any]:
    await ctx.step.run("make_object", NotJson)
    return {"unreachable": True}


@workflow(id="echo")
async def echo(ctx: WorkflowContext, payload: dict[str, Any]) -> dict[str, Any]:
    return {"echo": payload}


@workflow(id="nested_run")
async def nested_run(ctx: WorkflowContext, payload: dict[str, Any]) -> dict[str, Any]:
    client = PolosClient()  # POLOS_API_URL names the server
    result = await echo.run(client, {"from": "inside"})
    return {"unreachable": result}


@workflow(id="duplicate_key")
async def duplicate_key(ctx: WorkflowContext, payload: dict[str, Any]) -> dict[str, Any]:
    await ctx.step.run("same", lambda: 1)
    await ctx.step.run("same", lambda: 2)
    return {"unreachable": True}
