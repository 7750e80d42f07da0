"""`Polos`: a client and an in-process worker in one object.

    async with Polos() as polos:
        result = await my_workflow.run(polos, payload)

The worker serves every workflow registered when `start()` runs. `port` and the other
push-dispatch arguments of upstream are accepted and ignored (with a warning): the worker pulls.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from typing import Any

from pydantic import BaseModel

from polos.sdk.client import ExecutionHandle, PolosClient
from polos.types.types import BatchWorkflowInput
from polos.worker.worker import Worker

log = logging.getLogger("polos")
_UNSET: Any = object()


class Polos:
    def __init__(
        self,
        project_id: str | None = None,
        api_url: str | None = None,
        api_key: str | None = None,
        deployment_id: str | None = None,
        port: Any = _UNSET,
        max_concurrent_workflows: int | None = None,
        channels: Any = None,
        log_file: str | None = None,
    ) -> None:
        if port is not _UNSET:
            log.warning("Polos(port=...) is ignored: the worker pulls work and opens no port")
        self.client = PolosClient(
            api_url=api_url, api_key=api_key, project_id=project_id, deployment_id=deployment_id
        )
        self.worker = Worker(
            self.client,
            deployment_id=deployment_id,
            max_concurrent_workflows=max_concurrent_workflows,
            channels=channels,
            log_file=log_file,
        )

    # -- configuration -----------------------------------------------------------------

    @property
    def project_id(self) -> str:
        return self.client.project_id

    @property
    def api_url(self) -> str:
        return self.client.api_url

    @property
    def api_key(self) -> str | None:
        return self.client.api_key

    @property
    def deployment_id(self) -> str | None:
        return self.worker.deployment_id

    # -- lifecycle ---------------------------------------------------------------------

    async def start(self) -> None:
        await self.worker.start()

    async def stop(self) -> None:
        await self.worker.shutdown()
        await self.client.close()

    async def serve(self) -> None:
        """Start, then run until SIGINT/SIGTERM."""
        await self.start()
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                loop.add_signal_handler(sig, stop.set)
        try:
            await stop.wait()
        finally:
            await self.stop()

    async def __aenter__(self) -> Polos:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # -- client methods ----------------------------------------------------------------

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
        return await self.client.invoke(
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

    async def batch_invoke(
        self,
        workflows: list[BatchWorkflowInput],
        session_id: str | None = None,
        user_id: str | None = None,
    ) -> list[ExecutionHandle]:
        return await self.client.batch_invoke(workflows, session_id=session_id, user_id=user_id)

    async def resume(
        self,
        suspend_workflow_id: str,
        suspend_execution_id: str,
        suspend_step_key: str,
        data: Any,
    ) -> None:
        await self.client.resume(suspend_workflow_id, suspend_execution_id, suspend_step_key, data)

    async def cancel_execution(self, execution_id: str) -> bool:
        return await self.client.cancel_execution(execution_id)

    async def get_execution(self, execution_id: str) -> dict[str, Any]:
        return await self.client.get_execution(execution_id)

    async def wait_for_execution(
        self, execution_id: str, timeout: float | None = 600.0
    ) -> dict[str, Any]:
        return await self.client.wait_for_execution(execution_id, timeout)
