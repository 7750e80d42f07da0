"""Command line: `polos-server` and `polos`. Argument parsing, and wiring the parts together."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import sys
from types import FrameType
from typing import Any

import click

from polos.protocol import is_loopback_host as is_loopback
from polos.server.settings import Settings
from polos.store import create_store, default_database_url

log = logging.getLogger("polos.server")


def _setup_logging(level: str) -> None:
    logging.basicConfig(
        level=getattr(logging, level.upper(), logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )


def _database_option(f: Any) -> Any:
    return click.option(
        "--database-url",
        envvar="POLOS_DATABASE_URL",
        default=None,
        help="sqlite:///path or postgresql://... (env POLOS_DATABASE_URL; "
        "default sqlite:///~/.polos/polos.db)",
    )(f)


def _serve(settings: Settings) -> None:
    import uvicorn

    from polos.server.app import create_app

    store = create_store(settings.database_url)
    app = create_app(store, settings)

    class _Server(uvicorn.Server):
        async def startup(self, sockets: list[socket.socket] | None = None) -> None:
            await super().startup(sockets)
            if self.started:
                mode = "local mode, no API key needed" if settings.local_mode else "remote"
                log.info(
                    "polos server listening on http://%s:%d (%s), database %s",
                    settings.host,
                    settings.port,
                    mode,
                    store.describe(),
                )

        def handle_exit(self, sig: int, frame: FrameType | None) -> None:
            super().handle_exit(sig, frame)
            # SIGINT/SIGTERM is how this server is meant to stop: finish cleanly and exit 0
            # instead of letting uvicorn re-raise the signal after its graceful shutdown.
            captured = getattr(self, "_captured_signals", None)
            if isinstance(captured, list):
                captured.clear()

        async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
            # Long-polls would hold the graceful shutdown up to its timeout: answer them now.
            app.state.polos.signals.close()
            await super().shutdown(sockets)

    try:
        import uvloop  # noqa: F401

        loop = "uvloop"
    except ImportError:  # pragma: no cover - Windows
        loop = "asyncio"
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        loop=loop,
        http="httptools",
        log_level="warning",
        access_log=False,
        lifespan="on",
        timeout_graceful_shutdown=3,
        timeout_keep_alive=75,
    )
    server = _Server(config)
    server.run()
    log.info("polos server stopped")


def _start(
    host: str,
    port: int,
    database_url: str | None,
    lease_seconds: float,
    unsafe_no_auth: bool,
    log_level: str,
) -> None:
    _setup_logging(log_level)
    settings = Settings(
        database_url=database_url or default_database_url(),
        host=host,
        port=port,
        lease_seconds=lease_seconds,
        allow_unauthenticated_remote=unsafe_no_auth,
    )
    if not is_loopback(host):
        if not unsafe_no_auth:
            raise click.UsageError(
                f"refusing to listen on {host}: API keys are not built yet, so a non-loopback "
                "address would accept anyone. Listen on 127.0.0.1, or pass --unsafe-no-auth "
                "if the network itself is trusted."
            )
        log.warning(
            "LISTENING ON %s WITHOUT AUTHENTICATION (--unsafe-no-auth): anyone who can reach "
            "this port can run and read workflows",
            host,
        )
    try:
        create_store(settings.database_url)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    _serve(settings)


def _start_command() -> click.Command:
    @click.command("start", help="Run the server in the foreground (Ctrl-C stops it).")
    @click.option("--host", default="127.0.0.1", show_default=True, envvar="POLOS_HOST")
    @click.option("--port", default=8080, show_default=True, type=int, envvar="POLOS_PORT")
    @_database_option
    @click.option(
        "--lease-seconds",
        default=10.0,
        show_default=True,
        type=click.FloatRange(min=0.5),
        envvar="POLOS_LEASE_SECONDS",
        help="How long a worker may go silent before its executions are queued again.",
    )
    @click.option(
        "--unsafe-no-auth",
        is_flag=True,
        help="Allow a non-loopback address without API keys.",
    )
    @click.option("--log-level", default="info", show_default=True, envvar="POLOS_LOG_LEVEL")
    def start(
        host: str,
        port: int,
        database_url: str | None,
        lease_seconds: float,
        unsafe_no_auth: bool,
        log_level: str,
    ) -> None:
        _start(host, port, database_url, lease_seconds, unsafe_no_auth, log_level)

    return start


def _migrate_command() -> click.Command:
    @click.command("migrate", help="Apply pending schema migrations and exit.")
    @_database_option
    def migrate(database_url: str | None) -> None:
        _setup_logging("info")
        store = create_store(database_url or default_database_url())

        async def run() -> None:
            await store.open()  # opening applies the migrations
            await store.close()

        asyncio.run(run())
        click.echo(f"schema up to date: {store.describe()}")

    return migrate


@click.group(help="The Polos server.")
def server_group() -> None:
    pass


server_group.add_command(_start_command())
server_group.add_command(_migrate_command())


@click.group(help="Polos: durable workflows.")
@click.version_option(package_name="polos")
def cli() -> None:
    pass


cli.add_command(server_group, name="server")


def server_main() -> None:
    server_group(prog_name="polos-server")


def main() -> None:
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    cli(prog_name="polos")
