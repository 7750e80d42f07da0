"""`@workflow`, the `Workflow` object and the process-wide registry of workflows."""

from __future__ import annotations

import inspect
import logging
import re
import time
import typing
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any, overload

from pydantic import BaseModel, ValidationError

from polos import codec
from polos.sdk.context import current_attempt
from polos.sdk.errors import (
    ClientCallInWorkflowError,
    PayloadValidationError,
    WorkflowTimeoutError,
)
from polos.sdk.hooks import normalize
from polos.sdk.queue import Queue

if TYPE_CHECKING:
    from polos.sdk.client import ClientLike, ExecutionHandle, PolosClient

log = logging.getLogger("polos.workflow")

# How long `Workflow.run` waits inside its start request before it waits with GET .../wait.
RUN_FIRST_WAIT_SECONDS = 1.0

WorkflowFunc = Callable[..., Coroutine[Any, Any, Any]]

# Workflow IDs go into URL paths: keep them to a safe alphabet.
_ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:\-]{0,254}$")
_UNSET: Any = object()

_registry: dict[str, Workflow] = {}


def _check_id(workflow_id: str) -> None:
    if not isinstance(workflow_id, str) or not _ID_PATTERN.match(workflow_id):
        raise ValueError(
            f"invalid workflow id {workflow_id!r}: use 1-255 letters, digits, '_', '-', '.' "
            "or ':', starting with a letter or digit"
        )


def _queue_settings(workflow_id: str, queue: Any) -> tuple[str, int | None]:
    if queue is None:
        return workflow_id, None
    if isinstance(queue, str):
        return queue, None
    if isinstance(queue, Queue):
        return queue.name, queue.concurrency_limit
    if isinstance(queue, dict):
        unknown = set(queue) - {"name", "concurrency_limit"}
        if unknown:
            raise ValueError(f"workflow {workflow_id!r}: unknown queue keys {sorted(unknown)}")
        q = Queue(queue.get("name") or workflow_id, queue.get("concurrency_limit"))
        return q.name, q.concurrency_limit
    raise ValueError(
        f"workflow {workflow_id!r}: queue must be a str, a Queue or a dict, not "
        f"{type(queue).__name__}"
    )


class Workflow:
    """A registered workflow: an `async def f(ctx, payload)` with its settings."""

    def __init__(
        self,
        id: str,
        func: WorkflowFunc,
        description: str | None = None,
        workflow_type: str = "workflow",
        queue_name: str | None = None,
        queue_concurrency_limit: int | None = None,
        trigger_on_event: str | None = None,
        batch_size: int = 1,
        batch_timeout_seconds: int | None = None,
        schedule: bool | str | dict[str, Any] | None = None,
        on_start: Any = None,
        on_end: Any = None,
        payload_schema_class: type[BaseModel] | None = None,
        output_schema: type[BaseModel] | None = None,
        state_schema: type[BaseModel] | None = None,
    ) -> None:
        _check_id(id)
        if not inspect.iscoroutinefunction(func):
            raise TypeError(
                f"workflow {id!r}: {getattr(func, '__name__', func)!r} must be an `async def` "
                "function (steps are awaited: `await ctx.step.run(...)`)"
            )
        params = list(inspect.signature(func).parameters.values())
        if len(params) not in (1, 2) or any(
            p.kind not in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) for p in params
        ):
            raise TypeError(
                f"workflow {id!r}: the function must take (ctx) or (ctx, payload), "
                f"not {inspect.signature(func)}"
            )
        if trigger_on_event and schedule:
            raise ValueError(f"workflow {id!r}: cannot be both scheduled and event-triggered")
        if trigger_on_event is not None and not isinstance(trigger_on_event, str):
            raise TypeError(f"workflow {id!r}: trigger_on_event must be a topic (str)")
        if not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"workflow {id!r}: batch_size must be a positive int")
        if state_schema is not None and not (
            isinstance(state_schema, type) and issubclass(state_schema, BaseModel)
        ):
            raise TypeError(f"workflow {id!r}: state_schema must be a pydantic model class")
        self.id = id
        self.func = func
        self.description = description
        self.workflow_type = workflow_type
        self.queue_name = queue_name or id
        self.queue_concurrency_limit = queue_concurrency_limit
        self.trigger_on_event = trigger_on_event
        self.batch_size = batch_size
        self.batch_timeout_seconds = batch_timeout_seconds
        self.schedule = schedule
        self.schedule_spec = _schedule_spec(id, schedule)
        self.is_schedulable = bool(schedule)
        if self.is_schedulable and queue_name is not None and queue_name != id:
            raise ValueError(f"workflow {id!r}: a scheduled workflow cannot set a queue")
        self.on_start = normalize(on_start, f"workflow {id!r} on_start")
        self.on_end = normalize(on_end, f"workflow {id!r} on_end")
        self.state_schema = state_schema
        self.output_schema = output_schema
        self.is_async = True
        self.has_payload_param = len(params) >= 2
        self._payload_param = params[1].name if self.has_payload_param else None
        self._explicit_payload_type = payload_schema_class
        self._hints: dict[str, Any] | None = None

    def __repr__(self) -> str:
        return f"Workflow(id={self.id!r}, queue={self.queue_name!r})"

    # -- types -------------------------------------------------------------------------

    def _type_hints(self) -> dict[str, Any]:
        """Annotations, resolved lazily: under `from __future__ import annotations` a model
        defined after the function only exists once its module finished importing."""
        if self._hints is None:
            try:
                self._hints = typing.get_type_hints(self.func)
            except Exception as exc:
                raise TypeError(
                    f"workflow {self.id!r}: cannot resolve the annotations of "
                    f"{self.func.__qualname__}: {exc}"
                ) from exc
        return self._hints

    @property
    def payload_type(self) -> Any:
        """The payload's annotation, or None when it has none (the JSON value is passed as is)."""
        if self._explicit_payload_type is not None:
            return self._explicit_payload_type
        if self._payload_param is None:
            return None
        return self._type_hints().get(self._payload_param)

    @property
    def return_type(self) -> Any:
        if self.output_schema is not None:
            return self.output_schema
        hint = self._type_hints().get("return")
        if hint in (None, type(None), Any):
            return None
        return hint

    def decode_payload(self, value: Any) -> Any:
        annotation = self.payload_type
        if annotation is None or annotation is Any:
            return value
        try:
            return codec.adapter_for(annotation).validate_python(value)
        except ValidationError as exc:
            raise PayloadValidationError(
                f"invalid payload for workflow {self.id!r}: {exc}"
            ) from None

    def decode_result(self, value: Any, schema: str | None) -> Any:
        """Rebuild a stored result of this workflow (falls back to the stored class name)."""
        try:
            annotation = self.return_type
        except TypeError:
            annotation = None
        if annotation is not None:
            try:
                return codec.rebuild(value, annotation)
            except ValidationError:
                log.warning("result of %r does not fit its return annotation", self.id)
        return codec.rebuild(value, None, schema)

    # -- client side -------------------------------------------------------------------

    def _refuse_inside_workflow(self, what: str) -> None:
        if current_attempt() is not None:
            raise ClientCallInWorkflowError(
                f"workflow.{what}() cannot be called from within a workflow: use "
                f"ctx.step.invoke_and_wait(...) or ctx.step.invoke(...) to start {self.id!r}"
            )

    def _payload_for_submit(self, payload: Any) -> Any:
        if not self.has_payload_param and payload is not None:
            raise ValueError(f"workflow {self.id!r} takes no payload, but one was given")
        return payload

    async def invoke(
        self,
        client: ClientLike,
        payload: Any = None,
        queue: str | None = None,
        concurrency_key: str | None = None,
        session_id: str | None = None,
        user_id: str | None = None,
        initial_state: BaseModel | dict[str, Any] | None = None,
        run_timeout_seconds: int | None = None,
        idempotency_key: str | None = None,
    ) -> ExecutionHandle:
        """Start an execution and return its handle at once."""
        from polos.sdk.client import as_client

        self._refuse_inside_workflow("invoke")
        handle, _ = await self._start(
            as_client(client),
            payload,
            queue,
            concurrency_key,
            session_id,
            user_id,
            initial_state,
            run_timeout_seconds,
            idempotency_key,
            wait_seconds=None,
        )
        return handle

    async def _start(
        self,
        c: PolosClient,
        payload: Any,
        queue: str | None,
        concurrency_key: str | None,
        session_id: str | None,
        user_id: str | None,
        initial_state: BaseModel | dict[str, Any] | None,
        run_timeout_seconds: int | None,
        idempotency_key: str | None,
        wait_seconds: float | None,
    ) -> tuple[ExecutionHandle, dict[str, Any] | None]:
        """The start request of `invoke` and `run`, with this workflow's queue defaults."""
        return await c.start(
            self.id,
            self._payload_for_submit(payload),
            queue_name=queue or self.queue_name,
            queue_concurrency_limit=self.queue_concurrency_limit,
            concurrency_key=concurrency_key,
            session_id=session_id,
            user_id=user_id,
            initial_state=initial_state,
            run_timeout_seconds=run_timeout_seconds,
            idempotency_key=idempotency_key,
            wait_seconds=wait_seconds,
        )

    async def run(
        self,
        client: ClientLike,
        payload: Any = None,
        queue: str | None = None,
        concurrency_key: str | None = None,
        session_id: str | None = None,
        user_id: str | None = None,
        timeout: float | None = 600.0,
        initial_state: BaseModel | dict[str, Any] | None = None,
        run_timeout_seconds: int | None = None,
        idempotency_key: str | None = None,
    ) -> Any:
        """Start an execution and wait for its result, rebuilt into the return type.

        `timeout` bounds how long this call waits (`WorkflowTimeoutError`, None waits for
        ever); it does not limit the execution, `run_timeout_seconds` does. A failed execution
        raises `WorkflowFailedError` carrying the stored error.
        """
        from polos.sdk.client import as_client

        self._refuse_inside_workflow("run")
        c = as_client(client)
        started = time.monotonic()
        # Start and wait in one request; a longer run is waited for with GET .../wait. The
        # first wait is short because a start without an idempotency key is not re-sent: a
        # connection lost while it waits would lose the handle, not the execution.
        handle, final = await self._start(
            c,
            payload,
            queue,
            concurrency_key,
            session_id,
            user_id,
            initial_state,
            run_timeout_seconds,
            idempotency_key,
            wait_seconds=RUN_FIRST_WAIT_SECONDS
            if timeout is None
            else min(RUN_FIRST_WAIT_SECONDS, timeout),
        )
        if final is None:
            spent = time.monotonic() - started
            remaining = None if timeout is None else max(0.0, timeout - spent)
            try:
                final = await c.wait_for_execution(handle.id, remaining)
            except WorkflowTimeoutError:
                raise WorkflowTimeoutError(handle.id, timeout) from None
        return c.outcome(final, workflow=self)


def _schedule_spec(workflow_id: str, schedule: Any) -> dict[str, Any] | None:
    """The default schedule a worker registers for the workflow (None: none)."""
    if schedule is None or schedule is False or schedule is True:
        return None
    if isinstance(schedule, str):
        return {"cron": schedule, "timezone": "UTC", "key": "global"}
    if isinstance(schedule, dict):
        if "cron" not in schedule:
            raise ValueError(f"workflow {workflow_id!r}: a schedule dict needs a 'cron'")
        unknown = set(schedule) - {"cron", "timezone", "key", "catch_up_seconds"}
        if unknown:
            raise ValueError(f"workflow {workflow_id!r}: unknown schedule keys {sorted(unknown)}")
        return {"timezone": "UTC", "key": "global", **schedule}
    raise TypeError(f"workflow {workflow_id!r}: schedule must be a cron string, a dict or a bool")


def register(wf: Workflow) -> Workflow:
    existing = _registry.get(wf.id)
    if existing is not None and existing.func is not wf.func:
        same_place = (existing.func.__module__, existing.func.__qualname__) == (
            wf.func.__module__,
            wf.func.__qualname__,
        )
        if not same_place:  # a re-import of the same module replaces quietly
            raise ValueError(
                f"workflow id {wf.id!r} is already used by "
                f"{existing.func.__module__}.{existing.func.__qualname__}"
            )
    _registry[wf.id] = wf
    return wf


@overload
def workflow(id: WorkflowFunc) -> Workflow: ...


@overload
def workflow(
    id: str | None = None,
    description: str | None = None,
    queue: str | Queue | dict[str, Any] | None = None,
    trigger_on_event: str | None = None,
    batch_size: int = 1,
    batch_timeout_seconds: int | None = None,
    schedule: bool | str | dict[str, Any] | None = None,
    on_start: Any = None,
    on_end: Any = None,
    state_schema: type[BaseModel] | None = None,
) -> Callable[[WorkflowFunc], Workflow]: ...


def workflow(
    id: Any = None,
    description: str | None = None,
    queue: str | Queue | dict[str, Any] | None = None,
    trigger_on_event: str | None = None,
    batch_size: int = 1,
    batch_timeout_seconds: int | None = None,
    schedule: bool | str | dict[str, Any] | None = None,
    on_start: Any = None,
    on_end: Any = None,
    state_schema: type[BaseModel] | None = None,
) -> Any:
    """Declare a workflow: `@workflow` or `@workflow(id="...", queue=...)`."""

    def decorate(func: WorkflowFunc) -> Workflow:
        workflow_id = id if isinstance(id, str) else func.__name__
        queue_name, limit = _queue_settings(workflow_id, queue)
        wf = Workflow(
            workflow_id,
            func,
            description=description,
            queue_name=queue_name,
            queue_concurrency_limit=limit,
            trigger_on_event=trigger_on_event,
            batch_size=batch_size,
            batch_timeout_seconds=batch_timeout_seconds,
            schedule=schedule,
            on_start=on_start,
            on_end=on_end,
            state_schema=state_schema,
        )
        return register(wf)

    if callable(id) and not isinstance(id, str):
        func, id = id, None
        return decorate(func)
    return decorate


def get_workflow(workflow_id: str) -> Workflow | None:
    return _registry.get(workflow_id)


def get_all_workflows() -> dict[str, Workflow]:
    return dict(_registry)
