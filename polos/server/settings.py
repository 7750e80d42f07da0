"""Server settings: defaults, environment and command line meet here."""

from __future__ import annotations

from dataclasses import dataclass

from polos.protocol import is_loopback_host as is_loopback


@dataclass(slots=True)
class Settings:
    database_url: str
    host: str = "127.0.0.1"
    port: int = 8080
    # A claimed execution belongs to its worker this long without a heartbeat; then it is
    # re-queued. Workers heartbeat every lease/4.
    lease_seconds: float = 10.0
    # Workflow-level retries of retryable failures (upstream POLOS_MAX_RETRIES).
    max_workflow_retries: int = 2
    retry_base_delay: float = 1.0
    retry_max_delay: float = 60.0
    # Largest payload, result or state accepted, in bytes of JSON text.
    max_value_bytes: int = 2 * 1024 * 1024
    # How often the clock looks for expired leases and silent workers.
    sweep_interval: float = 1.0
    # Keys are required on any non-loopback address (unless the operator opts out), and on
    # loopback too when asked.
    allow_unauthenticated_remote: bool = False
    require_api_keys: bool = False
    # Exposes POST /api/v1/testing/clock/advance (tests; `polos.testing`).
    test_clock: bool = False
    # On a loopback address, also listen on a Unix socket for this machine's clients
    # (polos.protocol_socket).
    local_socket: bool = True

    @property
    def heartbeat_interval(self) -> float:
        return self.lease_seconds / 4

    @property
    def local_mode(self) -> bool:
        return is_loopback(self.host) and not self.require_api_keys

    @property
    def auth_required(self) -> bool:
        if self.require_api_keys:
            return True
        return not is_loopback(self.host) and not self.allow_unauthenticated_remote

    def retry_delay(self, retry_count: int) -> float:
        return float(min(self.retry_base_delay * (2**retry_count), self.retry_max_delay))
