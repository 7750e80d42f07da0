"""A loopback server also listens on a Unix socket, and the workers and clients on its machine
use it (polos.protocol_socket): real server and worker processes, the socket checked on disk and
the connections checked in the processes' own socket tables."""

from __future__ import annotations

import os
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

import polos
from polos import protocol_socket
from tests.e2e.conftest import ServerFactory, WorkerFactory
from tests.e2e.processes import Server, free_port

RUN = "/api/v1/workflows/slow_echo/run"


@pytest.fixture
def runtime(monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A private XDG_RUNTIME_DIR for this test's server, workers and in-process client (short:
    a socket's path has at most ≈ 100 bytes)."""
    with tempfile.TemporaryDirectory(prefix="pls") as d:
        os.chmod(d, 0o700)
        monkeypatch.setenv("XDG_RUNTIME_DIR", d)
        monkeypatch.delenv(protocol_socket.ENV, raising=False)
        yield Path(d)


def tcp_to(pid: int, port: int) -> list[str]:
    """The established TCP connections of process `pid` to `port` on this machine."""
    return [
        f"{c.laddr} -> {c.raddr}"
        for c in psutil.Process(pid).net_connections(kind="tcp")
        if c.raddr and c.raddr.port == port and c.status == psutil.CONN_ESTABLISHED
    ]


def unix_peers(pid: int, path: str) -> int:
    """How many connections the server process `pid` accepted on its socket at `path`."""
    return (
        sum(1 for c in psutil.Process(pid).net_connections(kind="unix") if c.laddr == path) - 1
    )  # the listening socket itself


async def echo(server: Server, value: int) -> list[str]:
    """Run a workflow from this process; its TCP connections to the server meanwhile (the
    client keeps its connection open until closed)."""
    async with polos.PolosClient(api_url=server.url) as client:
        response = await client.request(
            "POST", RUN, content='{"payload": {"value": %d}}' % value, params={"wait_seconds": "20"}
        )
        assert response.json()["execution"]["result"] == {"echo": value}
        return tcp_to(os.getpid(), server.port)


def accepts(path: str) -> bool:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        try:
            s.connect(path)
        except ConnectionRefusedError:
            return False
        return True


def server_socket(server: Server) -> Path:
    path = protocol_socket.socket_path("127.0.0.1", server.port)
    assert path is not None
    return Path(path)


async def test_workers_and_clients_on_the_servers_machine_use_its_unix_socket(
    runtime: Path, start_server: ServerFactory, start_worker: WorkerFactory
) -> None:
    env = {"XDG_RUNTIME_DIR": str(runtime)}
    server = start_server(env=env)
    path = runtime / "polos" / f"127.0.0.1-{server.port}.sock"
    assert path.is_socket()
    assert path.stat().st_mode & 0o777 == 0o600
    assert (runtime / "polos").stat().st_mode & 0o777 == 0o700
    assert f"and {path}" in server.proc.log() if server.proc else False
    worker = start_worker(server, env=env)
    assert await echo(server, 3) == []
    assert server.proc is not None
    # The worker's claims and reports (its long-poll is open now) go through the socket.
    assert tcp_to(worker.proc.pid, server.port) == []
    assert unix_peers(server.proc.pid, str(path)) >= 1
    worker.stop()
    server.stop()
    assert not path.exists()  # a stopped server leaves no socket behind


async def test_with_the_socket_off_workers_and_clients_use_tcp(
    runtime: Path,
    start_server: ServerFactory,
    start_worker: WorkerFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    server = start_server(env={"XDG_RUNTIME_DIR": str(runtime), protocol_socket.ENV: "0"})
    assert not (runtime / "polos").exists()
    worker = start_worker(server, env={"XDG_RUNTIME_DIR": str(runtime)})
    assert await echo(server, 4) != []
    assert tcp_to(worker.proc.pid, server.port) != []
    # And a client told to keep off the socket of a server that has one.
    server2 = start_server(env={"XDG_RUNTIME_DIR": str(runtime)})
    assert server_socket(server2).is_socket()
    monkeypatch.setenv(protocol_socket.ENV, "off")
    async with polos.PolosClient(api_url=server2.url) as client:
        assert (await client.request("GET", "/health")).status_code == 200
        assert tcp_to(os.getpid(), server2.port) != []


async def test_a_stale_socket_is_passed_over_by_clients_and_replaced_by_the_next_server(
    runtime: Path, start_server: ServerFactory, start_worker: WorkerFactory
) -> None:
    port = free_port()
    stale = protocol_socket.socket_path("127.0.0.1", port, create_dir=True)
    assert stale is not None
    # What a server killed with SIGKILL leaves: a socket file nobody listens on.
    dead = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    dead.bind(stale)
    dead.close()
    server = start_server(
        port=port, env={"XDG_RUNTIME_DIR": str(runtime), protocol_socket.ENV: "0"}
    )
    worker = start_worker(server, env={"XDG_RUNTIME_DIR": str(runtime)})
    assert await echo(server, 5) != []  # through TCP, after the refused socket
    assert tcp_to(worker.proc.pid, server.port) != []
    assert not accepts(stale)
    worker.stop()
    server.stop()

    server = start_server(port=port, env={"XDG_RUNTIME_DIR": str(runtime)})
    assert Path(stale).is_socket() and accepts(stale)
    worker = start_worker(server, env={"XDG_RUNTIME_DIR": str(runtime)})
    assert await echo(server, 6) == []
    assert tcp_to(worker.proc.pid, server.port) == []
