"""The SQL of projects, workflows, queues, their usage, API keys and workers on PostgreSQL (a
mixin of `PgTx`, polos/store/postgres_tx.py; polos/store/sqlite_registry.py is its SQLite
counterpart)."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Collection, Mapping, Sequence
from typing import TYPE_CHECKING

from polos.model import ApiKey, RegisteredWorkflow, WorkerInfo, WorkflowRegistration
from polos.store.base import UsageKey

if TYPE_CHECKING:
    from polos.store.postgres_base import PgConnection

_KEY_COLUMNS = "id, project_id, name, key_hash, prefix, created_at, revoked_at"


class PgRegistryOps:
    _c: PgConnection  # PgTx's connection, set in its __init__
    _usage: Counter[UsageKey]  # usage changes not yet written (PgTx's, set in its __init__)

    # -- projects, workflows, queues -----------------------------------------------------

    async def ensure_project(self, project_id: str, now: float) -> None:
        await self._c.execute(
            "INSERT INTO projects (id, created_at) VALUES ($1, $2) ON CONFLICT DO NOTHING",
            project_id,
            now,
        )

    async def upsert_workflows(
        self, project_id: str, registrations: Sequence[WorkflowRegistration], now: float
    ) -> None:
        await self._c.executemany(
            "INSERT INTO workflows (project_id, workflow_id, queue_name, registered_at, "
            "last_registered_at) VALUES ($1, $2, $3, $4, $4) "
            "ON CONFLICT (project_id, workflow_id) DO UPDATE SET "
            "queue_name = excluded.queue_name, last_registered_at = excluded.last_registered_at",
            [
                (project_id, r.workflow_id, r.queue_name, now)
                for r in sorted(registrations, key=lambda r: r.workflow_id)
            ],
        )

    async def known_workflows(
        self, project_id: str, workflow_ids: Collection[str]
    ) -> dict[str, str]:
        rows = await self._c.fetch(
            "SELECT workflow_id, queue_name FROM workflows WHERE project_id = $1 "
            "AND workflow_id = ANY($2::text[])",
            project_id,
            list(set(workflow_ids)),
        )
        return {r[0]: r[1] for r in rows}

    async def list_workflows(self, project_id: str) -> list[RegisteredWorkflow]:
        rows = await self._c.fetch(
            "SELECT workflow_id, queue_name, registered_at, last_registered_at "
            "FROM workflows WHERE project_id = $1 ORDER BY workflow_id",
            project_id,
        )
        return [RegisteredWorkflow(*r) for r in rows]

    async def ensure_queues(
        self,
        project_id: str,
        queues: Mapping[str, int | None],
        now: float,
        overwrite_limits: bool,
    ) -> None:
        conflict = (
            "ON CONFLICT (project_id, name) DO UPDATE SET "
            "concurrency_limit = excluded.concurrency_limit"
            if overwrite_limits
            else "ON CONFLICT DO NOTHING"
        )
        await self._c.executemany(
            "INSERT INTO queues (project_id, name, concurrency_limit, created_at) "
            f"VALUES ($1, $2, $3, $4) {conflict}",
            [(project_id, name, limit, now) for name, limit in sorted(queues.items())],
        )

    async def queue_limits(self, project_id: str) -> dict[str, int | None]:
        rows = await self._c.fetch(
            "SELECT name, concurrency_limit FROM queues WHERE project_id = $1", project_id
        )
        return {r[0]: r[1] for r in rows}

    async def lock_queue_for_claim(self, project_id: str, queue_name: str) -> None:
        await self._c.execute(
            "SELECT 1 FROM queues WHERE project_id = $1 AND name = $2 FOR UPDATE",
            project_id,
            queue_name,
        )

    async def queue_usage(self, project_id: str, queue_name: str) -> dict[str, int]:
        await self.flush_usage()  # what this transaction changed, before it is read
        rows = await self._c.fetch(
            "SELECT concurrency_key, running FROM queue_usage "
            "WHERE project_id = $1 AND queue_name = $2",
            project_id,
            queue_name,
        )
        return {r[0]: r[1] for r in rows}

    async def adjust_usage(self, deltas: Mapping[UsageKey, int]) -> None:
        """Noted, and written with the unit's last statement (`PgTx.close_unit`, with the
        status counters): a round trip less for every claim and every report that frees a
        slot. Nothing is lost by the wait: a limit is read (`queue_usage`) only after
        `flush_usage`, and the row locks are taken at the end, sorted, like the counters'."""
        for key, delta in deltas.items():
            if delta:
                self._usage[key] += delta

    async def flush_usage(self) -> None:
        """Write the usage this transaction changed so far (before a read of it)."""
        rows = [(p, q, k, d) for (p, q, k), d in sorted(self._usage.items()) if d]
        self._usage.clear()
        if rows:
            await self._c.executemany(
                "INSERT INTO queue_usage (project_id, queue_name, concurrency_key, running) "
                "VALUES ($1, $2, $3, GREATEST($4::int, 0)) "
                "ON CONFLICT (project_id, queue_name, concurrency_key) "
                "DO UPDATE SET running = GREATEST(queue_usage.running + $4::int, 0)",
                rows,
            )

    # -- API keys ----------------------------------------------------------------------------

    async def insert_api_key(self, key: ApiKey) -> None:
        await self._c.execute(
            "INSERT INTO api_keys (id, project_id, name, key_hash, prefix, created_at) "
            "VALUES ($1, $2, $3, $4, $5, $6)",
            key.id,
            key.project_id,
            key.name,
            key.key_hash,
            key.prefix,
            key.created_at,
        )

    async def api_key_by_hash(self, key_hash: str) -> ApiKey | None:
        r = await self._c.fetchrow(
            f"SELECT {_KEY_COLUMNS} FROM api_keys WHERE key_hash = $1", key_hash
        )
        return None if r is None else ApiKey(*r)

    async def list_api_keys(self, project_id: str | None) -> list[ApiKey]:
        rows = await self._c.fetch(
            f"SELECT {_KEY_COLUMNS} FROM api_keys WHERE $1::text IS NULL OR project_id = $1 "
            "ORDER BY created_at",
            project_id,
        )
        return [ApiKey(*r) for r in rows]

    async def revoke_api_key(self, key_id: str, now: float) -> bool:
        found = await self._c.fetchval(
            "UPDATE api_keys SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL RETURNING id",
            now,
            key_id,
        )
        return found is not None

    # -- workers ---------------------------------------------------------------------------

    async def save_worker(self, worker: WorkerInfo) -> None:
        await self._c.execute(
            "INSERT INTO workers (id, project_id, deployment_id, capacity, workflow_ids, "
            "registered_at, last_heartbeat_at) VALUES ($1, $2, $3, $4, $5, $6, $7) "
            "ON CONFLICT (id) DO UPDATE SET project_id = excluded.project_id, "
            "deployment_id = excluded.deployment_id, capacity = excluded.capacity, "
            "workflow_ids = excluded.workflow_ids, registered_at = excluded.registered_at, "
            "last_heartbeat_at = excluded.last_heartbeat_at",
            worker.id,
            worker.project_id,
            worker.deployment_id,
            worker.capacity,
            json.dumps(worker.workflow_ids),
            worker.registered_at,
            worker.last_heartbeat_at,
        )

    async def get_worker(self, worker_id: str) -> WorkerInfo | None:
        r = await self._c.fetchrow(
            "SELECT id, project_id, deployment_id, capacity, workflow_ids, registered_at, "
            "last_heartbeat_at FROM workers WHERE id = $1",
            worker_id,
        )
        if r is None:
            return None
        return WorkerInfo(r[0], r[1], r[2], r[3], json.loads(r[4]), r[5], r[6])

    async def worker_and_queue_limits(
        self, worker_id: str, project_id: str
    ) -> tuple[WorkerInfo | None, dict[str, int | None]]:
        # A row per queue of the project (none without queues), the worker's columns
        # repeated on each; a worker without queues or gone: read on its own.
        rows = await self._c.fetch(
            "SELECT w.id, w.project_id, w.deployment_id, w.capacity, w.workflow_ids, "
            "w.registered_at, w.last_heartbeat_at, q.name, q.concurrency_limit "
            "FROM workers w LEFT JOIN queues q ON q.project_id = $2 "
            "WHERE w.id = $1 ORDER BY q.name",
            worker_id,
            project_id,
        )
        if not rows:
            return None, await self.queue_limits(project_id)
        r = rows[0]
        worker = WorkerInfo(r[0], r[1], r[2], r[3], json.loads(r[4]), r[5], r[6])
        return worker, {q[7]: q[8] for q in rows if q[7] is not None}

    async def list_workers(self, project_id: str) -> list[WorkerInfo]:
        rows = await self._c.fetch(
            "SELECT id, project_id, deployment_id, capacity, workflow_ids, registered_at, "
            "last_heartbeat_at FROM workers WHERE project_id = $1 ORDER BY registered_at",
            project_id,
        )
        return [WorkerInfo(r[0], r[1], r[2], r[3], json.loads(r[4]), r[5], r[6]) for r in rows]

    async def touch_worker(self, worker_id: str, now: float) -> bool:
        found = await self._c.fetchval(
            "UPDATE workers SET last_heartbeat_at = $1 WHERE id = $2 RETURNING id",
            now,
            worker_id,
        )
        return found is not None

    async def touch_all_workers(self, now: float) -> None:
        await self._c.execute(
            "UPDATE workers SET last_heartbeat_at = GREATEST(last_heartbeat_at, $1)", now
        )

    async def delete_workers(self, worker_ids: Collection[str]) -> None:
        await self._c.execute("DELETE FROM workers WHERE id = ANY($1::text[])", list(worker_ids))

    async def silent_workers(self, heard_before: float) -> list[str]:
        rows = await self._c.fetch(
            "SELECT id FROM workers WHERE last_heartbeat_at < $1", heard_before
        )
        return [r[0] for r in rows]

    async def extend_leases(
        self, worker_id: str, execution_ids: Collection[str], until: float
    ) -> set[str]:
        rows = await self._c.fetch(
            "UPDATE executions SET lease_expires_at = $1 WHERE worker_id = $2 "
            "AND status = 'running' AND id = ANY($3::text[]) RETURNING id",
            until,
            worker_id,
            sorted(execution_ids),
        )
        return {r[0] for r in rows}

    async def extend_all_leases(self, until: float) -> int:
        rows = await self._c.fetch(
            "UPDATE executions SET lease_expires_at = $1 "
            "WHERE status = 'running' AND lease_expires_at < $1 RETURNING id",
            until,
        )
        return len(rows)
