"""Workflows for the cluster tests: a big fan-out whose children run in a queue limited to 3
and log when their step body starts and ends, so the test can check the limit across the
cluster and that every body ran once."""

from __future__ import annotations

import os
import time
from typing import Any

from polos import Queue, WorkflowContext, workflow
from polos.types.types import BatchWorkflowInput
from tests.e2e.apps.engine import append_line

CLUSTER_QUEUE = Queue("cluster_q", concurrency_limit=3)


def _body(log: str, index: int) -> int:
    append_line(log, f"start {index} {os.getpid()} {time.time():.6f}")
    time.sleep(0.002)
    append_line(log, f"end {index} {os.getpid()} {time.time():.6f}")
    return index


@workflow(id="cluster_child", queue=CLUSTER_QUEUE)
async def cluster_child(ctx: WorkflowContext, payload: dict[str, Any]) -> dict[str, int]:
    index = await ctx.step.run("body", _body, payload["log"], payload["index"])
    return {"index": index}


@workflow(id="cluster_parent")
async def cluster_parent(ctx: WorkflowContext, payload: dict[str, Any]) -> dict[str, Any]:
    results = await ctx.step.batch_invoke_and_wait(
        "children",
        [
            BatchWorkflowInput(id="cluster_child", payload={"log": payload["log"], "index": i})
            for i in range(payload["n"])
        ],
    )
    return {
        "indices": [r.result["index"] if r.success else None for r in results],
        "failed": [r.error for r in results if not r.success],
    }
