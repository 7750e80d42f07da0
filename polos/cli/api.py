"""How the client commands reach the server: connection options, one request per call (no
waiting out an outage: a command answers at once when the server is down), errors as
messages and exit codes."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import click

from polos import codec, protocol
from polos.sdk.client import PolosClient, api_error
from polos.sdk.errors import PolosApiError, PolosError
from polos.sdk.transport import TransportError

F = TypeVar("F", bound=Callable[..., Any])

# Exit codes of the client commands (docs/cli.md).
EXIT_OK = 0
EXIT_FAILED = 1  # the execution failed or was cancelled; or the server refused the request
EXIT_USAGE = 2  # click's own code for bad arguments
EXIT_NOT_FINAL = 3  # the execution is not final (yet), or --timeout passed while waiting


def connection_options(f: F) -> F:
    """--api-url, --api-key and --project, each with its environment variable."""
    f = click.option(
        "--project",
        "project_id",
        envvar="POLOS_PROJECT_ID",
        default=None,
        help="Project ID (env POLOS_PROJECT_ID; default: the API key's, or 'default').",
    )(f)
    f = click.option(
        "--api-key",
        envvar="POLOS_API_KEY",
        default=None,
        help="API key (env POLOS_API_KEY); not needed for a server on this machine.",
    )(f)
    f = click.option(
        "--api-url",
        envvar="POLOS_API_URL",
        default=None,
        help="Server URL (env POLOS_API_URL; default http://127.0.0.1:8080).",
    )(f)
    return f


class Api:
    """The server's HTTP API through the SDK's client, one request per call."""

    def __init__(self, client: PolosClient) -> None:
        self.client = client

    async def call(
        self,
        method: str,
        path: str,
        params: dict[str, Any] | None = None,
        body: Any = None,
    ) -> Any:
        query = {k: _param(v) for k, v in (params or {}).items() if v is not None}
        content = None if body is None else codec.dumps(body)
        try:
            response = await self.client.transport.request(
                method, f"{protocol.API_PREFIX}{path}", params=query or None, content=content
            )
        except TransportError as exc:
            raise click.ClickException(
                f"cannot reach the server at {self.client.api_url}: {exc}"
            ) from None
        if response.status_code >= 400:
            raise api_error(response)
        return response.json() if response.content else None

    async def get(self, path: str, **params: Any) -> Any:
        return await self.call("GET", path, params)

    async def post(self, path: str, body: Any = None, **params: Any) -> Any:
        return await self.call("POST", path, params, body)


def _param(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def run(
    api_url: str | None,
    api_key: str | None,
    project_id: str | None,
    work: Callable[[Api], Awaitable[int | None]],
) -> None:
    """Run `work` with a client; exit with the code it returns. Refusals of the server
    become `Error: <message>` and exit code 1."""
    try:
        client = PolosClient(api_url=api_url, api_key=api_key, project_id=project_id)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None

    async def main() -> int | None:
        try:
            return await work(Api(client))
        finally:
            await client.close()

    try:
        code = asyncio.run(main())
    except PolosApiError as exc:
        raise click.ClickException(exc.message) from None
    except PolosError as exc:  # e.g. WorkflowNotFoundError
        raise click.ClickException(str(exc)) from None
    except KeyboardInterrupt:
        raise click.Abort() from None
    if code:
        raise click.exceptions.Exit(code)


def client_command(f: Callable[..., Awaitable[int | None]]) -> Callable[..., None]:
    """A command body `async def f(api, **options)` run with the connection options."""

    @functools.wraps(f)
    def wrapper(
        api_url: str | None, api_key: str | None, project_id: str | None, **options: Any
    ) -> None:
        run(api_url, api_key, project_id, lambda api: f(api, **options))

    return wrapper


__all__ = [
    "EXIT_FAILED",
    "EXIT_NOT_FINAL",
    "EXIT_OK",
    "EXIT_USAGE",
    "Api",
    "client_command",
    "connection_options",
    "run",
]
