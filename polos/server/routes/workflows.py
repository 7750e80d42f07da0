"""The workflows registered in the project (by its workers)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from polos import protocol
from polos.model import RegisteredWorkflow
from polos.server.http import json_response, project_of
from polos.server.state import state_of
from polos.server.views import iso
from polos.store.base import StoreTx

router = APIRouter(prefix=protocol.API_PREFIX, tags=["workflows"])


@router.get(
    "/workflows",
    response_model=protocol.WorkflowList,
    summary="List the workflows the project's workers registered",
)
async def list_workflows(request: Request) -> Response:
    state = state_of(request)
    project = project_of(request)

    async def work(tx: StoreTx) -> list[RegisteredWorkflow]:
        return await tx.list_workflows(project)

    rows = await state.store.read(work)
    return json_response(
        protocol.WorkflowList(
            workflows=[
                protocol.WorkflowView(
                    workflow_id=r.workflow_id,
                    queue_name=r.queue_name,
                    registered_at=iso(r.registered_at) or "",
                    last_registered_at=iso(r.last_registered_at) or "",
                )
                for r in rows
            ]
        )
    )
