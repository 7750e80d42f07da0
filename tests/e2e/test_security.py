"""API keys and project isolation (issue 4): outside local mode every call needs a key; a key
belongs to one project; a project sees only its own executions, workflows and workers, and a
worker of one project never receives another project's work."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

import polos
from tests.e2e.apps import whoami
from tests.e2e.conftest import (
    REPO,
    Processes,
    Server,
    Worker,
    _env,
    free_port,
    new_database,
    wait_for_worker,
    wait_until,
)

BIN = Path(sys.executable).parent
TIMEOUT = 60.0


def _create_key(database_url: str, project: str) -> tuple[str, str]:
    out = subprocess.run(
        [
            str(BIN / "polos-server"),
            "keys",
            "create",
            "--project",
            project,
            "--database-url",
            database_url,
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    fields = dict(line.split(":", 1) for line in out.splitlines())
    return fields["key id"].strip(), fields["key"].strip()


@pytest.fixture
def secured(
    procs: Processes, backend: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[Server, dict[str, tuple[str, str]]]]:
    """A server that requires API keys (on loopback: tests never bind other addresses), with
    one key for project alpha and one for project beta."""
    url = new_database(backend, tmp_path)
    keys = {p: _create_key(url, p) for p in ("alpha", "beta")}
    monkeypatch.setenv("POLOS_REQUIRE_API_KEYS", "1")
    server = Server(procs, url, free_port(), None)
    server.start()
    monkeypatch.delenv("POLOS_REQUIRE_API_KEYS")
    yield server, keys
    for worker in server.workers:
        if worker.proc.alive():
            worker.stop()
    server.stop()


def _start_worker(procs: Processes, server: Server, key: str) -> Worker:
    env = _env(server.url)
    env["POLOS_API_KEY"] = key
    args = [
        sys.executable,
        "-m",
        "tests.e2e.apps.run_worker",
        "--api-url",
        server.url,
        "--module",
        "tests.e2e.apps.whoami",
    ]
    proc = procs.new(f"worker-{server.port}", args, env)
    proc.spawn()
    worker = Worker(proc, server)
    server.workers.append(worker)
    wait_for_worker(worker)
    return worker


def test_every_call_needs_a_key_but_health(
    secured: tuple[Server, dict[str, tuple[str, str]]],
) -> None:
    server, keys = secured
    assert httpx.get(f"{server.url}/health").status_code == 200
    for method, path in [
        ("GET", "/api/v1/executions"),
        ("GET", "/api/v1/workflows"),
        ("GET", "/api/v1/workers"),
        ("POST", "/api/v1/workflows/echo/run"),
        ("POST", "/api/v1/workers"),
    ]:
        response = httpx.request(method, f"{server.url}{path}", json={})
        assert response.status_code == 401, (method, path, response.text)
        assert response.json()["error"]["code"] == "unauthorized"
    bad = httpx.get(f"{server.url}/api/v1/executions", headers={"Authorization": "Bearer x"})
    assert bad.status_code == 401
    _, alpha_key = keys["alpha"]
    other = httpx.get(
        f"{server.url}/api/v1/executions",
        headers={"Authorization": f"Bearer {alpha_key}", "X-Project-ID": "beta"},
    )
    assert other.status_code == 403


async def test_projects_are_isolated(
    secured: tuple[Server, dict[str, tuple[str, str]]], procs: Processes
) -> None:
    server, keys = secured
    alpha = polos.PolosClient(api_url=server.url, api_key=keys["alpha"][1])
    beta = polos.PolosClient(api_url=server.url, api_key=keys["beta"][1])
    http = httpx.AsyncClient(base_url=server.url)
    try:
        beta_worker = _start_worker(procs, server, keys["beta"][1])
        with pytest.raises(polos.WorkflowNotFoundError):
            await whoami.whoami.invoke(alpha, {"n": 0})  # not registered in alpha yet
        first_alpha_worker = _start_worker(procs, server, keys["alpha"][1])
        first_alpha_worker.stop()  # alpha's workflow is known now, and nobody serves it
        # Only beta has a worker while alpha's executions are queued: it must not take them.
        handles = [await whoami.whoami.invoke(alpha, {"n": i}) for i in range(20)]
        beta_handle = await whoami.whoami.invoke(beta, {"n": -1})
        beta_row = await beta.wait_for_execution(beta_handle.id, TIMEOUT)
        assert beta_row["result"]["pid"] == beta_worker.proc.pid
        for h in handles:
            assert (await alpha.get_execution(h.id))["status"] == "queued"
        alpha_worker = _start_worker(procs, server, keys["alpha"][1])
        rows = [await alpha.wait_for_execution(h.id, TIMEOUT) for h in handles]
        assert {r["status"] for r in rows} == {"completed"}
        assert {r["result"]["pid"] for r in rows} == {alpha_worker.proc.pid}

        # Each project lists only its own workers, workflows and executions.
        listed = {}
        for name in ("alpha", "beta"):
            auth = _auth(keys[name][1])
            listed[name] = (
                {
                    w["id"]
                    for w in (await http.get("/api/v1/workers", headers=auth)).json()["workers"]
                },
                [
                    w["workflow_id"]
                    for w in (await http.get("/api/v1/workflows", headers=auth)).json()["workflows"]
                ],
                {
                    e["id"]
                    for e in (await http.get("/api/v1/executions?limit=500", headers=auth)).json()[
                        "executions"
                    ]
                },
            )
        alpha_workers, beta_workers = listed["alpha"][0], listed["beta"][0]
        assert alpha_workers and beta_workers and not alpha_workers & beta_workers
        assert listed["alpha"][1] == listed["beta"][1] == ["whoami"]
        assert listed["alpha"][2] == {h.id for h in handles}
        assert listed["beta"][2] == {beta_handle.id}

        # Reading across projects is a 404, as for an ID that does not exist.
        with pytest.raises(polos.PolosApiError) as caught:
            await beta.get_execution(handles[0].id)
        assert caught.value.status == 404

        # Acting as another project's worker is refused as unknown.
        alpha_worker_id = sorted(alpha_workers)[0]
        beta_auth = _auth(keys["beta"][1])
        for path, body in [
            (f"/api/v1/workers/{alpha_worker_id}/heartbeat", {"execution_ids": []}),
            (f"/api/v1/workers/{alpha_worker_id}/claim", {"max": 1, "wait_seconds": 0}),
            (f"/api/v1/workers/{alpha_worker_id}/reports", {"items": []}),
        ]:
            response = await http.post(path, json=body, headers=beta_auth)
            assert response.status_code == 404, (path, response.text)
            assert response.json()["error"]["code"] == "worker_not_found"
        stolen = await http.post(
            "/api/v1/workers",
            json={"workflows": [], "worker_id": alpha_worker_id},
            headers=beta_auth,
        )
        assert stolen.status_code == 404
    finally:
        await http.aclose()
        await alpha.close()
        await beta.close()


def test_a_revoked_key_stops_working(
    secured: tuple[Server, dict[str, tuple[str, str]]],
) -> None:
    server, keys = secured
    key_id, key = keys["beta"]
    assert httpx.get(f"{server.url}/api/v1/workflows", headers=_auth(key)).status_code == 200
    subprocess.run(
        [
            str(BIN / "polos-server"),
            "keys",
            "revoke",
            key_id,
            "--database-url",
            server.database_url,
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
        cwd=REPO,
    )
    wait_until(
        lambda: httpx.get(f"{server.url}/api/v1/workflows", headers=_auth(key)).status_code == 401,
        15.0,
        "the revoked key to be refused",
        interval=0.25,
    )


def test_keys_are_stored_hashed(secured: tuple[Server, dict[str, tuple[str, str]]]) -> None:
    server, keys = secured
    from tests.faults.checker import query

    stored = query(server.database_url, "SELECT key_hash, prefix FROM api_keys")
    secrets = {key for _, key in keys.values()}
    for key_hash, prefix in stored:
        assert key_hash not in secrets and len(key_hash) == 64
        assert any(s.startswith(prefix) for s in secrets) and len(prefix) < 20


def test_local_mode_refuses_a_non_loopback_address(tmp_path: Path) -> None:
    result = subprocess.run(
        [
            str(BIN / "polos-server"),
            "start",
            "--host",
            "0.0.0.0",
            "--local-mode",
            "--port",
            str(free_port()),
            "--database-url",
            f"sqlite:///{tmp_path / 'x.db'}",
        ],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode != 0
    assert "refusing to listen on 0.0.0.0 in local mode" in result.stderr


def _auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}
