"""Workflow basics: the `@workflow` decorator and the durable step primitives.

A workflow is an `async def f(ctx, payload)`. Everything it does through `ctx.step` is
recorded under a step key; when the execution replays (after a wait, a crash, a retry), a
recorded step returns its recorded value instead of running again. Code outside steps runs
again on every replay, so it must be deterministic.

- `simple_workflow`: `@workflow` used bare (the ID is the function's name), one lambda step.
- `process_order` (ID `order_processor`): a custom ID, plain (sync) functions as steps,
  `ctx.step.uuid`.
- `data_pipeline`: custom retry settings, a step returning a model.
- `timed_workflow`: `ctx.step.now` and a short `ctx.step.wait_for`.
- `random_workflow`: `ctx.step.random` and `ctx.step.uuid`, the same on every replay.
- `validate_and_enrich`: a child workflow.
- `parent_workflow`: `invoke_and_wait` in a loop, one indexed key per child.
- `orchestrator_workflow`: children called one after the other, a lambda step with an argument.
"""

from pydantic import BaseModel

from polos import WorkflowContext, workflow

# ============================================================================ models


class SimplePayload(BaseModel):
    name: str = "World"


class SimpleResult(BaseModel):
    message: str


class OrderPayload(BaseModel):
    order_id: str
    customer_email: str
    items: list[str]
    total_amount: float


class OrderResult(BaseModel):
    order_id: str
    status: str
    confirmation_number: str


class DataPipelinePayload(BaseModel):
    data: list[str | int | float]


class AggregatedData(BaseModel):
    count: int
    items: list[str | int | float]


class DataPipelineResult(BaseModel):
    result: AggregatedData


class TimedPayload(BaseModel):
    cooldown_seconds: float = 2.0


class TimedResult(BaseModel):
    status: str
    start_time: int
    end_time: int
    duration_ms: int


class RandomPayload(BaseModel):
    pass


class RandomResult(BaseModel):
    random_value: float
    random_id: str
    coin_flip: str


class ItemData(BaseModel):
    id: int
    name: str
    value: int | float


class ValidateEnrichPayload(BaseModel):
    data: dict
    validation_type: str = "basic"


class ValidateEnrichResult(BaseModel):
    valid: bool
    original: dict | None = None
    enriched: dict | None = None
    timestamp: int | None = None
    error: str | None = None


class PreparationStatus(BaseModel):
    status: str
    item_count: int


class ParentPayload(BaseModel):
    items: list[ItemData]


class ParentResult(BaseModel):
    preparation: PreparationStatus
    total_items: int
    valid_items: int
    results: list[ValidateEnrichResult]


class OrchestratorPayload(BaseModel):
    data: dict


class ProcessedData(BaseModel):
    processed: bool
    data: dict
    processing_applied: list[str]


class OrchestratorResult(BaseModel):
    status: str
    output_id: str | None = None
    stage: str | None = None
    error: str | None = None
    enrichment: ValidateEnrichResult | None = None
    processed: ProcessedData | None = None


# ============================================================================ simple workflow


@workflow
async def simple_workflow(ctx: WorkflowContext, payload: SimplePayload) -> SimpleResult:
    """`@workflow` without arguments: the workflow ID is the function's name."""
    greeting = await ctx.step.run(
        "generate_greeting",  # the step key: unique within the execution
        lambda: f"Hello, {payload.name}!",
    )
    return SimpleResult(message=greeting)


# ============================================================================ order processing


def validate_order_data(payload: OrderPayload) -> bool:
    if not payload.items:
        raise ValueError("Order must have at least one item")
    if payload.total_amount <= 0:
        raise ValueError("Total amount must be positive")
    return True


def reserve_inventory(items: list[str]) -> dict:
    return {"reserved": items, "status": "reserved"}


def process_payment(amount: float) -> dict:
    return {"amount": amount, "status": "paid"}


def send_confirmation_email(email: str, confirmation: str) -> dict:
    return {"email": email, "confirmation": confirmation, "sent": True}


@workflow(id="order_processor")
async def process_order(ctx: WorkflowContext, payload: OrderPayload) -> OrderResult:
    """A custom workflow ID; plain functions as steps (they run in a thread)."""
    await ctx.step.run("validate_order", validate_order_data, payload)
    await ctx.step.run("reserve_inventory", reserve_inventory, payload.items)
    await ctx.step.run("process_payment", process_payment, payload.total_amount)

    # A random UUID, recorded: a replay gets the same confirmation number.
    confirmation = await ctx.step.uuid("confirmation_number")

    await ctx.step.run(
        "send_confirmation", send_confirmation_email, payload.customer_email, confirmation
    )
    return OrderResult(
        order_id=payload.order_id, status="completed", confirmation_number=confirmation
    )


# ============================================================================ data pipeline


def process_data(data: list) -> list:
    return [item.upper() if isinstance(item, str) else item * 2 for item in data]


def aggregate(data: list) -> AggregatedData:
    return AggregatedData(count=len(data), items=data)


@workflow(id="data_pipeline")
async def data_pipeline(ctx: WorkflowContext, payload: DataPipelinePayload) -> DataPipelineResult:
    """Custom retry settings, and a step that returns a model."""
    processed = await ctx.step.run(
        "process_data",
        process_data,
        payload.data,
        max_retries=5,  # more retries for an unreliable operation
        base_delay=2.0,  # first retry after about 2 s...
        max_delay=30.0,  # ...doubling each time, at most 30 s
    )
    # A step may return a pydantic model: it is stored as JSON with its class name, and the
    # step returns the model (on this run and on every replay).
    aggregated = await ctx.step.run("aggregate_results", aggregate, processed)
    return DataPipelineResult(result=aggregated)


# ============================================================================ time


@workflow(id="timed_workflow")
async def timed_workflow(ctx: WorkflowContext, payload: TimedPayload) -> TimedResult:
    """`ctx.step.now` records the time (milliseconds), `wait_for` waits durably."""
    start_time = await ctx.step.now("start_time")
    await ctx.step.run("initial_work", lambda: {"status": "processing"})

    # Up to 10 s (POLOS_WAIT_THRESHOLD_SECONDS) the worker sleeps in place; a longer wait
    # suspends the execution, which then holds no worker slot until a durable timer fires.
    await ctx.step.wait_for("cooldown", seconds=payload.cooldown_seconds)

    final_status = await ctx.step.run("final_work", lambda: "completed")
    end_time = await ctx.step.now("end_time")
    return TimedResult(
        status=final_status,
        start_time=start_time,
        end_time=end_time,
        duration_ms=end_time - start_time,
    )


# ============================================================================ random


@workflow(id="random_workflow")
async def random_workflow(ctx: WorkflowContext, payload: RandomPayload) -> RandomResult:
    """Random values recorded as steps: the same on every replay."""
    random_value = await ctx.step.random("random_value")
    random_id = await ctx.step.uuid("random_id")
    coin_flip = "heads" if random_value > 0.5 else "tails"
    return RandomResult(random_value=random_value, random_id=random_id, coin_flip=coin_flip)


# ============================================================================ child workflows


def validate_data(data: dict, validation_type: str) -> bool:
    if validation_type == "strict":
        return bool(data and all(v is not None for v in data.values()))
    return bool(data)


def enrich_data(data: dict) -> dict:
    return {**data, "_enriched": True, "_source": "validate_and_enrich_workflow"}


@workflow(id="validate_and_enrich")
async def validate_and_enrich(
    ctx: WorkflowContext, payload: ValidateEnrichPayload
) -> ValidateEnrichResult:
    """A child workflow: validates and enriches one record."""
    is_valid = await ctx.step.run(
        "validate_data", validate_data, payload.data, payload.validation_type
    )
    if not is_valid:
        return ValidateEnrichResult(valid=False, original=payload.data, error="Validation failed")

    enriched = await ctx.step.run("enrich_data", enrich_data, payload.data)
    timestamp = await ctx.step.now("enrichment_timestamp")
    return ValidateEnrichResult(
        valid=True, original=payload.data, enriched=enriched, timestamp=timestamp
    )


@workflow(id="parent_workflow")
async def parent_workflow(ctx: WorkflowContext, payload: ParentPayload) -> ParentResult:
    """One child per item with `invoke_and_wait`; the parent holds no worker slot while a
    child runs."""
    preparation = await ctx.step.run(
        "prepare_data",
        lambda: PreparationStatus(status="prepared", item_count=len(payload.items)),
    )

    results: list[ValidateEnrichResult] = []
    for i, item in enumerate(payload.items):
        # A step key is unique within an execution: in a loop, put the index in it.
        child_result = await ctx.step.invoke_and_wait(
            f"validate_item_{i}",
            validate_and_enrich,
            ValidateEnrichPayload(data=item.model_dump(), validation_type="basic"),
        )
        # Already a ValidateEnrichResult (rebuilt from the child's return annotation).
        results.append(child_result)

    return ParentResult(
        preparation=preparation,
        total_items=len(payload.items),
        valid_items=sum(1 for r in results if r.valid),
        results=results,
    )


@workflow(id="orchestrator_workflow")
async def orchestrator_workflow(
    ctx: WorkflowContext, payload: OrchestratorPayload
) -> OrchestratorResult:
    """Children called one after the other, each result feeding the next stage."""
    enrichment_result = await ctx.step.invoke_and_wait(
        "enrich_data",
        validate_and_enrich,
        ValidateEnrichPayload(data=payload.data, validation_type="strict"),
    )
    if not enrichment_result.valid:
        return OrchestratorResult(
            status="failed", stage="enrichment", error=enrichment_result.error
        )

    processed = await ctx.step.run(
        "process_enriched",
        lambda enriched: ProcessedData(
            processed=True, data=enriched, processing_applied=["normalize", "dedupe"]
        ),
        enrichment_result.enriched or {},
    )
    output_id = await ctx.step.uuid("output_id")
    return OrchestratorResult(
        status="completed",
        output_id=output_id,
        enrichment=enrichment_result,
        processed=processed,
    )
