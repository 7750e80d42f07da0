"""The protocol layer's agreement on a loopback server's Unix socket: where it lives, and when
there is none (polos.protocol_socket)."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from polos import protocol_socket


@pytest.fixture
def runtime(monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A short private XDG_RUNTIME_DIR (pytest's tmp_path can be longer than a socket path
    may be)."""
    with tempfile.TemporaryDirectory(prefix="pls") as d:
        os.chmod(d, 0o700)
        monkeypatch.setenv("XDG_RUNTIME_DIR", d)
        monkeypatch.delenv(protocol_socket.ENV, raising=False)
        yield Path(d)


def test_a_loopback_address_has_a_socket_named_after_it_in_a_private_directory(
    runtime: Path,
) -> None:
    path = protocol_socket.socket_path("127.0.0.1", 8080, create_dir=True)
    assert path == str(runtime / "polos" / "127.0.0.1-8080.sock")
    assert (runtime / "polos").stat().st_mode & 0o777 == 0o700
    assert protocol_socket.socket_path("::1", 8080) == str(runtime / "polos" / "__1-8080.sock")
    assert protocol_socket.socket_path("[::1]", 81) == str(runtime / "polos" / "__1-81.sock")
    assert protocol_socket.socket_path("LocalHost", 80) == str(
        runtime / "polos" / "localhost-80.sock"
    )
    # Two loopback addresses on one port are two servers.
    assert protocol_socket.socket_path("127.0.0.2", 8080) != path


def test_no_socket_for_other_addresses_or_ports(runtime: Path) -> None:
    for host in ("10.0.0.1", "0.0.0.0", "example.com", "192.168.1.5", "::"):
        assert protocol_socket.socket_path(host, 8080, create_dir=True) is None, host
    for port in (0, -1, 65536):
        assert protocol_socket.socket_path("127.0.0.1", port, create_dir=True) is None


def test_the_directory_is_only_made_by_a_server(runtime: Path) -> None:
    assert protocol_socket.socket_path("127.0.0.1", 8080) is None  # a client: nothing to find
    assert not (runtime / "polos").exists()
    assert protocol_socket.socket_path("127.0.0.1", 8080, create_dir=True) is not None
    assert protocol_socket.socket_path("127.0.0.1", 8080) is not None


def test_a_directory_others_can_enter_is_not_used(runtime: Path) -> None:
    (runtime / "polos").mkdir(mode=0o755)
    os.chmod(runtime / "polos", 0o755)
    assert protocol_socket.socket_path("127.0.0.1", 8080, create_dir=True) is None
    os.chmod(runtime / "polos", 0o700)
    assert protocol_socket.socket_path("127.0.0.1", 8080) is not None


def test_a_symlink_in_place_of_the_directory_is_not_followed(runtime: Path) -> None:
    elsewhere = runtime / "elsewhere"
    elsewhere.mkdir(mode=0o700)
    (runtime / "polos").symlink_to(elsewhere)
    assert protocol_socket.socket_path("127.0.0.1", 8080, create_dir=True) is None


def test_without_xdg_runtime_dir_the_directory_is_per_user_in_the_temporary_directory(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("XDG_RUNTIME_DIR", raising=False)
    with tempfile.TemporaryDirectory(prefix="pls") as d:
        monkeypatch.setattr(tempfile, "tempdir", d)
        path = protocol_socket.socket_path("127.0.0.1", 9000, create_dir=True)
        assert path == os.path.join(d, f"polos-{os.getuid()}", "127.0.0.1-9000.sock")


def test_a_path_too_long_for_a_socket_means_none(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with tempfile.TemporaryDirectory(prefix="pls") as d:
        deep = Path(d) / ("x" * 90)
        deep.mkdir(mode=0o700)
        monkeypatch.setenv("XDG_RUNTIME_DIR", str(deep))
        assert protocol_socket.socket_path("127.0.0.1", 8080, create_dir=True) is None


@pytest.mark.parametrize("value", ["0", "false", "OFF", " no "])
def test_the_environment_turns_it_off(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv(protocol_socket.ENV, value)
    assert protocol_socket.disabled_by_env()


@pytest.mark.parametrize("value", ["", "1", "true", "on"])
def test_the_environment_leaves_it_on(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv(protocol_socket.ENV, value)
    assert not protocol_socket.disabled_by_env()
