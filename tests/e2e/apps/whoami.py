"""A workflow that says which worker process ran it (for the isolation tests)."""

from __future__ import annotations

import os
from typing import Any

from polos import WorkflowContext, workflow


@workflow(id="whoami")
async def whoami(ctx: WorkflowContext, payload: dict[str, Any]) -> dict[str, Any]:
    return {"pid": os.getpid(), "n": payload.get("n")}
