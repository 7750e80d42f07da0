"""The dashboard's files: served at / and /ui/ (without an API key, also where keys are
required), under a strict Content-Security-Policy, kept out of the OpenAPI schema, shipped in
the package, and every module a script imports exists. The pages themselves are tested in a
real browser (tests/e2e/test_dashboard.py)."""

from __future__ import annotations

import re
import tomllib
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from polos.server.app import create_app
from polos.server.dashboard import STATIC
from polos.server.settings import Settings
from polos.store import create_store

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(params=[False, True], ids=["local", "keys-required"])
def required(request: pytest.FixtureRequest) -> bool:
    return bool(request.param)


@pytest.fixture
async def client(required: bool, tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    url = f"sqlite:///{tmp_path / 'polos.db'}"
    store = create_store(url)
    app = create_app(store, Settings(database_url=url, require_api_keys=required))
    await store.open()
    try:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as c:
            yield c
    finally:
        await store.close()


async def test_page_and_assets_are_served(client: httpx.AsyncClient) -> None:
    page = await client.get("/")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    csp = page.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "connect-src 'self'" in csp
    assert "unsafe-inline" not in csp
    for asset in re.findall(r'(?:src|href)="(/ui/[^"]+)"', page.text):
        r = await client.get(asset)
        assert r.status_code == 200, asset
        assert r.headers["cache-control"] == "no-cache"
    js = await client.get("/ui/app.js")
    assert "javascript" in js.headers["content-type"]
    missing = await client.get("/ui/nope.js")
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "not_found"


async def test_api_still_needs_a_key_where_keys_are_required(
    client: httpx.AsyncClient, required: bool
) -> None:
    status = (await client.get("/api/v1/executions")).status_code
    assert status == (401 if required else 200)


async def test_not_in_the_api_schema(client: httpx.AsyncClient) -> None:
    paths = (await client.get("/openapi.json")).json()["paths"]
    assert "/" not in paths
    assert not [p for p in paths if p.startswith("/ui")]


def test_every_imported_module_exists() -> None:
    scripts = sorted(STATIC.glob("*.js"))
    assert scripts
    for script in scripts:
        for target in re.findall(r'from\s+"(\./[^"]+)"', script.read_text()):
            assert (STATIC / target).is_file(), f"{script.name} imports {target}"


def test_static_files_are_package_data() -> None:
    config = tomllib.loads((REPO / "pyproject.toml").read_text())
    patterns = config["tool"]["setuptools"]["package-data"]["polos"]
    root = REPO / "polos"
    shipped = {p for pattern in patterns for p in root.glob(pattern)}
    for f in STATIC.iterdir():
        assert f in shipped, f"{f.relative_to(REPO)} is not package data"
