"""`polos run --wait`: follow an execution until it is final, with a live count of its
descendants. Each round is a long-poll on the execution (it answers the moment the execution
is final, else after `POLL_SECONDS`) and one read of its progress counts (GET .../progress,
index-only counts on the server). On a terminal it is a rich progress bar; off a terminal a
line on stderr whenever the counts change (at most every `PLAIN_EVERY` seconds) and one at
the end."""

from __future__ import annotations

import time
from typing import Any

from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from rich.text import Text

from polos.cli.api import Api
from polos.cli.output import STATUS_STYLE, Output, seconds_text

POLL_SECONDS = 0.5
PLAIN_EVERY = 2.0
FINAL = {"completed", "failed", "cancelled"}


def summary(progress: dict[str, Any]) -> Text:
    """`done 18 · failed 1 · running 1 · waiting 0 · queued 0 of 20`: the descendants.
    Waiting executions count as waiting; `failed` includes the cancelled ones."""
    d = progress["descendants"]
    text = Text()
    parts = [
        ("done", d["completed"], "completed"),
        ("failed", d["failed"] + d["cancelled"], "failed"),
        ("running", d["running"], "running"),
        ("waiting", d["waiting"], "waiting"),
        ("queued", d["queued"], "queued"),
    ]
    for i, (word, n, status) in enumerate(parts):
        if i:
            text.append(" · ")
        text.append(f"{word} {n}", style=STATUS_STYLE[status] if n else "")
    text.append(f" of {d['total']}")
    return text


async def _round(api: Api, execution_id: str, wait: float) -> tuple[dict[str, Any], Any]:
    execution = await api.get(f"/executions/{execution_id}/wait", timeout=f"{wait:.3f}")
    progress = await api.get(f"/executions/{execution_id}/progress")
    return execution, progress


async def watch(api: Api, out: Output, execution_id: str, timeout: float | None) -> dict[str, Any]:
    """Follow the execution until it is final (or `timeout` seconds passed); returns it."""
    started = time.monotonic()
    deadline = None if timeout is None else started + timeout

    def wait_now() -> float:
        if deadline is None:
            return POLL_SECONDS
        return max(0.0, min(POLL_SECONDS, deadline - time.monotonic()))

    execution, progress = await _round(api, execution_id, 0)
    if out.terminal:
        with Progress(
            TextColumn("{task.fields[status]}"),
            BarColumn(),
            TextColumn("{task.fields[counts]}"),
            TimeElapsedColumn(),
            console=out.err,
            transient=False,
        ) as bar:
            task = bar.add_task("", total=None, status="", counts="")
            while True:
                _update(bar, task, execution, progress)
                if execution["status"] in FINAL or wait_now() <= 0:
                    break
                execution, progress = await _round(api, execution_id, wait_now())
    else:
        shown = ""
        last = 0.0
        while True:
            line = f"{execution['status']}: {summary(progress).plain}"
            final = execution["status"] in FINAL
            if line != shown and (final or time.monotonic() - last >= PLAIN_EVERY):
                took = seconds_text(time.monotonic() - started)
                out.note(f"{line} ({took})")
                shown, last = line, time.monotonic()
            if final or wait_now() <= 0:
                break
            execution, progress = await _round(api, execution_id, wait_now())
    return execution


def _update(bar: Progress, task: TaskID, execution: dict[str, Any], progress: Any) -> None:
    d = progress["descendants"]
    finished = d["completed"] + d["failed"] + d["cancelled"]
    status = execution["status"]
    if d["total"]:
        bar.update(task, total=d["total"], completed=finished)
    elif status in FINAL:
        bar.update(task, total=1, completed=1)
    style = STATUS_STYLE.get(status, "")
    bar.update(
        task,
        status=f"[{style}]{status}[/]" if style else status,
        counts=summary(progress).markup,
    )
