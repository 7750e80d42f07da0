"""The server's command line: defaults, the `polos server start` alias, refusals."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx

from tests.e2e.conftest import HOST, free_port, wait_until

BIN = Path(sys.executable).parent


def _healthy(url: str) -> bool:
    try:
        return httpx.get(f"{url}/health", timeout=1.0).status_code == 200
    except httpx.TransportError:
        return False


def _run_until_healthy(args: list[str], env: dict[str, str], log: Path) -> tuple[str, str]:
    port = free_port()
    url = f"http://{HOST}:{port}"
    with log.open("wb") as out:
        proc = subprocess.Popen([*args, "--port", str(port)], env=env, stdout=out, stderr=out)
    try:
        wait_until(lambda: _healthy(url), 30.0, "the server to answer /health")
        health = httpx.get(f"{url}/health").json()
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=15)
    assert code == 0, log.read_text()
    text = log.read_text()
    assert "polos server stopped" in text
    return str(health["database"]), text


def test_default_database_is_under_home(tmp_path: Path) -> None:
    env = dict(os.environ, HOME=str(tmp_path))
    env.pop("POLOS_DATABASE_URL", None)
    database, text = _run_until_healthy(
        [str(BIN / "polos-server"), "start"], env, tmp_path / "server.log"
    )
    expected = tmp_path / ".polos" / "polos.db"
    assert database == f"sqlite:///{expected}"
    assert expected.exists()
    # One line says where it listens and which database it uses.
    assert f"listening on http://{HOST}:" in text and str(expected) in text


def test_polos_server_start_alias_and_env_database_url(tmp_path: Path) -> None:
    db = tmp_path / "elsewhere" / "x.db"
    env = dict(os.environ, POLOS_DATABASE_URL=f"sqlite:///{db}")
    database, _ = _run_until_healthy(
        [str(BIN / "polos"), "server", "start"], env, tmp_path / "server.log"
    )
    assert database == f"sqlite:///{db}"
    assert db.exists()


def test_an_unsupported_database_url_is_refused(tmp_path: Path) -> None:
    result = subprocess.run(
        [str(BIN / "polos-server"), "start", "--database-url", "mysql://x", "--port", "1"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode != 0
    assert "unsupported database URL" in result.stderr


def test_migrate_applies_every_migration_on_postgres() -> None:
    from polos.store.base import migrations
    from tests import pg

    pg_url = pg.create_database("polos_migrate")  # empty: no table at all
    try:
        _migrate_twice(pg_url, migrations("postgres"))
    finally:
        pg.drop_database(pg_url)


def _migrate_twice(pg_url: str, expected: list[Any]) -> None:
    from tests import pg

    result = subprocess.run(
        [str(BIN / "polos-server"), "migrate", "--database-url", pg_url],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "schema up to date" in result.stdout
    rows = pg.run_sync(pg.query(pg_url, "SELECT version FROM schema_migrations ORDER BY 1"))
    assert [r[0] for r in rows] == [m.version for m in expected]
    # Running it again changes nothing.
    again = subprocess.run(
        [str(BIN / "polos-server"), "migrate", "--database-url", pg_url],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert again.returncode == 0, again.stderr
