"""`polos run` and `polos executions list|show|tree|cancel|result`."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

import click
from rich.console import Group
from rich.syntax import Syntax
from rich.table import Table
from rich.text import Text

from polos.cli.api import (
    EXIT_FAILED,
    EXIT_NOT_FINAL,
    Api,
    client_command,
    connection_options,
)
from polos.cli.output import (
    Output,
    cells,
    counts_text,
    elapsed,
    error_line,
    print_json,
    seconds_text,
    status_text,
    when,
)
from polos.cli.progress import watch
from polos.cli.tree import render_tree

STATUSES = ["queued", "running", "waiting", "completed", "failed", "cancelled"]
FINAL = {"completed", "failed", "cancelled"}
# The API's largest page of executions.
PAGE = 500


def _json_argument(value: str | None, what: str) -> Any:
    """JSON text, `@file` (a file holding JSON) or `@-` (standard input)."""
    if value is None:
        return None
    text = value
    if value.startswith("@"):
        source = value[1:]
        try:
            text = sys.stdin.read() if source == "-" else Path(source).read_text("utf-8")
        except OSError as exc:
            raise click.BadParameter(f"cannot read {source}: {exc}", param_hint=what) from None
    try:
        return json.loads(text)
    except ValueError as exc:
        raise click.BadParameter(f"not JSON: {exc}", param_hint=what) from None


def _value(value: Any) -> Syntax | Text:
    """A JSON value, highlighted on a terminal."""
    text = json.dumps(value, indent=2, ensure_ascii=False)
    return Syntax(text, "json", theme="ansi_dark", background_color="default", word_wrap=True)


def _result_exit(out: Output, execution: dict[str, Any], as_json: bool) -> int:
    """Print a final execution's result (stdout) or error (stderr); the exit code."""
    status = execution.get("status")
    if as_json:
        print_json(execution)
    elif status == "completed":
        click.echo(json.dumps(execution.get("result"), indent=2, ensure_ascii=False))
    if status == "completed":
        return 0
    if status in FINAL:
        line = Text(f"{status}: ", style="red")
        line.append(error_line(execution.get("error"), limit=None) or "(no error recorded)")
        out.note(line)
        return EXIT_FAILED
    out.note(f"execution {execution.get('id')} is {status}, not final yet")
    return EXIT_NOT_FINAL


# --------------------------------------------------------------------------- run


@click.command("run")
@click.argument("workflow_id")
@click.option(
    "--payload",
    "-p",
    default=None,
    help="The payload: JSON, @file (JSON in a file) or @- (standard input).",
)
@click.option("--wait", "-w", is_flag=True, help="Follow its progress and print the result.")
@click.option(
    "--timeout",
    type=click.FloatRange(min=0),
    default=None,
    help="With --wait: stop waiting after this many seconds (exit code 3; it goes on).",
)
@click.option("--queue", "queue_name", default=None, help="Run it on this queue.")
@click.option("--concurrency-key", default=None, help="The queue limit's key.")
@click.option("--idempotency-key", default=None, help="Every start with this key is one execution.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@connection_options
@client_command
async def run_command(
    api: Api,
    workflow_id: str,
    payload: str | None,
    wait: bool,
    timeout: float | None,
    queue_name: str | None,
    concurrency_key: str | None,
    idempotency_key: str | None,
    as_json: bool,
) -> int:
    """Start an execution of WORKFLOW_ID. Without --wait it prints the execution's ID (and
    exits); with --wait it shows a live count of its descendants (done, failed, running,
    waiting, queued, of the total) and prints the result: exit code 0 when it completed, 1
    when it failed or was cancelled."""
    out = Output()
    body: dict[str, Any] = {"payload": _json_argument(payload, "--payload")}
    for key, value in (
        ("queue_name", queue_name),
        ("concurrency_key", concurrency_key),
        ("idempotency_key", idempotency_key),
    ):
        if value is not None:
            body[key] = value
    submitted = await api.post(f"/workflows/{workflow_id}/run", body)
    execution_id = submitted["execution_id"]
    if not wait:
        if as_json:
            print_json(submitted)
        else:
            click.echo(execution_id)
        return 0
    if not as_json:
        out.note(Text(f"{workflow_id} {execution_id}", style="bold"))
    final = await watch(api, out, execution_id, timeout)
    return _result_exit(out, final, as_json)


# --------------------------------------------------------------------------- executions


@click.group("executions", help="List, inspect, cancel executions and read their results.")
def executions_group() -> None:
    pass


@executions_group.command("list")
@click.option("--status", type=click.Choice(STATUSES), default=None)
@click.option("--workflow", "workflow_id", default=None, help="Executions of this workflow.")
@click.option("--error-type", default=None, help="Failed with this error type.")
@click.option("--parent", "parent_execution_id", default=None, help="Children of this one.")
@click.option("--root", "root_execution_id", default=None, help="The tree of this root.")
@click.option(
    "--since", "created_after", default=None, help="Created at or after (ISO 8601 or unix s)."
)
@click.option(
    "--until", "created_before", default=None, help="Created before (ISO 8601 or unix s)."
)
@click.option("--limit", "-n", type=click.IntRange(min=1), default=50, show_default=True)
@click.option("--cursor", default=None, help="Continue a listing (the cursor it printed).")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@connection_options
@client_command
async def list_executions(
    api: Api,
    limit: int,
    cursor: str | None,
    as_json: bool,
    **filters: str | None,
) -> int:
    """Executions, newest first. --json prints {"executions": [...], "next_cursor": ...} as
    the API answers it (pages joined up to --limit)."""
    out = Output()
    executions: list[dict[str, Any]] = []
    while True:
        page = await api.get(
            "/executions", **filters, limit=min(PAGE, limit - len(executions)), cursor=cursor
        )
        executions += page["executions"]
        cursor = page.get("next_cursor")
        if cursor is None or len(executions) >= limit:
            break
    if as_json:
        print_json({"executions": executions, "next_cursor": cursor})
        return 0
    table = out.table("ID", "WORKFLOW", "STATUS", "CREATED", "DURATION", "ERROR")
    for e in executions:
        table.add_row(
            *cells(
                e["id"],
                e["workflow_id"],
                status_text(e["status"]),
                when(e["created_at"]),
                elapsed(e.get("started_at"), e.get("completed_at")),
                Text(error_line(e.get("error"), limit=60), style="red"),
            )
        )
    if executions:
        out.print(table)
    else:
        out.note("no executions")
    if cursor is not None:
        out.note(f"more: --cursor {cursor}")
    return 0


def _facts(out: Output, e: dict[str, Any], progress: dict[str, Any]) -> Table:
    facts = out.table("", "")
    facts.show_header = False
    rows: list[tuple[str, str | Text]] = [
        ("id", e["id"]),
        ("workflow", e["workflow_id"]),
        ("status", status_text(e["status"])),
    ]
    if e.get("parent_execution_id"):
        where = f" (step {e.get('step_key')!r}, index {e.get('batch_index')})"
        rows.append(("parent", e["parent_execution_id"] + where))
    if e.get("root_execution_id") != e["id"]:
        rows.append(("root", f"{e['root_execution_id']} ({e['root_workflow_id']})"))
    rows += [
        (
            "queue",
            e["queue_name"] + (f" key {e['concurrency_key']}" if e["concurrency_key"] else ""),
        ),
        ("attempt", f"{e['attempt']} (retries {e['retry_count']})"),
        ("created", when(e["created_at"])),
        ("started", when(e.get("started_at"))),
        ("completed", when(e.get("completed_at"))),
        ("duration", elapsed(e.get("started_at"), e.get("completed_at"))),
    ]
    if e.get("worker_id"):
        rows.append(("worker", e["worker_id"]))
    children, descendants = progress["children"], progress["descendants"]
    if descendants["total"]:
        line = Text(f"{children['total']}: ")
        line.append_text(counts_text(children))
        rows.append(("children", line))
        line = Text(f"{descendants['total']}: ")
        line.append_text(counts_text(descendants))
        rows.append(("descendants", line))
    for key, value in rows:
        facts.add_row(Text(key, style="bold"), *cells(value))
    return facts


def _steps_table(out: Output, steps: list[dict[str, Any]]) -> Table:
    table = out.table("#", "STEP", "KIND", "STATUS", "DURATION", "ERROR")
    for s in steps:
        table.add_row(
            *cells(
                str(s["position"]),
                s["key"],
                s["kind"],
                status_text(s["status"]),
                seconds_text(s.get("duration_seconds")),
                Text(error_line(s.get("error"), limit=80), style="red"),
            )
        )
    return table


@executions_group.command("show")
@click.argument("execution_id")
@click.option("--steps", "max_steps", type=click.IntRange(min=0), default=1000, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@connection_options
@client_command
async def show_execution(api: Api, execution_id: str, max_steps: int, as_json: bool) -> int:
    """Status, timings, payload, result or error, and its steps with their durations. --json
    prints {"execution": ..., "progress": ..., "steps": [...]}."""
    out = Output()
    execution = await api.get(f"/executions/{execution_id}")
    progress = await api.get(f"/executions/{execution_id}/progress")
    steps: list[dict[str, Any]] = []
    cursor = None
    while len(steps) < max_steps:
        page = await api.get(
            f"/executions/{execution_id}/steps",
            limit=min(1000, max_steps - len(steps)),
            cursor=cursor,
        )
        steps += page["steps"]
        cursor = page.get("next_cursor")
        if cursor is None:
            break
    if as_json:
        print_json({"execution": execution, "progress": progress, "steps": steps})
        return 0
    parts: list[Any] = [_facts(out, execution, progress), Text("\npayload", style="bold")]
    parts.append(_value(execution.get("payload")))
    if execution["status"] == "completed":
        parts += [Text("\nresult", style="bold"), _value(execution.get("result"))]
    elif execution.get("error"):
        parts += [
            Text("\nerror", style="bold red"),
            Text(error_line(execution["error"], limit=None), style="red"),
        ]
    parts.append(Text(f"\nsteps ({len(steps)}{'+' if cursor else ''})", style="bold"))
    parts.append(_steps_table(out, steps) if steps else Text("none", style="dim"))
    out.print(Group(*parts))
    return 0


@executions_group.command("tree")
@click.argument("execution_id")
@click.option("--depth", type=click.IntRange(0, 10), default=2, show_default=True)
@click.option(
    "--limit-per-group",
    type=click.IntRange(0, 200),
    default=10,
    show_default=True,
    help="Children listed per step; the rest are counted.",
)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@connection_options
@client_command
async def tree_command(
    api: Api, execution_id: str, depth: int, limit_per_group: int, as_json: bool
) -> int:
    """The fan-out below an execution: per-level counts, then its children grouped by the
    step that started them, large batches collapsed to a few entries and a count."""
    data = await api.get(
        f"/executions/{execution_id}/tree", depth=depth, limit_per_group=limit_per_group
    )
    if as_json:
        print_json(data)
    else:
        Output().print(render_tree(data))
    return 0


@executions_group.command("cancel")
@click.argument("execution_id")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@connection_options
@client_command
async def cancel_command(api: Api, execution_id: str, as_json: bool) -> int:
    """Cancel an execution and its unfinished descendants."""
    answer = await api.post(f"/executions/{execution_id}/cancel")
    if as_json:
        print_json(answer)
    else:
        click.echo(
            f"{answer['execution_id']} {answer['status']} "
            f"({answer['cancelled']} execution(s) cancelled)"
        )
    return 0


@executions_group.command("result")
@click.argument("execution_id")
@click.option("--wait", "-w", is_flag=True, help="Wait until it is final.")
@click.option("--timeout", type=click.FloatRange(min=0), default=None, help="With --wait.")
@click.option("--json", "as_json", is_flag=True, help="Print the whole execution as JSON.")
@connection_options
@client_command
async def result_command(
    api: Api, execution_id: str, wait: bool, timeout: float | None, as_json: bool
) -> int:
    """The result as JSON (exit code 0); a failed or cancelled execution prints its error on
    stderr (exit code 1); one that is not final yet exits with 3 (--wait waits for it)."""
    out = Output()
    execution = await api.get(f"/executions/{execution_id}")
    deadline = None if timeout is None else time.monotonic() + timeout
    while wait and execution["status"] not in FINAL:
        remaining = 30.0 if deadline is None else min(30.0, deadline - time.monotonic())
        if remaining <= 0:
            break
        execution = await api.get(f"/executions/{execution_id}/wait", timeout=f"{remaining:.3f}")
    return _result_exit(out, execution, as_json)
