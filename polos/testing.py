"""Helpers for users' own tests.

For now: move the time of a server started with `--test-clock` (`polos-server start
--test-clock`), so that waits, timeouts and schedules due by then fire without waiting. The
in-process test environment (`Environment`) comes with the test-harness work (issue 6).
"""

from __future__ import annotations

from polos import codec, protocol
from polos.sdk.client import ClientLike, as_client


async def advance_clock(client: ClientLike, seconds: float) -> float:
    """Move the server's clock forward; returns its new time (unix seconds)."""
    response = await as_client(client).request(
        "POST",
        f"{protocol.API_PREFIX}/testing/clock/advance",
        content=codec.dumps({"seconds": seconds}),
    )
    return protocol.ClockView.model_validate_json(response.content).now


async def server_time(client: ClientLike) -> float:
    response = await as_client(client).request("GET", f"{protocol.API_PREFIX}/testing/clock")
    return protocol.ClockView.model_validate_json(response.content).now
