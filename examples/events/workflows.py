"""Events: workflows started by events, workflows that publish events and wait for them.

- `on_order_created` (`trigger_on_event="orders/created"`): the server starts one execution
  per event published on the topic; the payload is that event (an `EventPayload`).
- `on_user_signup`: the same for `users/signup`.
- `batch_processor` (`batch_size=10`, `batch_timeout_seconds=5`): one execution per 10
  events; fewer events are handed over once the oldest has waited 5 seconds. The payload is
  a `BatchEventPayload` (`.events`).
- `event_publisher`: publishes an event with `ctx.step.publish_event` (exactly once, even if
  the execution replays).
- `event_waiter`: `ctx.step.wait_for_event(topic, timeout)` suspends the execution (no worker
  slot held) until the next event on the topic; after `timeout` seconds the step fails.

The triggered workflows report what they did by publishing on a topic of their own
(`orders/processed`, `users/onboarded`, `data/processed`), which main.py follows with
`events.stream_topic`.
"""

from pydantic import BaseModel

from polos import BatchEventPayload, EventPayload, WorkflowContext, workflow

# ============================================================================ models


class OrderProcessedResult(BaseModel):
    order_id: str
    status: str


class UserOnboardedResult(BaseModel):
    user_id: str
    onboarding: str


class BatchProcessResult(BaseModel):
    batch_size: int
    processed: list[dict]


class PublishEventPayload(BaseModel):
    topic: str = "orders/created"
    event_data: dict = {}
    event_type: str = "created"


class EventPublishedResult(BaseModel):
    published: bool
    topic: str
    event_type: str


class WaitForEventPayload(BaseModel):
    topic: str = "notifications"
    timeout: int = 3600


class EventReceivedResult(BaseModel):
    received: bool
    event_topic: str
    event_type: str | None
    event_data: dict


# ============================================================================ triggered


@workflow(id="on_order_created", trigger_on_event="orders/created")
async def on_order_created(ctx: WorkflowContext, payload: EventPayload) -> OrderProcessedResult:
    """One execution per event on `orders/created`; `payload.data` is the event's data."""
    order_id = payload.data.get("order_id", "unknown")
    await ctx.step.run("validate_order", lambda: {"valid": True, "order_id": order_id})
    await ctx.step.run("reserve_inventory", lambda: {"reserved": True})
    await ctx.step.run("send_confirmation", lambda: {"sent": True})
    await ctx.step.publish_event(
        "announce",
        topic="orders/processed",
        data={
            "order_id": order_id,
            "execution_id": ctx.execution_id,
            "event_seq": payload.sequence_id,
        },
        event_type="order_processed",
    )
    return OrderProcessedResult(order_id=order_id, status="processed")


@workflow(id="on_user_signup", trigger_on_event="users/signup")
async def on_user_signup(ctx: WorkflowContext, payload: EventPayload) -> UserOnboardedResult:
    user_id = payload.data.get("user_id", "unknown")
    await ctx.step.run("send_welcome_email", lambda: {"sent": True, "user_id": user_id})
    await ctx.step.run("create_user_settings", lambda: {"created": True})
    await ctx.step.run("track_signup", lambda: {"tracked": True})
    await ctx.step.publish_event(
        "announce",
        topic="users/onboarded",
        data={"user_id": user_id, "execution_id": ctx.execution_id},
        event_type="user_onboarded",
    )
    return UserOnboardedResult(user_id=user_id, onboarding="complete")


def process_event_data(data: dict) -> dict:
    return {"processed": True, "data": data}


@workflow(
    id="batch_processor",
    trigger_on_event="data/updates",
    batch_size=10,
    batch_timeout_seconds=5,
)
async def batch_processor(ctx: WorkflowContext, payload: BatchEventPayload) -> BatchProcessResult:
    """Up to 10 events per execution; a partial batch after 5 seconds."""
    processed = []
    for event in payload.events:
        result = await ctx.step.run(
            f"process_event_{event.sequence_id}", process_event_data, event.data
        )
        processed.append(result)
    await ctx.step.publish_event(
        "announce",
        topic="data/processed",
        data={
            "batch_size": len(payload.events),
            "records": [e.data.get("record_id") for e in payload.events],
            "execution_id": ctx.execution_id,
        },
        event_type="batch_processed",
    )
    return BatchProcessResult(batch_size=len(payload.events), processed=processed)


# ============================================================================ publish / wait


@workflow(id="event_publisher")
async def event_publisher(
    ctx: WorkflowContext, payload: PublishEventPayload
) -> EventPublishedResult:
    """Publishes one event; on `orders/created` it starts `on_order_created`."""
    await ctx.step.publish_event(
        "publish_event",
        topic=payload.topic,
        data=payload.event_data,
        event_type=payload.event_type,
    )
    return EventPublishedResult(published=True, topic=payload.topic, event_type=payload.event_type)


@workflow(id="event_waiter")
async def event_waiter(ctx: WorkflowContext, payload: WaitForEventPayload) -> EventReceivedResult:
    """Waits for the next event on `payload.topic` (published after this execution started,
    even if it comes before the wait is registered). No event within `timeout` seconds: the
    step raises StepExecutionError, which fails the execution."""
    event = await ctx.step.wait_for_event(
        "wait_for_notification", topic=payload.topic, timeout=payload.timeout
    )
    return EventReceivedResult(
        received=True,
        event_topic=event.topic,
        event_type=event.event_type,
        event_data=event.data,
    )
