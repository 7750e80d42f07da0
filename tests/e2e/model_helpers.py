"""Helpers of the workflow-model tests (issue 5): polling an execution's status, reading a
topic, the JSON logs the apps append to, and the database behind a server."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import polos
from polos import protocol
from polos.testing import advance_clock, server_time
from tests.e2e.conftest import Server, async_wait_until
from tests.faults.checker import query

TIMEOUT = 30.0

__all__ = [
    "TIMEOUT",
    "advance_clock",
    "db",
    "events_of",
    "executions_of",
    "log_lines",
    "reach_status",
    "server_time",
]


async def reach_status(
    client: polos.PolosClient, execution_id: str, *statuses: str, timeout: float = TIMEOUT
) -> dict[str, Any]:
    """Poll until the execution is in one of `statuses` (404 counts as not yet); return it."""

    async def check() -> dict[str, Any] | None:
        try:
            row = await client.get_execution(execution_id)
        except polos.PolosApiError as exc:
            if exc.status == 404:
                return None
            raise
        return row if row["status"] in statuses else None

    row: dict[str, Any] = await async_wait_until(
        check, timeout, f"execution {execution_id} to be {'/'.join(statuses)}"
    )
    return row


async def events_of(client: polos.PolosClient, topic: str, after: int = 0) -> list[dict[str, Any]]:
    """Every event of `topic` after sequence `after` (GET /api/v1/events, all pages)."""
    out: list[dict[str, Any]] = []
    while True:
        response = await client.request(
            "GET",
            f"{protocol.API_PREFIX}/events",
            params={"topic": topic, "last_sequence_id": str(after), "limit": "1000"},
        )
        page = response.json()
        out.extend(page["events"])
        if not page["events"]:
            return out
        after = page["next_sequence_id"]


async def executions_of(client: polos.PolosClient, workflow_id: str) -> list[dict[str, Any]]:
    """Every execution of `workflow_id`, oldest first."""
    out: list[dict[str, Any]] = []
    params = {"workflow_id": workflow_id, "limit": "500"}
    while True:
        response = await client.request("GET", f"{protocol.API_PREFIX}/executions", params=params)
        page = response.json()
        out.extend(page["executions"])
        if not page.get("next_cursor"):
            return list(reversed(out))
        params["cursor"] = page["next_cursor"]


def log_lines(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines()]


def db(server: Server, sql: str) -> list[tuple[Any, ...]]:
    """Run a read-only query on the server's database (SQLite file or PostgreSQL)."""
    return query(server.database_url, sql)
