"""`polos-server` (also `polos server`): start the server, migrate its database, manage API
keys. Argument parsing, and wiring the server's parts together."""

from __future__ import annotations

import asyncio
import logging
import socket
import sys
import time
from types import FrameType
from typing import Any

import click

from polos import gc_tuning
from polos.model import ApiKey
from polos.protocol import is_loopback_host as is_loopback
from polos.server.settings import Settings
from polos.store import create_store, default_database_url
from polos.store.base import Store

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
    from polos.server.unix_listener import UnixListener
    from polos.server.uvicorn_protocol import JsonErrorHttpToolsProtocol

    store = create_store(settings.database_url)
    app = create_app(store, settings)

    unix = UnixListener()

    class _Server(uvicorn.Server):
        async def startup(self, sockets: list[socket.socket] | None = None) -> None:
            await super().startup(sockets)
            if self.started and settings.local_socket:
                # Beside the TCP listener, after it: its bind is what proves no other server
                # has this address and port, so the socket of that name is ours to replace.
                port = self.servers[0].sockets[0].getsockname()[1]
                listener = await unix.open(
                    settings.host,
                    port,
                    lambda: config.http_protocol_class(  # type: ignore[call-arg]
                        config=config,
                        server_state=self.server_state,
                        app_state=self.lifespan.state,
                    ),
                )
                if listener is not None:
                    self.servers.append(listener)  # uvicorn's shutdown closes it with the rest
            if self.started:
                if settings.auth_required:
                    mode = "API keys required"
                elif settings.local_mode:
                    mode = "local mode, no API key needed"
                else:
                    mode = "NO AUTHENTICATION"
                log.info(
                    "polos server listening on http://%s:%d%s (%s), database %s",
                    settings.host,
                    settings.port,
                    f" and {unix.path}" if unix.path else "",
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
            unix.remove()  # new clients go to TCP (and find nobody) while this one drains
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
        http=JsonErrorHttpToolsProtocol,
        # The server never reads the client's address, so X-Forwarded-* rewriting is only
        # a layer on every request (and would trust any local process's header).
        proxy_headers=False,
        log_level="warning",
        access_log=False,
        lifespan="on",
        timeout_graceful_shutdown=3,
        timeout_keep_alive=75,
    )
    server = _Server(config)
    gc_tuning.tune()  # a server process: the collector set for throughput (polos.gc_tuning)
    server.run()
    log.info("polos server stopped")


def _start(
    host: str,
    port: int,
    database_url: str | None,
    unsafe_no_auth: bool,
    local_mode: bool,
    log_level: str,
    **tuning: Any,
) -> None:
    """`tuning`: the Settings fields given on the command line (lease_seconds, ...)."""
    _setup_logging(log_level)
    require_api_keys = bool(tuning.get("require_api_keys"))
    settings = Settings(
        database_url=database_url or default_database_url(),
        host=host,
        port=port,
        allow_unauthenticated_remote=unsafe_no_auth,
        **tuning,
    )
    if local_mode and not is_loopback(host):
        raise click.UsageError(
            f"refusing to listen on {host} in local mode: local mode needs no API key, so it "
            "only listens on a loopback address (127.0.0.1, ::1, localhost)"
        )
    if local_mode and require_api_keys:
        raise click.UsageError("--local-mode and --require-api-keys contradict each other")
    if not is_loopback(host) and unsafe_no_auth:
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
        help="On a non-loopback address, accept requests without API keys (trusted networks).",
    )
    @click.option(
        "--require-api-keys",
        is_flag=True,
        envvar="POLOS_REQUIRE_API_KEYS",
        help="Require API keys on a loopback address too (a non-loopback address always does).",
    )
    @click.option(
        "--local-mode",
        is_flag=True,
        help="Insist on local mode (no keys): refused unless --host is a loopback address.",
    )
    @click.option(
        "--max-value-bytes",
        default=2 * 1024 * 1024,
        show_default=True,
        type=click.IntRange(min=1024),
        envvar="POLOS_MAX_VALUE_BYTES",
        help="Largest payload, step result, result or state (bytes of JSON).",
    )
    @click.option("--log-level", default="info", show_default=True, envvar="POLOS_LOG_LEVEL")
    @click.option(
        "--max-retries",
        "max_workflow_retries",
        default=2,
        show_default=True,
        type=click.IntRange(min=0, max=100),
        envvar="POLOS_MAX_RETRIES",
        help="Workflow-level retries of an execution that failed with an unexpected error.",
    )
    @click.option(
        "--local-socket/--no-local-socket",
        default=True,
        show_default=True,
        envvar="POLOS_LOCAL_SOCKET",
        help="On a loopback address, also listen on a Unix socket that clients and workers on "
        "this machine use instead of TCP (faster; found from the URL's address and port).",
    )
    @click.option(
        "--test-clock",
        is_flag=True,
        envvar="POLOS_TEST_CLOCK",
        help="Expose POST /api/v1/testing/clock/advance to move time forward (tests only).",
    )
    def start(
        host: str,
        port: int,
        database_url: str | None,
        unsafe_no_auth: bool,
        local_mode: bool,
        log_level: str,
        **tuning: Any,
    ) -> None:
        _start(host, port, database_url, unsafe_no_auth, local_mode, log_level, **tuning)

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


def _open(database_url: str | None) -> Store:
    try:
        return create_store(database_url or default_database_url())
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None


def _keys_group() -> click.Group:
    @click.group("keys", help="Create, list and revoke API keys (stored hashed).")
    def keys() -> None:
        pass

    @keys.command("create", help="Create a key for a project; it is printed once.")
    @click.option("--project", "project_id", default="default", show_default=True)
    @click.option("--name", default="default", show_default=True, help="A label for the key.")
    @_database_option
    def create(project_id: str, name: str, database_url: str | None) -> None:
        from polos.protocol import check_text
        from polos.server.auth import create_key

        try:
            check_text(project_id)
        except ValueError as exc:
            raise click.UsageError(f"--project {exc}") from None
        store = _open(database_url)

        async def run() -> tuple[str, str]:
            await store.open()
            try:
                key, record = await create_key(store, project_id, name)
                return key, record.id
            finally:
                await store.close()

        key, key_id = asyncio.run(run())
        click.echo(f"project: {project_id}\nkey id:  {key_id}\nkey:     {key}")
        click.echo("Keep the key now: only its hash is stored.", err=True)

    @keys.command("list", help="List keys (never the keys themselves).")
    @click.option("--project", "project_id", default=None)
    @_database_option
    def list_keys(project_id: str | None, database_url: str | None) -> None:
        store = _open(database_url)

        async def run() -> list[ApiKey]:
            await store.open()
            try:
                return await store.read(lambda tx: tx.list_api_keys(project_id))
            finally:
                await store.close()

        for k in asyncio.run(run()):
            state = "revoked" if k.revoked_at else "active"
            click.echo(f"{k.id}  {k.project_id}  {k.name}  {k.prefix}...  {state}")

    @keys.command("revoke", help="Revoke a key by its ID (effective within seconds).")
    @click.argument("key_id")
    @_database_option
    def revoke(key_id: str, database_url: str | None) -> None:
        store = _open(database_url)

        async def run() -> bool:
            await store.open()
            try:
                return await store.run(lambda tx: tx.revoke_api_key(key_id, time.time()))
            finally:
                await store.close()

        if not asyncio.run(run()):
            raise click.ClickException(f"no active key with ID {key_id!r}")
        click.echo(f"revoked {key_id}")

    return keys


@click.group(help="The Polos server.")
def server_group() -> None:
    pass


server_group.add_command(_start_command())
server_group.add_command(_migrate_command())
server_group.add_command(_keys_group())
