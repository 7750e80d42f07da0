"""The server's Unix socket beside its loopback TCP address (`polos.protocol_socket` says why and
where): opened once the TCP listener is up, removed at shutdown if it is still ours."""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable

from polos import protocol_socket

log = logging.getLogger("polos.server")


class UnixListener:
    def __init__(self) -> None:
        self.path: str | None = None
        self._inode: tuple[int, int] | None = None

    async def open(
        self, host: str, port: int, protocol: Callable[[], asyncio.Protocol]
    ) -> asyncio.Server | None:
        """Listen on the socket of `host`:`port`; None (and TCP alone) when there is none to
        use. The caller holds the TCP port, so a file of that name is a dead server's."""
        path = protocol_socket.socket_path(host, port, create_dir=True)
        if path is None:
            return None
        try:
            # The event loop (uvloop's as asyncio's) removes a stale socket of that name first.
            server = await asyncio.get_running_loop().create_unix_server(protocol, path=path)
            os.chmod(path, 0o600)  # the directory is private already; the socket too
            st = os.lstat(path)
        except OSError as exc:  # a regular file of that name, a full disk: TCP still serves
            log.warning("not listening on %s: %s", path, exc)
            return None
        self.path, self._inode = path, (st.st_dev, st.st_ino)
        return server

    def remove(self) -> None:
        """Unlink the socket unless another server has replaced it since."""
        path, self.path = self.path, None
        if path is None:
            return
        try:
            st = os.lstat(path)
            if (st.st_dev, st.st_ino) == self._inode:
                os.unlink(path)
        except OSError:
            pass
