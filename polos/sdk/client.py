"""`PolosClient` (HTTP client of the server) and `ExecutionHandle`.

Configuration comes from arguments, else the environment (a `.env` file in the working
directory is loaded): POLOS_API_URL (default http://127.0.0.1:8080), POLOS_PROJECT_ID (default
"default" against a loopback server), POLOS_API_KEY, POLOS_DEPLOYMENT_ID, POLOS_LOCAL_MODE.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from typing import TYPE_CHECKING, Any, Protocol, TypeAlias
from urllib.parse import urlsplit

from dotenv import find_dotenv, load_dotenv
from pydantic import BaseModel, ConfigDict

from polos import codec, protocol
from polos.sdk.errors import (
    PolosApiError,
    WorkflowFailedError,
    WorkflowNotFoundError,
    WorkflowTimeoutError,
)
from polos.sdk.transport import HttpTransport, Response, TransportError, split_urls

if TYPE_CHECKING:
    from polos.sdk.workflow import Workflow
    from polos.types.types import BatchWorkflowInput

log = logging.getLogger("polos.client")

load_dotenv(find_dotenv(usecwd=True), override=False)

DEFAULT_API_URL = "http://127.0.0.1:8080"
UNAVAILABLE_BUDGET_SECONDS = 60.0
_FINAL = {"completed", "failed", "cancelled"}


def _is_loopback_url(urls: str) -> bool:
    return all(protocol.is_loopback_host(urlsplit(url).hostname or "") for url in split_urls(urls))


class ExecutionHandle(BaseModel):
    """A started execution. `id` and `execution_id` are the same UUID."""

    model_config = ConfigDict(extra="ignore")

    id: str
    workflow_id: str | None = None
    created_at: str | None = None
    parent_execution_id: str | None = None
    root_workflow_id: str | None = None
    root_execution_id: str | None = None
    session_id: str | None = None
    user_id: str | None = None
    step_key: str | None = None

    @property
    def execution_id(self) -> str:
        return self.id

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json")

    def __repr__(self) -> str:
        fields = ", ".join(f"{k}={v!r}" for k, v in self.model_dump().items() if v is not None)
        return f"ExecutionHandle({fields})"

    async def get(self, client: ClientLike) -> dict[str, Any]:
        """The execution as it is now; `result` rebuilt into the workflow's return type."""
        c = as_client(client)
        data = await c.get_execution(self.id)
        if data.get("status") == "completed":
            data["result"] = c.rebuild_result(data)
        return data

    async def cancel(self, client: ClientLike) -> bool:
        """Cancel this execution and its unfinished descendants."""
        return await as_client(client).cancel_execution(self.id)

    async def result(self, client: ClientLike, timeout: float | None = 600.0) -> Any:
        """Wait (without polling on a timer) for the execution's result."""
        return await as_client(client).wait_for_result(self.id, timeout=timeout)


class ClientProvider(Protocol):
    """Anything that carries a PolosClient (the `Polos` object does)."""

    @property
    def client(self) -> PolosClient: ...


ClientLike: TypeAlias = "PolosClient | ClientProvider"


def as_client(client: Any) -> PolosClient:
    if isinstance(client, PolosClient):
        return client
    inner = getattr(client, "client", None)
    if isinstance(inner, PolosClient):
        return inner
    raise TypeError(f"expected a PolosClient or a Polos, not {type(client).__name__}")


class PolosClient:
    """Talks to a Polos server: start executions, read them, wait for results."""

    def __init__(
        self,
        api_url: str | None = None,
        api_key: str | None = None,
        project_id: str | None = None,
        deployment_id: str | None = None,
        timeout: float = 30.0,
    ) -> None:
        self.api_url = (api_url or os.environ.get("POLOS_API_URL") or DEFAULT_API_URL).rstrip("/")
        self.api_key = api_key or os.environ.get("POLOS_API_KEY") or None
        # Local mode (no API key, any project ID) is what a loopback server offers;
        # POLOS_LOCAL_MODE is accepted for compatibility and changes nothing else.
        self.local_mode = _is_loopback_url(self.api_url)
        explicit_project = project_id or os.environ.get("POLOS_PROJECT_ID") or None
        if not explicit_project and not self.api_key and not self.local_mode:
            raise ValueError(
                "a server that is not on this machine needs an API key (api_key= or "
                "POLOS_API_KEY; `polos-server keys create`)"
            )
        # With a key the server knows the project; an explicit one must match the key's.
        self._send_project = bool(explicit_project) or not self.api_key
        self.project_id = explicit_project or "default"
        self.deployment_id = deployment_id or os.environ.get("POLOS_DEPLOYMENT_ID") or None
        self._transport = HttpTransport(
            self.api_url, self.headers(), timeout=timeout + protocol.MAX_LONG_POLL_SECONDS
        )

    def __repr__(self) -> str:
        return f"PolosClient(api_url={self.api_url!r}, project_id={self.project_id!r})"

    # -- transport ---------------------------------------------------------------------

    def headers(self) -> dict[str, str]:
        headers = {"Content-Type": "application/json"}
        if self._send_project:
            headers["X-Project-ID"] = self.project_id
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        return headers

    @property
    def transport(self) -> HttpTransport:
        return self._transport

    async def close(self) -> None:
        await self._transport.close()

    async def __aenter__(self) -> PolosClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def request(
        self,
        method: str,
        path: str,
        *,
        content: str | bytes | None = None,
        params: dict[str, str] | None = None,
    ) -> Response:
        if method != "GET":
            response = await self._transport.request(method, path, content=content, params=params)
        else:
            response = await self._ride_out_outages("GET", path, params, None)
        if response.status_code >= 400:
            raise api_error(response)
        return response

    async def _ride_out_outages(
        self, method: str, path: str, params: dict[str, str] | None, content: str | None
    ) -> Response:
        """For requests safe to repeat (reads, keyed starts): ride out a server restart or an
        unreachable database (503) for up to `UNAVAILABLE_BUDGET_SECONDS`."""
        deadline = time.monotonic() + UNAVAILABLE_BUDGET_SECONDS
        delay = 0.05
        while True:
            try:
                response = await self._transport.request(
                    method, path, params=params, content=content
                )
                if response.status_code not in (502, 503, 504):
                    return response
                failure: str = f"HTTP {response.status_code}"
            except TransportError as exc:
                failure = str(exc)
            if time.monotonic() + delay > deadline:
                raise PolosApiError(503, "unavailable", f"{method} {path}: {failure}")
            log.warning("server unavailable (%s); retrying in %.2f s", failure, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 2.0)

    # -- executions --------------------------------------------------------------------

    async def invoke(
        self,
        workflow_id: str,
        payload: Any = None,
        queue_name: str | None = None,
        queue_concurrency_limit: int | None = None,
        concurrency_key: str | None = None,
        session_id: str | None = None,
        user_id: str | None = None,
        initial_state: BaseModel | dict[str, Any] | None = None,
        run_timeout_seconds: int | None = None,
        idempotency_key: str | None = None,
    ) -> ExecutionHandle:
        """Start an execution of `workflow_id` (it need not be imported here)."""
        handle, _ = await self.start(
            workflow_id,
            payload,
            queue_name=queue_name,
            queue_concurrency_limit=queue_concurrency_limit,
            concurrency_key=concurrency_key,
            session_id=session_id,
            user_id=user_id,
            initial_state=initial_state,
            run_timeout_seconds=run_timeout_seconds,
            idempotency_key=idempotency_key,
        )
        return handle

    async def start(
        self,
        workflow_id: str,
        payload: Any = None,
        *,
        queue_name: str | None = None,
        queue_concurrency_limit: int | None = None,
        concurrency_key: str | None = None,
        session_id: str | None = None,
        user_id: str | None = None,
        initial_state: BaseModel | dict[str, Any] | None = None,
        run_timeout_seconds: int | None = None,
        idempotency_key: str | None = None,
        wait_seconds: float | None = None,
    ) -> tuple[ExecutionHandle, dict[str, Any] | None]:
        """`invoke`, and with `wait_seconds` the execution too if it became final within that
        time (in the same request: what makes `Workflow.run` one round trip)."""
        body = protocol.SubmitRequest(
            payload=codec.to_json_value(payload),
            queue_name=queue_name,
            queue_concurrency_limit=queue_concurrency_limit,
            concurrency_key=concurrency_key,
            deployment_id=self.deployment_id,
            session_id=session_id,
            user_id=user_id,
            initial_state=codec.to_json_value(initial_state),
            run_timeout_seconds=run_timeout_seconds,
            idempotency_key=idempotency_key,
        )
        path = f"{protocol.API_PREFIX}/workflows/{workflow_id}/run"
        params = None if wait_seconds is None else {"wait_seconds": f"{max(0.0, wait_seconds):.3f}"}
        content = codec.dumps(body.model_dump(exclude_none=True))
        if idempotency_key:
            # Safe to send again: the key names one execution whatever reached the server.
            response = await self._ride_out_outages("POST", path, params, content)
            if response.status_code >= 400:
                raise api_error(response)
        else:
            response = await self.request("POST", path, content=content, params=params)
        data = protocol.SubmitResponse.model_validate_json(response.content)
        handle = ExecutionHandle(
            id=data.execution_id,
            workflow_id=data.workflow_id,
            created_at=data.created_at,
            root_workflow_id=workflow_id,
            root_execution_id=data.root_execution_id,
            session_id=session_id,
            user_id=user_id,
        )
        final: dict[str, Any] | None = None
        if data.execution is not None:  # as GET .../wait would have returned it
            final = codec.loads(response.content)["execution"]
        return handle, final

    async def batch_invoke(
        self,
        workflows: list[BatchWorkflowInput],
        session_id: str | None = None,
        user_id: str | None = None,
    ) -> list[ExecutionHandle]:
        """Start many executions in one request (all or none)."""
        from polos.sdk.workflow import get_workflow

        items = []
        for w in workflows:
            wf = get_workflow(w.id)
            items.append(
                protocol.BatchSubmitItem(
                    workflow_id=w.id,
                    payload=codec.to_json_value(w.payload),
                    queue_name=w.queue or (wf.queue_name if wf else None),
                    queue_concurrency_limit=wf.queue_concurrency_limit if wf else None,
                    concurrency_key=w.concurrency_key,
                    initial_state=codec.to_json_value(w.initial_state),
                    run_timeout_seconds=w.run_timeout_seconds,
                )
            )
        if not items:
            return []
        body = protocol.BatchSubmitRequest(
            workflows=items,
            deployment_id=self.deployment_id,
            session_id=session_id,
            user_id=user_id,
        )
        response = await self.request(
            "POST",
            f"{protocol.API_PREFIX}/workflows/batch_run",
            content=codec.dumps(body.model_dump(exclude_none=True)),
        )
        data = protocol.BatchSubmitResponse.model_validate_json(response.content)
        return [
            ExecutionHandle(
                id=e.execution_id,
                workflow_id=e.workflow_id,
                created_at=e.created_at,
                root_workflow_id=e.workflow_id,
                root_execution_id=e.root_execution_id,
                session_id=session_id,
                user_id=user_id,
            )
            for e in data.executions
        ]

    async def resume(
        self,
        suspend_workflow_id: str,
        suspend_execution_id: str,
        suspend_step_key: str,
        data: Any,
    ) -> None:
        """Resume `ctx.step.suspend(suspend_step_key)` of that execution (the one that
        suspended) with `data`. A resume sent before the suspension registered is kept."""
        from polos.sdk.events import publish

        await publish(
            self,
            f"workflow/{suspend_workflow_id}/{suspend_execution_id}",
            {"event_type": f"resume_{suspend_step_key}", "data": codec.to_json_value(data)},
        )

    async def cancel_execution(self, execution_id: str) -> bool:
        """Cancel the execution and its unfinished descendants. True when the execution
        exists (and is now final); False when it does not."""
        try:
            response = await self.request(
                "POST", f"{protocol.API_PREFIX}/executions/{execution_id}/cancel"
            )
        except PolosApiError as exc:
            if exc.status == 404:
                return False
            raise
        return bool(protocol.CancelResponse.model_validate_json(response.content).status)

    async def get_execution(self, execution_id: str) -> dict[str, Any]:
        """The execution as a plain dict (`result` is the stored JSON)."""
        response = await self.request("GET", f"{protocol.API_PREFIX}/executions/{execution_id}")
        data: dict[str, Any] = response.json()
        return data

    async def wait_for_execution(
        self, execution_id: str, timeout: float | None = 600.0
    ) -> dict[str, Any]:
        """The execution once it is final; WorkflowTimeoutError after `timeout` seconds."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            remaining = (
                protocol.MAX_LONG_POLL_SECONDS
                if deadline is None
                else min(protocol.MAX_LONG_POLL_SECONDS, deadline - time.monotonic())
            )
            response = await self.request(
                "GET",
                f"{protocol.API_PREFIX}/executions/{execution_id}/wait",
                params={"timeout": f"{max(0.0, remaining):.3f}"},
            )
            data: dict[str, Any] = response.json()
            if data.get("status") in _FINAL:
                return data
            if deadline is not None and time.monotonic() >= deadline:
                raise WorkflowTimeoutError(execution_id, timeout)

    def rebuild_result(self, data: dict[str, Any], workflow: Workflow | None = None) -> Any:
        from polos.sdk.workflow import get_workflow

        wf = workflow or get_workflow(str(data.get("workflow_id")))
        schema = data.get("output_schema_name")
        if wf is not None:
            return wf.decode_result(data.get("result"), schema)
        return codec.rebuild(data.get("result"), None, schema)

    async def wait_for_result(
        self, execution_id: str, timeout: float | None = 600.0, workflow: Workflow | None = None
    ) -> Any:
        data = await self.wait_for_execution(execution_id, timeout)
        return self.outcome(data, workflow)

    def outcome(self, data: dict[str, Any], workflow: Workflow | None = None) -> Any:
        """A final execution's result, rebuilt; raises WorkflowFailedError if it failed or
        was cancelled."""
        execution_id = str(data.get("id") or data.get("execution_id"))
        status = data.get("status")
        if status == "completed":
            return self.rebuild_result(data, workflow)
        error = data.get("error") or {}
        message = error.get("message") if isinstance(error, dict) else str(error)
        error_type = error.get("type") if isinstance(error, dict) else None
        if status == "cancelled":
            raise WorkflowFailedError(
                f"Workflow execution cancelled: {message or execution_id}",
                execution_id=execution_id,
                error_type=error_type,
                status="cancelled",
            )
        raise WorkflowFailedError(
            f"Workflow execution failed: {message}",
            execution_id=execution_id,
            error_type=error_type,
        )


def api_error(response: Response) -> Exception:
    code, message = "http_error", response.text[:500]
    try:
        detail = response.json().get("error", {})
        code = detail.get("code", code)
        message = detail.get("message", message)
    except Exception:
        pass
    if code == "workflow_not_found":
        workflow_id = None
        parts = response.path.split("?")[0].split("/")
        if "workflows" in parts and parts[-1] == "run":
            workflow_id = parts[-2]
        return WorkflowNotFoundError(message, workflow_id)
    return PolosApiError(response.status_code, code, message)


async def batch_invoke(
    client: ClientLike,
    workflows: list[BatchWorkflowInput],
    session_id: str | None = None,
    user_id: str | None = None,
) -> list[ExecutionHandle]:
    """Start many executions at once from outside a workflow (inside one, use
    `ctx.step.batch_invoke`)."""
    from polos.sdk.context import current_attempt
    from polos.sdk.errors import ClientCallInWorkflowError

    if current_attempt() is not None:
        raise ClientCallInWorkflowError(
            "batch_invoke() cannot be called from within a workflow: use ctx.step.batch_invoke"
        )
    return await as_client(client).batch_invoke(workflows, session_id=session_id, user_id=user_id)
