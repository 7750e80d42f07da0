"""API keys and the middleware that checks them.

A key is `polos_` + 32 random bytes (base64url). Only its SHA-256 hash is stored, with its first
characters to recognise it in lists; it belongs to one project. When the server requires keys
(any non-loopback address, or `--require-api-keys`), every request but `/health`, the API's
description and the dashboard's static files (`/`, `/ui/...`) must carry `Authorization: Bearer
<key>`; the key's project is the request's project (an `X-Project-ID` naming another project is
refused). A key presented in local mode is checked too and sets the project. Lookups are cached
for a few seconds, so a revoked key stops working within `CACHE_SECONDS`.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import time
import uuid
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from polos.model import ApiKey
from polos.server.http import error_response
from polos.store.base import Store, StoreTx, StoreUnavailable

KEY_PREFIX = "polos_"
CACHE_SECONDS = 5.0
# The dashboard's page and assets hold no data (the page asks the API, with the key the user
# enters), so they load without a key.
OPEN_PATHS = frozenset(
    {"/health", "/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc", "/"}
)
OPEN_PREFIXES = ("/ui/",)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def new_key(project_id: str, name: str, now: float) -> tuple[str, ApiKey]:
    """A fresh key (shown once) and its stored record."""
    secret = base64.urlsafe_b64encode(secrets.token_bytes(32)).decode().rstrip("=")
    key = f"{KEY_PREFIX}{secret}"
    record = ApiKey(
        id=str(uuid.uuid4()),
        project_id=project_id,
        name=name,
        key_hash=hash_key(key),
        prefix=key[: len(KEY_PREFIX) + 6],
        created_at=now,
    )
    return key, record


async def create_key(store: Store, project_id: str, name: str) -> tuple[str, ApiKey]:
    key, record = new_key(project_id, name, time.time())

    async def work(tx: StoreTx) -> None:
        await tx.ensure_project(project_id, record.created_at)
        await tx.insert_api_key(record)

    await store.run(work)
    return key, record


class KeyCache:
    def __init__(self, store: Store) -> None:
        self._store = store
        self._entries: dict[str, tuple[float, str | None]] = {}

    async def project_of(self, key: str) -> str | None:
        """The project of an active key, or None."""
        digest = hash_key(key)
        now = time.monotonic()
        hit = self._entries.get(digest)
        if hit is not None and hit[0] > now:
            return hit[1]

        async def work(tx: StoreTx) -> ApiKey | None:
            return await tx.api_key_by_hash(digest)

        record = await self._store.read(work)
        project = record.project_id if record is not None and record.revoked_at is None else None
        if len(self._entries) > 10_000:
            self._entries.clear()
        self._entries[digest] = (now + CACHE_SECONDS, project)
        return project


class ApiKeyMiddleware:
    """Pure ASGI (no per-request overhead beyond a header lookup and a cache hit)."""

    def __init__(self, app: ASGIApp, keys: KeyCache, required: bool) -> None:
        self.app = app
        self.keys = keys
        self.required = required

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope["path"] if scope["type"] == "http" else ""
        if scope["type"] != "http" or path in OPEN_PATHS or path.startswith(OPEN_PREFIXES):
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        authorization = headers.get(b"authorization", b"").decode("latin-1")
        scheme, _, key = authorization.partition(" ")
        if not key:
            if self.required:
                await _refuse(
                    scope,
                    receive,
                    send,
                    401,
                    "an API key is required: "
                    "send Authorization: Bearer <key> (polos-server keys create)",
                )
                return
            await self.app(scope, receive, send)
            return
        if scheme.lower() != "bearer":
            await _refuse(scope, receive, send, 401, "use Authorization: Bearer <key>")
            return
        try:
            project = await self.keys.project_of(key.strip())
        except StoreUnavailable as exc:
            await _refuse(scope, receive, send, 503, str(exc), "database_unavailable")
            return
        if project is None:
            await _refuse(scope, receive, send, 401, "unknown or revoked API key")
            return
        claimed = headers.get(b"x-project-id", b"").decode("utf-8", "replace")
        if claimed and claimed != project:
            await _refuse(
                scope, receive, send, 403, "this API key belongs to another project", "forbidden"
            )
            return
        scope.setdefault("state", {})["project_id"] = project
        await self.app(scope, receive, send)


async def _refuse(
    scope: Scope,
    receive: Receive,
    send: Send,
    status: int,
    message: str,
    code: str = "unauthorized",
) -> None:
    response = error_response(status, code, message)
    if status == 401:
        response.headers["WWW-Authenticate"] = "Bearer"
    await response(scope, receive, send)
