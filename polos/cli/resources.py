"""`polos events tail`, `polos workers list`, `polos queues list`."""

from __future__ import annotations

import json
from typing import Any

import click
from rich.text import Text

from polos.cli.api import Api, client_command, connection_options
from polos.cli.output import Output, cells, print_json, when


def _event_line(event: dict[str, Any]) -> str:
    data = json.dumps(event.get("data"), ensure_ascii=False, separators=(",", ":"))
    kind = event.get("event_type") or "-"
    return f"{when(event.get('created_at'))}  #{event['sequence_id']}  {kind}  {data}"


@click.group("events", help="Follow events.")
def events_group() -> None:
    pass


@events_group.command("tail")
@click.argument("topic")
@click.option(
    "--lines",
    "-n",
    type=click.IntRange(0, 500),
    default=10,
    show_default=True,
    help="Show this many of the latest events first.",
)
@click.option(
    "--follow/--no-follow",
    default=True,
    show_default=True,
    help="Keep printing new events as they are published (Ctrl-C stops).",
)
@click.option(
    "--count",
    type=click.IntRange(min=1),
    default=None,
    help="Exit after printing this many events.",
)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per event and line.")
@connection_options
@client_command
async def tail_command(
    api: Api, topic: str, lines: int, follow: bool, count: int | None, as_json: bool
) -> int:
    """The latest events of TOPIC, then (with --follow, the default) every new one as it is
    published (a server-sent event stream that reconnects by itself)."""
    from polos.sdk.events import stream_topic

    printed = 0

    def show(event: dict[str, Any]) -> bool:
        """Print one event; True when --count is reached."""
        nonlocal printed
        click.echo(json.dumps(event, ensure_ascii=False) if as_json else _event_line(event))
        printed += 1
        return count is not None and printed >= count

    last = 0
    recent = await api.get("/events/recent", topic=topic, limit=max(lines, 1))
    if recent["events"]:
        last = int(recent["events"][0]["sequence_id"])
    for event in reversed(recent["events"][:lines]):
        if show(event):
            return 0
    if not follow:
        return 0
    Output().note(f"following {topic} after #{last} (Ctrl-C stops)")
    async for streamed in stream_topic(api.client, topic, last_sequence_id=last):
        if show(streamed.model_dump(mode="json")):
            return 0
    return 0


@click.group("workers", help="Look at the project's workers.")
def workers_group() -> None:
    pass


@workers_group.command("list")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@connection_options
@client_command
async def list_workers(api: Api, as_json: bool) -> int:
    """Registered workers: alive (heard from within the lease window), capacity, executions
    in flight, last heartbeat, the workflows they serve."""
    data = await api.get("/workers")
    if as_json:
        print_json(data)
        return 0
    out = Output()
    if not data["workers"]:
        out.note("no workers")
        return 0
    table = out.table("ID", "ALIVE", "IN FLIGHT", "CAPACITY", "LAST HEARTBEAT", "WORKFLOWS")
    for w in data["workers"]:
        table.add_row(
            *cells(
                w["id"],
                Text("yes", style="green") if w["alive"] else Text("no", style="red"),
                str(w["in_flight"]),
                str(w["capacity"]),
                when(w["last_heartbeat_at"]),
                ", ".join(w["workflow_ids"]),
            )
        )
    out.print(table)
    return 0


@click.group("queues", help="Look at the project's queues.")
def queues_group() -> None:
    pass


@queues_group.command("list")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@connection_options
@client_command
async def list_queues(api: Api, as_json: bool) -> int:
    """Queues: concurrency limit, running, queued and waiting executions."""
    data = await api.get("/queues")
    if as_json:
        print_json(data)
        return 0
    out = Output()
    if not data["queues"]:
        out.note("no queues")
        return 0
    table = out.table("QUEUE", "LIMIT", "RUNNING", "QUEUED", "WAITING")
    for q in data["queues"]:
        limit = q["concurrency_limit"]
        table.add_row(
            *cells(
                q["name"],
                "-" if limit is None else str(limit),
                str(q["running"]),
                str(q["queued"]),
                str(q["waiting"]),
            )
        )
    out.print(table)
    return 0
