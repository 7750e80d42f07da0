"""The worker protocol spoken by a test itself over HTTP (a "worker" whose every request the
test decides: when it claims, what it reports, when it falls silent)."""

from __future__ import annotations

import httpx


async def register_protocol_worker(
    http: httpx.AsyncClient, workflow_id: str, queue_name: str, capacity: int = 10
) -> str:
    """Register a worker serving `workflow_id` on `queue_name`; its ID."""
    response = await http.post(
        "/api/v1/workers",
        json={
            "capacity": capacity,
            "workflows": [{"workflow_id": workflow_id, "queue_name": queue_name}],
        },
    )
    assert response.status_code == 200, response.text
    worker_id: str = response.json()["worker_id"]
    return worker_id
