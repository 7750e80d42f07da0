"""Test your workflows: an in-process server and worker, and time you can skip.

    from polos.testing import Environment

    async def test_reminder() -> None:
        async with Environment() as env:
            handle = await remind.invoke(env.client, {"days": 3})
            await env.advance(days=3)  # no real waiting
            assert await handle.result(env.client) == "reminded"

`Environment` starts the real server app (on a temporary SQLite file, with the test clock on)
and a real worker in the test's event loop. `env.settle()` waits until nothing can run any
more; `env.advance(...)` settles, then moves the server's clock from one due item (timer,
timeout, schedule slot, delayed retry) to the next, firing each and settling in between.
The pytest plugin (`polos.pytest_plugin`, installed with the package) offers it as the
`polos_env` fixture. docs/testing.md has the details.

The module-level `settle`, `advance`, `advance_clock` and `server_time` do the same against
any server started with `--test-clock` (`polos-server start --test-clock`).
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import shutil
import tempfile
import time
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from polos import codec, protocol
from polos.sdk import clock as workflow_clock
from polos.sdk.client import ClientLike, PolosClient, as_client
from polos.sdk.workflow import Workflow

if TYPE_CHECKING:
    import uvicorn

    from polos.server.settings import Settings
    from polos.server.state import ServerState
    from polos.worker.worker import Worker

__all__ = [
    "Environment",
    "SettleTimeoutError",
    "advance",
    "advance_clock",
    "agenda",
    "server_time",
    "settle",
]

# How long (real seconds) settle() waits for the running work to stop before giving up.
DEFAULT_SETTLE_TIMEOUT = 30.0
# What the worker reads to decide between sleeping in place and suspending (polos.sdk.step).
_WAIT_THRESHOLD_VARIABLE = "POLOS_WAIT_THRESHOLD_SECONDS"


class SettleTimeoutError(TimeoutError):
    """Executions were still running (or due) when `settle()` gave up."""

    def __init__(self, message: str, agenda: protocol.ClockAgenda) -> None:
        super().__init__(message)
        self.agenda = agenda


# --------------------------------------------------------------------------- the clock API


async def advance_clock(client: ClientLike, seconds: float) -> float:
    """Move the server's clock forward in one jump; returns its new time (unix seconds).

    Everything due by then fires at once, in one sweep. `advance()` is the careful form: it
    steps from one due item to the next and lets the work settle in between."""
    response = await as_client(client).request(
        "POST",
        f"{protocol.API_PREFIX}/testing/clock/advance",
        content=codec.dumps({"seconds": seconds}),
    )
    return protocol.ClockView.model_validate_json(response.content).now


async def server_time(client: ClientLike) -> float:
    """The server's time (unix seconds)."""
    response = await as_client(client).request("GET", f"{protocol.API_PREFIX}/testing/clock")
    return protocol.ClockView.model_validate_json(response.content).now


async def agenda(client: ClientLike) -> protocol.ClockAgenda:
    """What is running, what is due now, and when the next thing falls due."""
    response = await as_client(client).request("GET", f"{protocol.API_PREFIX}/testing/agenda")
    return protocol.ClockAgenda.model_validate_json(response.content)


async def _sweep(client: ClientLike) -> protocol.ClockAgenda:
    response = await as_client(client).request("POST", f"{protocol.API_PREFIX}/testing/sweep")
    return protocol.ClockAgenda.model_validate_json(response.content)


async def settle(
    client: ClientLike, timeout: float = DEFAULT_SETTLE_TIMEOUT
) -> protocol.ClockAgenda:
    """Wait until the server is settled: no execution is running, none is queued and due for
    a workflow a live worker serves, and no timer or schedule slot is due (what is due is
    fired at once). Waiting executions (timers in the future, events, children, resumes) do
    not count: they wait for something. Raises SettleTimeoutError after `timeout` real
    seconds."""
    deadline = time.monotonic() + timeout
    delay = 0.001
    while True:
        view = await _sweep(client)
        if view.settled:
            return view
        if time.monotonic() >= deadline:
            raise SettleTimeoutError(
                f"not settled after {timeout:g} s: {view.running} running, {view.runnable} "
                f"queued and due, {view.due} timer(s)/slot(s) due; e.g. {view.busy}",
                view,
            )
        await asyncio.sleep(delay)
        delay = min(delay * 2, 0.02)


def _duration(seconds: float, minutes: float, hours: float, days: float, weeks: float) -> float:
    total = seconds + minutes * 60 + hours * 3600 + days * 86_400 + weeks * 604_800
    if not math.isfinite(total) or total < 0:
        raise ValueError(f"time only moves forward: cannot advance by {total} s")
    return float(total)


async def advance(
    client: ClientLike,
    *,
    seconds: float = 0,
    minutes: float = 0,
    hours: float = 0,
    days: float = 0,
    weeks: float = 0,
    timeout: float = DEFAULT_SETTLE_TIMEOUT,
) -> float:
    """Skip time on a `--test-clock` server; returns its new time (unix seconds).

    First settle; then, while the next due item (a durable timer: a wait, a wait or suspend
    timeout, a run timeout, a partial event batch; a schedule slot; a delayed retry) falls
    before the target, move the clock to it, fire it and settle again; finally move the
    clock to the target and settle. So items fire in the order of their times, and whatever
    an item causes (a child that waits in turn) happens before later items fire."""
    total = _duration(seconds, minutes, hours, days, weeks)
    view = await settle(client, timeout)
    target = view.now + total
    while view.next_due_at is not None and view.next_due_at <= target:
        step = view.next_due_at - view.now
        if step > 0:
            await advance_clock(client, step)
        view = await settle(client, timeout)
    if target > view.now:
        await advance_clock(client, target - view.now)
        view = await settle(client, timeout)
    return view.now


# --------------------------------------------------------------------------- Environment


@contextlib.contextmanager
def _polos_settings_hidden() -> Iterator[None]:
    """Hide the POLOS_* environment (and what a .env file put there) while the client and the
    worker read their defaults: the environment is self-contained. Synchronous code only, so
    nothing else in the event loop sees the environment without them."""
    saved = {name: os.environ.pop(name) for name in list(os.environ) if name.startswith("POLOS_")}
    try:
        yield
    finally:
        os.environ.update(saved)


class Environment:
    """A Polos server and worker in this process, for tests.

        async with Environment() as env:
            result = await my_workflow.run(env.client, payload)
            await env.advance(hours=2)

    - The server is the real server app on 127.0.0.1 (a free port), on a temporary SQLite file
      (removed at the end) unless `database_url` names another database, with the test clock
      on. Its settings are the keyword arguments here, with the server's defaults; no POLOS_*
      environment variable (nor a .env file) changes anything.
    - The worker serves `workflows`, or every workflow defined (imported) when the environment
      starts. Every wait suspends (`wait_threshold_seconds=0`), so that waits follow the
      environment's clock: `advance()` skips them.
    - `env.client` is a PolosClient of the server (project `project_id`); `env` itself can be
      passed wherever a client goes (`await wf.run(env, payload)`).
    - Leaving stops everything at once: executions still running are abandoned, not awaited.
    """

    def __init__(
        self,
        *,
        workflows: Sequence[Workflow] | None = None,
        database_url: str | None = None,
        project_id: str = "default",
        max_concurrent_workflows: int = 100,
        lease_seconds: float = 10.0,
        max_retries: int = 2,
        retry_base_delay: float = 1.0,
        retry_max_delay: float = 60.0,
        max_value_bytes: int = 2 * 1024 * 1024,
        wait_threshold_seconds: float = 0.0,
        settle_timeout: float = DEFAULT_SETTLE_TIMEOUT,
    ) -> None:
        # The bounds of the server's command line (polos/cli/server.py).
        if lease_seconds < 0.5:
            raise ValueError(f"lease_seconds must be at least 0.5, not {lease_seconds}")
        if not 0 <= max_retries <= 100:
            raise ValueError(f"max_retries must be between 0 and 100, not {max_retries}")
        if max_value_bytes < 1024:
            raise ValueError(f"max_value_bytes must be at least 1024, not {max_value_bytes}")
        if wait_threshold_seconds < 0 or settle_timeout <= 0:
            raise ValueError("wait_threshold_seconds must be >= 0 and settle_timeout > 0")
        self._workflows = list(workflows) if workflows is not None else None
        self._database_url = database_url
        self.project_id = project_id
        self._capacity = max_concurrent_workflows
        self._lease_seconds = lease_seconds
        self._max_retries = max_retries
        self._retry_base_delay = retry_base_delay
        self._retry_max_delay = retry_max_delay
        self._max_value_bytes = max_value_bytes
        self._wait_threshold = wait_threshold_seconds
        self.settle_timeout = settle_timeout
        self._client: PolosClient | None = None
        self._worker: Worker | None = None
        self._server: uvicorn.Server | None = None
        self._state: ServerState | None = None
        self._settings: Settings | None = None
        self._tmpdir: str | None = None
        self._saved_threshold: str | None = None
        self._threshold_set = False
        self.url = ""

    # -- what tests use ------------------------------------------------------------------

    @property
    def client(self) -> PolosClient:
        """A client of the environment's server."""
        if self._client is None:
            raise RuntimeError("the environment is not started: use `async with Environment()`")
        return self._client

    @property
    def worker(self) -> Worker:
        if self._worker is None:
            raise RuntimeError("the environment is not started: use `async with Environment()`")
        return self._worker

    @property
    def settings(self) -> Settings:
        """The server's settings."""
        if self._settings is None:
            raise RuntimeError("the environment is not started: use `async with Environment()`")
        return self._settings

    @property
    def database_url(self) -> str:
        return self.settings.database_url

    def now(self) -> datetime:
        """The environment's time (the server's clock), as an aware UTC datetime. It runs at
        real speed, plus every jump `advance()` made."""
        if self._state is None:
            raise RuntimeError("the environment is not started: use `async with Environment()`")
        return datetime.fromtimestamp(self._state.clock.now(), UTC)

    async def settle(self) -> protocol.ClockAgenda:
        """Wait until nothing can run any more (see `polos.testing.settle`)."""
        return await settle(self.client, self.settle_timeout)

    async def advance(
        self,
        *,
        seconds: float = 0,
        minutes: float = 0,
        hours: float = 0,
        days: float = 0,
        weeks: float = 0,
    ) -> datetime:
        """Settle, then skip time, firing what falls due in order (see
        `polos.testing.advance`); returns the new time."""
        now = await advance(
            self.client,
            seconds=seconds,
            minutes=minutes,
            hours=hours,
            days=days,
            weeks=weeks,
            timeout=self.settle_timeout,
        )
        return datetime.fromtimestamp(now, UTC)

    async def agenda(self) -> protocol.ClockAgenda:
        return await agenda(self.client)

    # -- lifecycle -----------------------------------------------------------------------

    async def __aenter__(self) -> Environment:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def start(self) -> None:
        if self._server is not None:
            raise RuntimeError("the environment is started already")
        try:
            await self._start_server()
            self._set_wait_threshold()
            from polos.worker.worker import Worker

            with _polos_settings_hidden():
                self._client = PolosClient(api_url=self.url, project_id=self.project_id)
                self._worker = Worker(
                    self._client,
                    workflows=self._workflows,
                    max_concurrent_workflows=self._capacity,
                    shutdown_grace_seconds=0.0,
                )
            await self._worker.start()
        except BaseException:
            await self.stop()
            raise

    async def stop(self) -> None:
        """Stop the worker, the client and the server, and remove the temporary database."""
        worker, self._worker = self._worker, None
        client, self._client = self._client, None
        try:
            if worker is not None:
                await worker.shutdown()
            if client is not None:
                await client.close()
            await self._stop_server()
        finally:
            self._restore_wait_threshold()
            tmpdir, self._tmpdir = self._tmpdir, None
            if tmpdir is not None:
                shutil.rmtree(tmpdir, ignore_errors=True)

    # -- the server ----------------------------------------------------------------------

    async def _start_server(self) -> None:
        import uvicorn

        from polos.server.app import create_app
        from polos.server.settings import Settings
        from polos.server.uvicorn_protocol import JsonErrorHttpToolsProtocol
        from polos.store import create_store

        if self._database_url is None:
            self._tmpdir = tempfile.mkdtemp(prefix="polos-test-")
            url = f"sqlite:///{os.path.join(self._tmpdir, 'polos.db')}"
            # A database thrown away after the test needs no fsync.
            synchronous = "off"
        else:
            url, synchronous = self._database_url, "full"
        settings = Settings(
            database_url=url,
            host="127.0.0.1",
            port=0,
            lease_seconds=self._lease_seconds,
            max_workflow_retries=self._max_retries,
            retry_base_delay=self._retry_base_delay,
            retry_max_delay=self._retry_max_delay,
            max_value_bytes=self._max_value_bytes,
            test_clock=True,
        )
        with _polos_settings_hidden():  # POLOS_PG_POOL_* and the like
            store = create_store(url, sqlite_synchronous=synchronous)
        app = create_app(store, settings)
        config = uvicorn.Config(
            app,
            host=settings.host,
            port=0,
            http=JsonErrorHttpToolsProtocol,
            lifespan="on",
            # Leave the logging configuration of the test run alone.
            log_config=None,
            log_level=None,
            access_log=False,
        )
        # Driven step by step rather than with `serve()`: serve() installs signal handlers
        # and polls for its exit every 0.1 s, and a test environment should stop at once.
        config.load()
        server = uvicorn.Server(config)
        server.lifespan = config.lifespan_class(config)
        self._server = server
        self._state = app.state.polos
        # Workflows in this process see the server's clock (ctx.step.now, wait_until).
        server_clock = self._state.clock
        server_clock.on_advance(lambda _: workflow_clock.set_offset(server_clock.offset))
        self._settings = settings
        try:
            await server.startup()
        except SystemExit:
            raise RuntimeError(
                f"the test server did not start (database {store.describe()}): see the log"
            ) from None
        port = server.servers[0].sockets[0].getsockname()[1]
        settings.port = port
        self.url = f"http://127.0.0.1:{port}"

    async def _stop_server(self) -> None:
        workflow_clock.set_offset(0.0)
        server, self._server = self._server, None
        if server is None:
            return
        if self._state is not None:
            # Parked long-polls (claims, result waits, event streams) answer now.
            self._state.signals.close()
        if server.started:
            for listener in server.servers:
                listener.close()
            connections = server.server_state.connections
            for connection in list(connections):
                connection.shutdown()
            tasks = server.server_state.tasks
            # Our own clients are closed by now, so this takes a few milliseconds; a
            # connection a test left open gets up to 3 s, like the server's own shutdown.
            for _ in range(1500):
                if not (connections or tasks):
                    break
                await asyncio.sleep(0.002)
            for task in list(tasks):
                task.cancel()
        with contextlib.suppress(Exception):
            await server.lifespan.shutdown()

    # -- the worker's wait threshold -------------------------------------------------------

    def _set_wait_threshold(self) -> None:
        # The worker reads it when a workflow waits (polos.sdk.step.wait_threshold_seconds);
        # it is the one setting of the in-process worker that is read that late.
        self._saved_threshold = os.environ.get(_WAIT_THRESHOLD_VARIABLE)
        os.environ[_WAIT_THRESHOLD_VARIABLE] = repr(float(self._wait_threshold))
        self._threshold_set = True

    def _restore_wait_threshold(self) -> None:
        if not self._threshold_set:
            return
        self._threshold_set = False
        if self._saved_threshold is None:
            os.environ.pop(_WAIT_THRESHOLD_VARIABLE, None)
        else:
            os.environ[_WAIT_THRESHOLD_VARIABLE] = self._saved_threshold

    def __repr__(self) -> str:
        return f"Environment(url={self.url!r}, database_url={self._database_url!r})"
