"""The SQL floor's workload (bench/sql_floor.py): the names it writes under, and the rows of one
parent and its N children, built before the clock starts; plus the check of the outcome that
both databases' halves (sql_floor_sqlite.py, sql_floor_pg.py) share.
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass
from typing import Any

import workload

from polos import protocol

PROJECT = "sql-floor"  # its own project: a database shared with a server sees no work
QUEUE = "single_review"  # a workflow's default queue is named after it
CHILD_WF = "single_review"
PARENT_WF = "parallel_review"
STEP_KEY = "reviews"
WORKER_ID = "sql-floor-worker"
LEASE_S = 10.0
REVIEW_SCHEMA = "workload:Review"

CHILD_COLUMNS = (
    "id, project_id, workflow_id, status, queue_name, concurrency_key, payload, "
    "parent_execution_id, root_execution_id, root_workflow_id, parent_step_key, batch_index, "
    "notify_parent, ready_at, created_at, updated_at"
)


# -- the rows, built before the clock starts -------------------------------------------------


@dataclass
class Batch:
    parent_id: str
    parent_payload: str
    ids: list[str]
    payloads: list[str]
    words: str  # count_words' result (JSON)
    reviews: list[str]  # score_review's result = the child's result (JSON)
    child_rows: list[tuple[Any, ...]]  # SQLite's INSERT parameters (CHILD_COLUMNS)


def make_batch(n: int) -> Batch:
    parent_id = str(uuid.uuid4())
    # The engine's own child IDs (clustered per step), so the floor pays what the engine pays.
    ids = [protocol.child_execution_id(parent_id, STEP_KEY, i) for i in range(n)]
    reviewers = workload.reviewers(n)
    words = workload.count_words(workload.CONTENT)
    payloads = [workload.single_request(r).model_dump_json() for r in reviewers]
    t, pid = time.time(), parent_id
    return Batch(
        parent_id=parent_id,
        parent_payload=workload.ParallelReviewRequest(
            document_id=workload.DOCUMENT_ID, content=workload.CONTENT, reviewers=reviewers
        ).model_dump_json(),
        ids=ids,
        payloads=payloads,
        child_rows=[
            (c, PROJECT, CHILD_WF, QUEUE, p, pid, pid, PARENT_WF, STEP_KEY, i, t, t, t)
            for i, (c, p) in enumerate(zip(ids, payloads, strict=True))
        ],
        words=json.dumps(words),
        reviews=[
            workload.score_review(r, workload.DOCUMENT_ID, words).model_dump_json()
            for r in reviewers
        ],
    )


def check_counts(n: int, completed: int, steps: int, parent_status: str | None) -> str | None:
    """None when a run left what it should (N completed children, two step rows each, the
    parent queued again); else what it left instead."""
    if completed != n or steps != 2 * n or parent_status != "queued":
        return (
            f"expected {n} completed children, {2 * n} step rows and a queued parent; got "
            f"{completed}, {steps}, {parent_status}"
        )
    return None
