"""Screenshots of the dashboard at the end of a 1,000-child fan-out, for the docs.

    .venv/bin/python scripts/screenshots.py [--out docs/img] [--children 1000]

Starts a server on a temporary SQLite file and a worker serving tests/e2e/apps/dashboard.py,
runs a few small executions and then a 1,000-child fan-out in which every 40th child fails,
waits for the end, starts a few shipments that fill a queue limited to 5 (and stay there), and
photographs the pages with Debian's headless chromium
(scripts/ensure-chromium installs it). Stops what it started.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
from playwright.sync_api import Page, sync_playwright

REPO = Path(__file__).resolve().parents[1]
CHROMIUM = os.environ.get("POLOS_CHROMIUM", "/usr/bin/chromium")
HOST = "127.0.0.1"


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def wait_for(what: str, condition: Any, timeout: float = 120.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    raise SystemExit(f"timed out waiting for {what}")


@contextmanager
def processes(tmp: Path) -> Iterator[str]:
    port = free_port()
    url = f"http://{HOST}:{port}"
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "POLOS_API_URL": url,
        # A failed order fails at once (no workflow-level retries): the end state comes sooner.
        "POLOS_MAX_RETRIES": "0",
    }
    bin_dir = Path(sys.executable).parent
    log = open(tmp / "processes.log", "wb")
    started: list[subprocess.Popen[bytes]] = []
    try:
        server = subprocess.Popen(
            [
                str(bin_dir / "polos-server"),
                "start",
                "--host",
                HOST,
                "--port",
                str(port),
                "--database-url",
                f"sqlite:///{tmp / 'polos.db'}",
            ],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        started.append(server)

        def healthy() -> bool:
            try:
                return httpx.get(f"{url}/health", timeout=1).status_code == 200
            except httpx.TransportError:
                return False

        wait_for("the server", healthy, 30)
        worker = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.e2e.apps.run_worker",
                "--api-url",
                url,
                "--module",
                "tests.e2e.apps.dashboard",
                "--capacity",
                "100",
            ],
            env=env,
            cwd=REPO,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        started.append(worker)
        wait_for(
            "the worker",
            lambda: any(
                w["workflow_id"] == "process_orders"
                for w in httpx.get(f"{url}/api/v1/workflows").json()["workflows"]
            ),
            30,
        )
        yield url
    finally:
        for proc in reversed(started):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(15)
                except subprocess.TimeoutExpired:
                    proc.kill()
        log.close()


def run(url: str, payload: dict[str, Any]) -> str:
    r = httpx.post(f"{url}/api/v1/workflows/process_orders/run", json={"payload": payload})
    r.raise_for_status()
    return str(r.json()["execution_id"])


def wait_final(url: str, execution_id: str) -> dict[str, Any]:
    def final() -> dict[str, Any] | None:
        r = httpx.get(f"{url}/api/v1/executions/{execution_id}/wait?timeout=20", timeout=30)
        body: dict[str, Any] = r.json()
        return body if body["status"] in ("completed", "failed", "cancelled") else None

    result: dict[str, Any] = wait_for(f"execution {execution_id}", final, 300)
    return result


def settle(page: Page) -> None:
    """Until the page has polled at least once after loading (the live marker says so)."""
    page.wait_for_selector("#live[data-state=ok]")
    page.wait_for_timeout(1500)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default=str(REPO / "docs" / "img"))
    parser.add_argument("--children", type=int, default=1000)
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    with tempfile.TemporaryDirectory(prefix="polos-shots-") as tmp, processes(Path(tmp)) as url:
        for n in (3, 12, 25):  # some history in the list
            wait_final(url, run(url, {"n": n, "fail_every": 0, "work_seconds": 0.05}))
        parent = run(url, {"n": args.children, "fail_every": 40, "work_seconds": 0.2})
        end = wait_final(url, parent)
        print(f"fan-out {parent}: {end['status']} {end['result']}")
        # Shipments on a queue limited to 5, held back: the queue at its limit, a worker busy.
        for order in range(12):
            r = httpx.post(
                f"{url}/api/v1/workflows/ship_order/run",
                json={"payload": {"order": order, "gate": str(Path(tmp) / "never")}},
            )
            r.raise_for_status()
        wait_for(
            "the shipping queue at its limit",
            lambda: any(
                q["name"] == "shipping" and q["running"] == 5
                for q in httpx.get(f"{url}/api/v1/queues").json()["queues"]
            ),
            30,
        )
        failed = httpx.get(
            f"{url}/api/v1/executions",
            params={"parent_execution_id": parent, "status": "failed", "limit": 1},
        ).json()["executions"][0]["id"]

        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, headless=True)
            page = browser.new_page(viewport={"width": 1440, "height": 1000})
            shots = [
                ("dashboard-executions.png", "#/executions", False),
                (
                    "dashboard-executions-filtered.png",
                    "#/executions?error_type=PaymentDeclinedError",
                    False,
                ),
                ("dashboard-fanout.png", f"#/executions/{parent}", False),
                ("dashboard-failed-child.png", f"#/executions/{failed}", False),
                ("dashboard-workers.png", "#/system", False),
            ]
            for name, route, full in shots:
                page.goto(f"{url}/{route}")
                settle(page)
                page.screenshot(path=str(out / name), full_page=full)
                print(f"wrote {out / name}")
            browser.close()


if __name__ == "__main__":
    main()
