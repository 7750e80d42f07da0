"""The SQL of projects, workflows, queues, their usage and workers (a mixin of SqliteTx)."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Collection, Mapping, Sequence

from polos.model import ApiKey, RegisteredWorkflow, WorkerInfo, WorkflowRegistration
from polos.store.base import UsageKey
from polos.store.rows import chunks, marks

_KEY_COLUMNS = "id, project_id, name, key_hash, prefix, created_at, revoked_at"


class RegistryOps:
    _c: sqlite3.Connection

    # -- projects, workflows, queues -----------------------------------------------------

    async def ensure_project(self, project_id: str, now: float) -> None:
        self._c.execute(
            "INSERT INTO projects (id, created_at) VALUES (?, ?) ON CONFLICT DO NOTHING",
            (project_id, now),
        )

    async def upsert_workflows(
        self, project_id: str, registrations: Sequence[WorkflowRegistration], now: float
    ) -> None:
        self._c.executemany(
            "INSERT INTO workflows (project_id, workflow_id, queue_name, registered_at, "
            "last_registered_at) VALUES (?, ?, ?, ?, ?) ON CONFLICT (project_id, workflow_id) "
            "DO UPDATE SET queue_name = excluded.queue_name, "
            "last_registered_at = excluded.last_registered_at",
            [(project_id, r.workflow_id, r.queue_name, now, now) for r in registrations],
        )

    async def known_workflows(
        self, project_id: str, workflow_ids: Collection[str]
    ) -> dict[str, str]:
        ids = list(dict.fromkeys(workflow_ids))
        found: dict[str, str] = {}
        for part in chunks(ids):
            for wid, queue in self._c.execute(
                f"SELECT workflow_id, queue_name FROM workflows WHERE project_id = ? "
                f"AND workflow_id IN ({marks(len(part))})",
                (project_id, *part),
            ):
                found[wid] = queue
        return found

    async def ensure_queues(
        self,
        project_id: str,
        queues: Mapping[str, int | None],
        now: float,
        overwrite_limits: bool,
    ) -> None:
        rows = [(project_id, name, limit, now) for name, limit in queues.items()]
        if overwrite_limits:
            sql = (
                "INSERT INTO queues (project_id, name, concurrency_limit, created_at) "
                "VALUES (?, ?, ?, ?) ON CONFLICT (project_id, name) "
                "DO UPDATE SET concurrency_limit = excluded.concurrency_limit"
            )
        else:
            sql = (
                "INSERT INTO queues (project_id, name, concurrency_limit, created_at) "
                "VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING"
            )
        self._c.executemany(sql, rows)

    async def queue_limits(self, project_id: str) -> dict[str, int | None]:
        return dict(
            self._c.execute(
                "SELECT name, concurrency_limit FROM queues WHERE project_id = ?", (project_id,)
            ).fetchall()
        )

    async def queue_usage(self, project_id: str, queue_name: str) -> dict[str, int]:
        return dict(
            self._c.execute(
                "SELECT concurrency_key, running FROM queue_usage "
                "WHERE project_id = ? AND queue_name = ?",
                (project_id, queue_name),
            ).fetchall()
        )

    async def adjust_usage(self, deltas: Mapping[UsageKey, int]) -> None:
        rows = [(p, q, k, d) for (p, q, k), d in deltas.items() if d]
        self._c.executemany(
            "INSERT INTO queue_usage (project_id, queue_name, concurrency_key, running) "
            "VALUES (?, ?, ?, MAX(?, 0)) ON CONFLICT (project_id, queue_name, concurrency_key) "
            "DO UPDATE SET running = MAX(running + ?, 0)",
            [(p, q, k, d, d) for p, q, k, d in rows],
        )

    async def list_workflows(self, project_id: str) -> list[RegisteredWorkflow]:
        return [
            RegisteredWorkflow(*r)
            for r in self._c.execute(
                "SELECT workflow_id, queue_name, registered_at, last_registered_at "
                "FROM workflows WHERE project_id = ? ORDER BY workflow_id",
                (project_id,),
            )
        ]

    async def list_workers(self, project_id: str) -> list[WorkerInfo]:
        return [
            WorkerInfo(r[0], r[1], r[2], r[3], json.loads(r[4]), r[5], r[6])
            for r in self._c.execute(
                "SELECT id, project_id, deployment_id, capacity, workflow_ids, registered_at, "
                "last_heartbeat_at FROM workers WHERE project_id = ? ORDER BY registered_at",
                (project_id,),
            )
        ]

    # -- API keys ----------------------------------------------------------------------------

    async def insert_api_key(self, key: ApiKey) -> None:
        self._c.execute(
            "INSERT INTO api_keys (id, project_id, name, key_hash, prefix, created_at) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (key.id, key.project_id, key.name, key.key_hash, key.prefix, key.created_at),
        )

    async def api_key_by_hash(self, key_hash: str) -> ApiKey | None:
        r = self._c.execute(
            f"SELECT {_KEY_COLUMNS} FROM api_keys WHERE key_hash = ?", (key_hash,)
        ).fetchone()
        return None if r is None else ApiKey(*r)

    async def list_api_keys(self, project_id: str | None) -> list[ApiKey]:
        if project_id is None:
            rows = self._c.execute(f"SELECT {_KEY_COLUMNS} FROM api_keys ORDER BY created_at")
        else:
            rows = self._c.execute(
                f"SELECT {_KEY_COLUMNS} FROM api_keys WHERE project_id = ? ORDER BY created_at",
                (project_id,),
            )
        return [ApiKey(*r) for r in rows]

    async def revoke_api_key(self, key_id: str, now: float) -> bool:
        cur = self._c.execute(
            "UPDATE api_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL",
            (now, key_id),
        )
        return cur.rowcount > 0

    # -- workers ---------------------------------------------------------------------------

    async def save_worker(self, worker: WorkerInfo) -> None:
        self._c.execute(
            "INSERT INTO workers (id, project_id, deployment_id, capacity, workflow_ids, "
            "registered_at, last_heartbeat_at) VALUES (?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (id) DO UPDATE SET project_id = excluded.project_id, "
            "deployment_id = excluded.deployment_id, capacity = excluded.capacity, "
            "workflow_ids = excluded.workflow_ids, registered_at = excluded.registered_at, "
            "last_heartbeat_at = excluded.last_heartbeat_at",
            (
                worker.id,
                worker.project_id,
                worker.deployment_id,
                worker.capacity,
                json.dumps(worker.workflow_ids),
                worker.registered_at,
                worker.last_heartbeat_at,
            ),
        )

    async def get_worker(self, worker_id: str) -> WorkerInfo | None:
        r = self._c.execute(
            "SELECT id, project_id, deployment_id, capacity, workflow_ids, registered_at, "
            "last_heartbeat_at FROM workers WHERE id = ?",
            (worker_id,),
        ).fetchone()
        if r is None:
            return None
        return WorkerInfo(r[0], r[1], r[2], r[3], json.loads(r[4]), r[5], r[6])

    async def touch_worker(self, worker_id: str, now: float) -> bool:
        cur = self._c.execute(
            "UPDATE workers SET last_heartbeat_at = ? WHERE id = ?", (now, worker_id)
        )
        return cur.rowcount > 0

    async def touch_all_workers(self, now: float) -> None:
        self._c.execute("UPDATE workers SET last_heartbeat_at = MAX(last_heartbeat_at, ?)", (now,))

    async def delete_workers(self, worker_ids: Collection[str]) -> None:
        self._c.executemany("DELETE FROM workers WHERE id = ?", [(w,) for w in worker_ids])

    async def silent_workers(self, heard_before: float) -> list[str]:
        return [
            r[0]
            for r in self._c.execute(
                "SELECT id FROM workers WHERE last_heartbeat_at < ?", (heard_before,)
            )
        ]

    async def extend_leases(
        self, worker_id: str, execution_ids: Collection[str], until: float
    ) -> set[str]:
        extended: set[str] = set()
        for part in chunks(list(execution_ids)):
            extended.update(
                r[0]
                for r in self._c.execute(
                    "UPDATE executions SET lease_expires_at = ? WHERE worker_id = ? "
                    f"AND status = 'running' AND id IN ({marks(len(part))}) RETURNING id",
                    (until, worker_id, *part),
                ).fetchall()
            )
        return extended

    async def extend_all_leases(self, until: float) -> int:
        return self._c.execute(
            "UPDATE executions SET lease_expires_at = ? "
            "WHERE status = 'running' AND lease_expires_at < ?",
            (until, until),
        ).rowcount
