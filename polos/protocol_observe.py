"""Wire models of the observability API: what the CLI and the dashboard read: journals with
timings, progress of fan-outs, trees, queues, recent events (docs/cli.md)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from polos.protocol_base import StoredError
from polos.protocol_events import EventView


class StatusCounts(BaseModel):
    """Executions by status; `total` is their sum."""

    queued: int = 0
    running: int = 0
    waiting: int = 0
    completed: int = 0
    failed: int = 0
    cancelled: int = 0
    total: int = 0


class StepView(BaseModel):
    """One journal entry. `created_at`: when the server recorded it (for a waiting step: when
    the wait began); `completed_at`: when its outcome was recorded; `duration_seconds`: the
    body's duration as the worker measured it when reported, else completed_at - created_at
    (a wait's length), else null (still pending)."""

    key: str
    kind: str
    status: str
    position: int
    created_at: str
    completed_at: str | None = None
    duration_seconds: float | None = None
    error: StoredError | None = None
    output_schema: str | None = None
    # Only with `include_results=true`.
    result: Any = None


class StepList(BaseModel):
    execution_id: str
    steps: list[StepView]
    # Pass as `cursor` for the next page (later steps); null on the last page.
    next_cursor: str | None = None


class ExecutionProgress(BaseModel):
    """Status counts of an execution's direct children and of all its descendants (itself
    excluded)."""

    execution_id: str
    workflow_id: str
    status: str
    children: StatusCounts
    descendants: StatusCounts


class ExecutionSummaryView(BaseModel):
    """An execution as a tree shows it."""

    id: str
    workflow_id: str
    status: str
    parent_execution_id: str | None = None
    step_key: str | None = None
    batch_index: int | None = None
    error: StoredError | None = None
    created_at: str
    started_at: str | None = None
    completed_at: str | None = None


class TreeGroup(BaseModel):
    """The children one step of the parent started (`step_key`), with their counts; at most
    `limit_per_group` of them are listed, in input order, and `more` says how many are not."""

    step_key: str | None = None
    counts: StatusCounts
    executions: list[TreeNode]
    more: int = 0


class TreeNode(BaseModel):
    execution: ExecutionSummaryView
    # Its direct children by status (all groups).
    children: StatusCounts
    # False when the node's children are not listed (the depth asked for is reached, or the
    # response's node budget ran out); `children` still counts them.
    expanded: bool = False
    groups: list[TreeGroup] = Field(default_factory=list)
    # Groups not listed (a node shows at most MAX_TREE_GROUPS).
    more_groups: int = 0


class ExecutionTree(BaseModel):
    """`GET /executions/{id}/tree`: the fan-out below an execution."""

    root: TreeNode
    # Descendants by level (levels[0]: children, levels[1]: grandchildren, ...), down to
    # `depth` levels.
    levels: list[StatusCounts]
    depth: int
    limit_per_group: int
    # True when the node budget (MAX_TREE_NODES) stopped the listing before `depth`.
    truncated: bool = False


TreeGroup.model_rebuild()


class QueueView(BaseModel):
    name: str
    # None: no limit.
    concurrency_limit: int | None = None
    running: int
    queued: int
    waiting: int


class QueueList(BaseModel):
    queues: list[QueueView]


class RecentEventList(BaseModel):
    """The project's latest events (across topics, or of one), newest first."""

    events: list[EventView]
    # Pass as `before_sequence_id` for older events; null when there are none.
    next_before_sequence_id: int | None = None
