"""The Unix socket beside a loopback server, and where a client on the same machine finds it.

A server that listens on a loopback address (the one-machine deployment: `polos-server start`)
also listens on a Unix socket named after that address and port, in a directory only its user
can enter. A client or worker given `http://<that address>:<port>` connects through the
socket when it is there and falls back to TCP when it is not (another user's server, a server
started with `--no-local-socket`, a stale file after a crash): the same HTTP, the same API
keys, nothing to configure.

Why: on this project's 2-core machine a loopback TCP round trip costs ≈ 60 µs and a Unix
socket's ≈ 45 µs, most of the difference being the TCP stack run inside the sender's `write`;
a single `Workflow.run` makes four round trips on its critical path (interleaved A/B, 1,500
calls a side: 0.10 ms less per call; docs/decisions.md "A Unix socket beside a loopback server").

Names are exact: `localhost` and `127.0.0.1` are different names (the client finds the socket
of the name it was given), and two loopback addresses on the same port never share one.
`POLOS_LOCAL_SOCKET=0` turns the socket off for a server (same as `--no-local-socket`) and a
client alike.

Part of the protocol layer (the `protocol_*.py` modules): an agreement between the server,
which listens there (`polos/server/unix_listener.py`), and the clients, which connect there
(`polos/sdk/http11.py`); neither may import the other.
"""

from __future__ import annotations

import ipaddress
import os
import stat
import sys
import tempfile

from polos.protocol import is_loopback_host

ENV = "POLOS_LOCAL_SOCKET"
# sockaddr_un's sun_path is 108 bytes on Linux (104 on macOS), with its terminating NUL.
MAX_PATH_BYTES = 100
_OFF = frozenset({"0", "false", "no", "off"})


def disabled_by_env() -> bool:
    return os.environ.get(ENV, "").strip().lower() in _OFF


def socket_path(host: str, port: int, *, create_dir: bool = False) -> str | None:
    """The socket of the server listening on loopback `host`:`port`, or None when there is
    none to use: `host` not loopback, a platform without Unix sockets, the directory not
    private to this user (or absent and `create_dir` false), a path too long."""
    if sys.platform == "win32" or not is_loopback_host(host.lower()) or not 0 < port < 65536:
        return None
    directory = _private_dir(create_dir)
    if directory is None:
        return None
    path = os.path.join(directory, f"{_canonical(host)}-{port}.sock")
    if len(os.fsencode(path)) > MAX_PATH_BYTES:
        return None
    return path


def _canonical(host: str) -> str:
    name = host.strip("[]").lower()
    try:
        return ipaddress.ip_address(name).compressed.replace(":", "_")
    except ValueError:
        return name  # localhost, localhost.localdomain


def _base_dir() -> str:
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    if runtime and os.path.isabs(runtime) and os.path.isdir(runtime):
        return os.path.join(runtime, "polos")
    return os.path.join(tempfile.gettempdir(), f"polos-{os.getuid()}")


def _private_dir(create: bool) -> str | None:
    """The directory, if it is this user's and nobody else's (a socket in a directory another
    user could write to could be someone else's server)."""
    directory = _base_dir()
    if create:
        try:
            os.mkdir(directory, 0o700)
        except FileExistsError:
            pass
        except OSError:
            return None
    try:
        st = os.lstat(directory)
    except OSError:
        return None
    if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.getuid() or st.st_mode & 0o077:
        return None
    return directory
