"""The command line: `polos` (server, run, executions, events, workers, queues) and
`polos-server` (the server's commands alone). docs/cli.md describes every command.

The client commands talk to a server over its HTTP API with the SDK's `PolosClient`
(--api-url / POLOS_API_URL, --api-key / POLOS_API_KEY, --project / POLOS_PROJECT_ID).

Layout: design.md has one `cli.py`; with the observability commands (tables, progress bars,
trees) it became a package, one module per command group, so that each stays small.
"""

from __future__ import annotations

import os

import click

from polos.cli.executions import executions_group, run_command
from polos.cli.resources import events_group, queues_group, workers_group
from polos.cli.server import server_group

__all__ = ["cli", "main", "server_main"]


@click.group(help="Polos: durable workflows.")
@click.version_option(package_name="polos")
def cli() -> None:
    pass


cli.add_command(server_group, name="server")
cli.add_command(run_command)
cli.add_command(executions_group)
cli.add_command(events_group)
cli.add_command(workers_group)
cli.add_command(queues_group)


def server_main() -> None:
    server_group(prog_name="polos-server")


def main() -> None:
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    cli(prog_name="polos")
