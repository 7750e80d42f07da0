"""The dashboard in a real headless browser: Debian's chromium (scripts/ensure-chromium installs
it; `make test` runs that first) driven by Playwright, against a real server and worker.

It opens the page of a 1,000-child fan-out while nothing has finished (every child waits for
a gate file), sees the parent waiting and the children running and queued, opens the gate and
watches the counts move to 1,000 finished without a reload, opens a failed child's error, and
looks at the filtered and paginated executions list, the workers, queues and schedules page
(with a queue at its limit) and the recent events. No browser error and no failed API call is
allowed along the way.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from tests.e2e.conftest import Server, ServerFactory, WorkerFactory

CHROMIUM = os.environ.get("POLOS_CHROMIUM", "/usr/bin/chromium")
N = 1000
FAIL_EVERY = 40  # children 39, 79, ... fail: 25 of 1,000
FAILED = N // FAIL_EVERY
FANOUT_DEADLINE_MS = 180_000
UI_DEADLINE_MS = 20_000


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.fail(
            f"no chromium at {CHROMIUM}: run scripts/ensure-chromium (make test does)",
            pytrace=False,
        )
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True)
        try:
            yield b
        finally:
            b.close()


class Watched:
    """A page whose JavaScript errors and failed API answers are collected."""

    def __init__(self, browser: Browser, server: Server) -> None:
        self.context = browser.new_context(viewport={"width": 1400, "height": 1000})
        self.page = self.context.new_page()
        self.server = server
        self.problems: list[str] = []
        self.page.on("pageerror", lambda exc: self.problems.append(f"page error: {exc}"))
        self.page.on(
            "console",
            lambda msg: (
                self.problems.append(f"console {msg.type}: {msg.text}")
                if msg.type == "error"
                else None
            ),
        )
        self.page.on(
            "response",
            lambda r: self.problems.append(f"{r.status} {r.url}") if r.status >= 400 else None,
        )

    def open(self, route: str) -> Page:
        self.page.goto(f"{self.server.url}/{route}")
        expect(self.page.locator("#live")).to_have_attribute(
            "data-state", "ok", timeout=UI_DEADLINE_MS
        )
        return self.page


@pytest.fixture
def watched(browser: Browser) -> Iterator[list[Watched]]:
    opened: list[Watched] = []
    yield opened
    for w in opened:
        w.context.close()
    problems = [p for w in opened for p in w.problems]
    assert not problems, "\n".join(problems)


def _count(page: Page, testid: str, status: str) -> int:
    text = page.locator(f"[data-testid={testid}] [data-count={status}]").inner_text()
    return int(text.replace(",", ""))


def test_dashboard_follows_a_fanout(
    start_server: ServerFactory,
    start_worker: WorkerFactory,
    watched: list[Watched],
    browser: Browser,
    tmp_path: Path,
) -> None:
    # A failed order fails at once (no workflow-level retries), so the end state is quick.
    server = start_server(env={"POLOS_MAX_RETRIES": "0"})
    start_worker(server, "tests.e2e.apps.dashboard", capacity=100)
    api = httpx.Client(base_url=f"{server.url}/api/v1", timeout=30)
    gate = tmp_path / "gate"
    submitted = api.post(
        "/workflows/process_orders/run",
        json={"payload": {"n": N, "fail_every": FAIL_EVERY, "gate": str(gate)}},
    )
    assert submitted.status_code == 200, submitted.text
    parent = submitted.json()["execution_id"]

    w = Watched(browser, server)
    watched.append(w)
    page = w.open(f"#/executions/{parent}")
    # The page must not reload on its own: this marker would be gone.
    page.evaluate("window.__sameDocument = true")

    # Nothing has finished: the parent waits (and says so), the children run or queue.
    expect(page.locator("[data-testid=status] .badge")).to_have_text(
        "waiting", timeout=UI_DEADLINE_MS
    )
    finished = page.locator("[data-testid=progress-children] [data-testid=finished]")
    expect(finished).to_have_attribute("data-total", str(N), timeout=UI_DEADLINE_MS)
    expect(finished).to_have_attribute("data-finished", "0")
    expect(page.locator("[data-testid=progress-children] [data-count=running]")).not_to_have_text(
        "0", timeout=UI_DEADLINE_MS
    )
    running = _count(page, "progress-children", "running")
    queued = _count(page, "progress-children", "queued")
    assert 0 < running <= 100 and running + queued <= N
    # One page of children, never all of them.
    assert page.locator("[data-testid=children] tbody tr").count() == 50

    # The executions list shows the parent waiting too.
    lw = Watched(browser, server)
    watched.append(lw)
    lpage = lw.open("#/executions?workflow_id=process_orders")
    expect(lpage.locator(f"tr[data-id='{parent}'] .badge")).to_have_text("waiting")

    # Let the children go: the counts move to 1,000 finished on the open page.
    gate.touch()
    expect(finished).to_have_attribute("data-finished", str(N), timeout=FANOUT_DEADLINE_MS)
    expect(finished).to_have_text(re.compile(r"1,000 of 1,000 finished"))
    assert _count(page, "progress-children", "completed") == N - FAILED
    assert _count(page, "progress-children", "failed") == FAILED
    for status in ("running", "waiting", "queued", "cancelled"):
        assert _count(page, "progress-children", status) == 0
    expect(page.locator("[data-testid=status] .badge")).to_have_text(
        "completed", timeout=UI_DEADLINE_MS
    )
    expect(lpage.locator(f"tr[data-id='{parent}'] .badge")).to_have_text(
        "completed", timeout=UI_DEADLINE_MS
    )
    assert page.evaluate("window.__sameDocument") is True

    # The parent's steps, with durations.
    steps = page.locator("[data-step]")
    expect(steps).to_have_count(3)
    expect(page.locator("[data-step=orders]")).to_contain_text("batch_invoke_and_wait")

    # The failed children, then one failed child's error.
    page.locator("[data-testid=child-tabs] [data-status=failed]").click()
    rows = page.locator("[data-testid=children] tbody tr")
    expect(rows).to_have_count(FAILED, timeout=UI_DEADLINE_MS)
    expect(page.locator("[data-testid=children] tbody tr[data-status=failed]")).to_have_count(
        FAILED
    )
    rows.first.locator("a").first.click()
    expect(page.locator("[data-testid=status] .badge")).to_have_text(
        "failed", timeout=UI_DEADLINE_MS
    )
    error = page.locator("[data-testid=error]")
    expect(error).to_contain_text("PaymentDeclinedError")
    expect(error).to_contain_text(re.compile(r"card of order \d+ was declined"))
    failed_id = page.locator("[data-testid=execution-id]").inner_text()
    child = api.get(f"/executions/{failed_id}").json()
    assert child["status"] == "failed"
    assert child["parent_execution_id"] == parent
    assert child["error"]["type"] == "PaymentDeclinedError"
    expect(error).to_contain_text(child["error"]["message"])
    # Back up to the parent through its link.
    page.locator(".facts a", has_text=parent[:8]).first.click()
    expect(page.locator("[data-testid=execution-id]")).to_have_text(parent)

    # The list filtered by error type: exactly the failed children.
    lpage.goto(f"{server.url}/#/executions?error_type=PaymentDeclinedError")
    listed = lpage.locator("table.grid tbody tr[data-id]")
    expect(listed).to_have_count(FAILED, timeout=UI_DEADLINE_MS)
    expect(lpage.locator("table.grid tbody tr[data-status=failed]")).to_have_count(FAILED)

    # Cursor pagination through the 1,000 children, 200 a page.
    lpage.goto(f"{server.url}/#/executions?parent_execution_id={parent}&limit=200")
    expect(listed).to_have_count(200, timeout=UI_DEADLINE_MS)
    seen: set[str] = set()
    for page_number in range(1, 6):
        expect(lpage.locator(".pager")).to_contain_text(f"page {page_number}")
        expect(listed).to_have_count(200)
        ids = set(listed.evaluate_all("rows => rows.map(r => r.dataset.id)"))
        assert not ids & seen
        seen |= ids
        if page_number < 5:
            lpage.locator("[data-testid=older]").click()
    expect(lpage.locator("[data-testid=older]")).to_be_disabled()
    assert len(seen) == N
    lpage.locator("[data-testid=newer]").click()
    expect(lpage.locator(".pager")).to_contain_text("page 4")

    # Workers, queues and schedules: 8 shipments on a queue limited to 5, held back by a gate.
    ship_gate = tmp_path / "ship-gate"
    for order in range(8):
        r = api.post(
            "/workflows/ship_order/run",
            json={"payload": {"order": order, "gate": str(ship_gate)}},
        )
        assert r.status_code == 200, r.text
    lpage.goto(f"{server.url}/#/system")
    worker = lpage.locator("[data-testid=workers] tr[data-worker]")
    expect(worker).to_have_count(1, timeout=UI_DEADLINE_MS)
    expect(worker.locator("[data-alive]")).to_have_attribute("data-alive", "true")
    expect(worker).to_contain_text("5 / 100", timeout=UI_DEADLINE_MS)
    shipping = lpage.locator("[data-testid=queues] tr[data-queue=shipping]")
    expect(shipping.locator("[data-count=limit]")).to_have_text("5", timeout=UI_DEADLINE_MS)
    expect(shipping.locator("[data-count=running]")).to_have_text("5")
    expect(shipping.locator("[data-count=queued]")).to_have_text("3")
    orders = lpage.locator("[data-testid=queues] tr[data-queue=process_order]")
    expect(orders.locator("[data-count=limit]")).to_have_text("none")
    expect(orders.locator("[data-count=running]")).to_have_text("0")
    expect(lpage.locator("[data-testid=schedules]")).to_contain_text("nightly_report")
    expect(lpage.locator("[data-testid=schedules]")).to_contain_text("0 2 * * *")
    ship_gate.touch()
    expect(shipping.locator("[data-count=queued]")).to_have_text("0", timeout=UI_DEADLINE_MS)
    expect(shipping.locator("[data-count=running]")).to_have_text("0", timeout=UI_DEADLINE_MS)
    expect(worker).to_contain_text("0 / 100", timeout=UI_DEADLINE_MS)

    # Recent events, live: one published now appears without a reload.
    lpage.goto(f"{server.url}/#/events")
    expect(lpage.locator("#live")).to_have_attribute("data-state", "ok", timeout=UI_DEADLINE_MS)
    published = api.post(
        "/events/publish",
        json={"topic": "orders-shipped", "events": [{"event_type": "shipped", "data": {"n": 1}}]},
    )
    assert published.status_code == 200, published.text
    expect(lpage.locator("[data-testid=recent-events]")).to_contain_text(
        "orders-shipped", timeout=UI_DEADLINE_MS
    )
