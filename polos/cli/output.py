"""What the client commands print: rich tables, trees and colours on a terminal; the same
layout as plain text (no colours, no wrapping, no trailing spaces) when the output is a pipe
or a file; JSON with `--json`.

`NO_COLOR` / `FORCE_COLOR` and `COLUMNS` work as rich reads them.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import click
from rich import box
from rich.console import Console, RenderableType
from rich.table import Table
from rich.text import Text

# Status words in the order the tools show counts, with their colours.
STATUS_ORDER = ("completed", "failed", "cancelled", "running", "waiting", "queued")
STATUS_STYLE = {
    "queued": "dim",
    "running": "cyan",
    "waiting": "yellow",
    "completed": "green",
    "failed": "bold red",
    "cancelled": "magenta",
}
# Off a terminal nothing wraps: a line is as long as it needs to be.
PLAIN_WIDTH = 10_000


class Output:
    """stdout (results, tables) and stderr (progress, notes) of one command."""

    def __init__(self) -> None:
        probe = Console()
        self.terminal = probe.is_terminal
        if self.terminal:
            self.out = Console(highlight=False)
            self.err = Console(stderr=True, highlight=False)
        else:
            self.out = Console(highlight=False, width=PLAIN_WIDTH, no_color=True)
            self.err = Console(stderr=True, highlight=False, width=PLAIN_WIDTH)

    def print(self, *renderables: RenderableType) -> None:
        if self.terminal:
            for renderable in renderables:
                if not isinstance(renderable, Table):
                    self.out.print(renderable)
                    continue
                # A table wider than the terminal keeps each row on one line (the terminal
                # wraps it) rather than squeezing IDs into "…".
                wide = self.out.options.update_width(PLAIN_WIDTH)
                needed = self.out.measure(renderable, options=wide).maximum
                width = self.out.width
                self.out.width = max(needed, width)
                try:
                    self.out.print(renderable)
                finally:
                    self.out.width = width
            return
        with self.out.capture() as captured:
            self.out.print(*renderables)
        lines = [line.rstrip() for line in captured.get().splitlines()]
        click.echo("\n".join(lines))

    def note(self, message: str | Text) -> None:
        """A line on stderr (hints, summaries): never mixed into what scripts read. A str is
        printed as is (no markup: it may hold user text)."""
        self.err.print(Text(message) if isinstance(message, str) else message, highlight=False)

    def table(self, *columns: str) -> Table:
        """A table: a header rule on a terminal, bare aligned columns off it."""
        table = Table(
            box=box.SIMPLE_HEAD if self.terminal else None,
            show_edge=False,
            pad_edge=False,
            header_style="bold" if self.terminal else "",
        )
        for name in columns:
            table.add_column(name, overflow="ignore", no_wrap=True)
        return table


def cells(*values: str | Text) -> list[Text]:
    """Table cells: text as is (rich would read `[...]` in a str as markup)."""
    return [Text(v) if isinstance(v, str) else v for v in values]


def print_json(data: Any) -> None:
    """Machine-readable output: the API's JSON, indented, keys in the API's order."""
    click.echo(json.dumps(data, indent=2, ensure_ascii=False))


def status_text(status: str) -> Text:
    return Text(status, style=STATUS_STYLE.get(status, ""))


def parse_time(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def when(value: str | None) -> str:
    """An API time as `YYYY-MM-DD HH:MM:SS` (UTC)."""
    parsed = parse_time(value)
    return "-" if parsed is None else parsed.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


def seconds_text(seconds: float | None) -> str:
    """1.234 -> 1.23s, 75 -> 1m15s, 4000 -> 1h06m."""
    if seconds is None:
        return "-"
    if seconds < 0.001:
        return "0ms" if seconds <= 0 else "<1ms"
    if seconds < 1:
        return f"{seconds * 1000:.0f}ms"
    if seconds < 60:
        return f"{seconds:.2f}s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


def elapsed(started: str | None, finished: str | None, now: datetime | None = None) -> str:
    """How long an execution ran (until now while it runs)."""
    start = parse_time(started)
    if start is None:
        return "-"
    end = parse_time(finished) or now or datetime.now(UTC)
    return seconds_text(max((end - start).total_seconds(), 0.0))


def counts_text(counts: Mapping[str, Any], zero: str = "none") -> Text:
    """`19 completed, 1 failed` (statuses in STATUS_ORDER, zeros left out), coloured."""
    text = Text()
    for status in STATUS_ORDER:
        n = int(counts.get(status) or 0)
        if n:
            if text:
                text.append(", ")
            text.append(f"{n} {status}", style=STATUS_STYLE[status])
    return text if text else Text(zero, style="dim")


def remaining_counts(
    counts: Mapping[str, Any], listed: Sequence[Mapping[str, Any]]
) -> dict[str, int]:
    """Counts of a group minus the statuses of the executions listed from it."""
    rest = {s: int(counts.get(s) or 0) for s in STATUS_ORDER}
    for item in listed:
        status = str(item.get("status"))
        if rest.get(status):
            rest[status] -= 1
    return rest


def error_line(error: Mapping[str, Any] | None, limit: int | None = 100) -> str:
    """`Type: message` on one line (shortened to `limit` characters)."""
    if not error:
        return ""
    message = " ".join(str(error.get("message", "")).split())
    line = f"{error.get('type', 'Error')}: {message}"
    if limit is not None and len(line) > limit:
        line = line[: limit - 1] + "…"
    return line
