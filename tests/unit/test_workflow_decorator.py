"""@workflow, Workflow typing and the process-wide registry.

The registry is global to the process: every test uses workflow IDs of its own.
"""

from __future__ import annotations

from typing import Any, Optional

import pytest
from pydantic import BaseModel

from polos import (
    PayloadValidationError,
    Queue,
    Workflow,
    WorkflowContext,
    get_all_workflows,
    get_workflow,
    queue,
    workflow,
)
from tests.unit import fixtures_future_annotations as future


class ReviewRequest(BaseModel):
    title: str
    pages: int
    reviewers: list[str]


class ReviewResult(BaseModel):
    verdict: str
    score: float


# --------------------------------------------------------------------------- declaring


def test_bare_decorator_uses_the_function_name() -> None:
    @workflow
    async def wfdec_bare_example(ctx: WorkflowContext, payload: dict[str, Any]) -> None:
        return None

    assert isinstance(wfdec_bare_example, Workflow)
    assert wfdec_bare_example.id == "wfdec_bare_example"
    assert wfdec_bare_example.queue_name == "wfdec_bare_example"
    assert wfdec_bare_example.queue_concurrency_limit is None
    assert get_workflow("wfdec_bare_example") is wfdec_bare_example
    assert get_all_workflows()["wfdec_bare_example"] is wfdec_bare_example


def test_decorator_with_id() -> None:
    @workflow(id="wfdec_with_id")
    async def some_function(ctx: WorkflowContext) -> None:
        return None

    assert some_function.id == "wfdec_with_id"
    assert some_function.queue_name == "wfdec_with_id"
    assert not some_function.has_payload_param
    assert get_workflow("wfdec_with_id") is some_function
    assert get_workflow("some_function") is None


def test_decorator_without_id_but_with_options() -> None:
    @workflow(description="described")
    async def wfdec_options_only(ctx: WorkflowContext) -> None:
        return None

    assert wfdec_options_only.id == "wfdec_options_only"
    assert wfdec_options_only.description == "described"


def test_queue_as_a_string() -> None:
    @workflow(id="wfdec_queue_str", queue="shared-q")
    async def f(ctx: WorkflowContext) -> None:
        return None

    assert (f.queue_name, f.queue_concurrency_limit) == ("shared-q", None)


def test_queue_as_a_queue_object() -> None:
    @workflow(id="wfdec_queue_obj", queue=Queue("limited-q", concurrency_limit=3))
    async def f(ctx: WorkflowContext) -> None:
        return None

    @workflow(id="wfdec_queue_fn", queue=queue("limited-q2", 5))
    async def g(ctx: WorkflowContext) -> None:
        return None

    assert (f.queue_name, f.queue_concurrency_limit) == ("limited-q", 3)
    assert (g.queue_name, g.queue_concurrency_limit) == ("limited-q2", 5)


def test_queue_as_a_dict() -> None:
    @workflow(id="wfdec_queue_dict", queue={"name": "dict-q", "concurrency_limit": 2})
    async def f(ctx: WorkflowContext) -> None:
        return None

    @workflow(id="wfdec_queue_dict_noname", queue={"concurrency_limit": 4})
    async def g(ctx: WorkflowContext) -> None:
        return None

    assert (f.queue_name, f.queue_concurrency_limit) == ("dict-q", 2)
    assert (g.queue_name, g.queue_concurrency_limit) == ("wfdec_queue_dict_noname", 4)


@pytest.mark.parametrize(
    "bad",
    [5, 2.5, ["q"], ("q", 2), {"name": "q", "limit": 2}, {"name": "q", "concurrency_limit": 0}],
    ids=["int", "float", "list", "tuple", "dict-unknown-key", "dict-zero-limit"],
)
def test_invalid_queue_is_refused(bad: Any) -> None:
    with pytest.raises(ValueError):

        @workflow(id="wfdec_queue_invalid", queue=bad)
        async def f(ctx: WorkflowContext) -> None:
            return None

    assert get_workflow("wfdec_queue_invalid") is None


def test_sync_functions_are_rejected() -> None:
    with pytest.raises(TypeError, match="async def"):

        @workflow(id="wfdec_sync")  # type: ignore[arg-type]
        def f(ctx: WorkflowContext, payload: dict[str, Any]) -> None:
            return None

    assert get_workflow("wfdec_sync") is None


async def _no_args() -> None:
    return None


async def _three_args(ctx: WorkflowContext, payload: Any, extra: Any) -> None:
    return None


async def _keyword_only(ctx: WorkflowContext, *, payload: Any) -> None:
    return None


async def _var_args(ctx: WorkflowContext, *payload: Any) -> None:
    return None


@pytest.mark.parametrize("func", [_no_args, _three_args, _keyword_only, _var_args])
def test_wrong_arity_is_rejected(func: Any) -> None:
    with pytest.raises(TypeError, match=r"\(ctx\) or \(ctx, payload\)"):
        workflow(id=f"wfdec_arity{func.__name__}")(func)
    assert get_workflow(f"wfdec_arity{func.__name__}") is None


@pytest.mark.parametrize(
    "bad_id",
    ["", "has space", "a/b", "/lead", "-lead", "x" * 256, "tab\tid", "ü-unicode"],
    ids=["empty", "space", "slash", "lead-slash", "lead-dash", "too-long", "tab", "unicode"],
)
def test_invalid_ids_are_rejected(bad_id: str) -> None:
    with pytest.raises(ValueError, match="invalid workflow id"):

        @workflow(id=bad_id)
        async def f(ctx: WorkflowContext) -> None:
            return None

    assert get_workflow(bad_id) is None


def test_valid_ids_in_the_safe_alphabet() -> None:
    for good in ("wfdec.v1", "wfdec:ns:x", "wfdec-x_y", "0wfdec", "w" * 255):

        @workflow(id=good)
        async def f(ctx: WorkflowContext) -> None:
            return None

        assert get_workflow(good) is f


def test_a_different_function_under_an_existing_id_is_refused() -> None:
    @workflow(id="wfdec_taken")
    async def first(ctx: WorkflowContext) -> None:
        return None

    with pytest.raises(ValueError, match="wfdec_taken"):

        @workflow(id="wfdec_taken")
        async def second(ctx: WorkflowContext) -> None:
            return None

    assert get_workflow("wfdec_taken") is first


def test_registering_the_same_function_again_is_allowed() -> None:
    async def again(ctx: WorkflowContext) -> None:
        return None

    first = workflow(id="wfdec_again")(again)
    second = workflow(id="wfdec_again")(again)
    assert get_workflow("wfdec_again") is second
    assert first.func is second.func


# --------------------------------------------------------------------------- payload typing


def test_model_payload_is_validated_into_the_model() -> None:
    @workflow(id="wfdec_payload_model")
    async def f(ctx: WorkflowContext, payload: ReviewRequest) -> None:
        return None

    value = f.decode_payload({"title": "t", "pages": 3, "reviewers": ["a", "b"]})
    assert value == ReviewRequest(title="t", pages=3, reviewers=["a", "b"])
    assert type(value) is ReviewRequest
    assert f.payload_type is ReviewRequest


def test_dict_payload_stays_a_dict() -> None:
    @workflow(id="wfdec_payload_dict")
    async def f(ctx: WorkflowContext, payload: dict[str, Any]) -> None:
        return None

    raw = {"a": [1, 2], "b": {"c": None}}
    assert f.decode_payload(raw) == raw
    assert f.decode_payload({}) == {}


def test_union_with_none_payload() -> None:
    @workflow(id="wfdec_payload_union_none")
    async def f(ctx: WorkflowContext, payload: ReviewRequest | None) -> None:
        return None

    assert f.decode_payload(None) is None
    value = f.decode_payload({"title": "t", "pages": 1, "reviewers": []})
    assert type(value) is ReviewRequest


def test_optional_payload() -> None:
    @workflow(id="wfdec_payload_optional")
    async def f(ctx: WorkflowContext, payload: Optional[ReviewRequest]) -> None:  # noqa: UP045
        return None

    assert f.decode_payload(None) is None
    value = f.decode_payload({"title": "t", "pages": 1, "reviewers": []})
    assert type(value) is ReviewRequest
    with pytest.raises(PayloadValidationError):
        f.decode_payload({"title": "t"})


@pytest.mark.parametrize("raw", [{"a": 1}, [1, 2], "text", 0, None, False], ids=repr)
def test_unannotated_payload_is_the_raw_json_value(raw: Any) -> None:
    async def wfdec_unannotated(ctx, payload):  # type: ignore[no-untyped-def]
        return None

    wf = workflow(id="wfdec_payload_unannotated")(wfdec_unannotated)
    assert wf.payload_type is None
    assert wf.decode_payload(raw) is raw


def test_any_payload_is_the_raw_json_value() -> None:
    @workflow(id="wfdec_payload_any")
    async def f(ctx: WorkflowContext, payload: Any) -> None:
        return None

    raw = {"x": [1]}
    assert f.decode_payload(raw) is raw


def test_postponed_annotations_with_models_defined_after_the_function() -> None:
    wf = get_workflow("fixture_future_annotations")
    assert wf is future.late_models
    assert wf.payload_type is future.LateRequest
    value = wf.decode_payload({"text": "hi", "pages": [1, 2, 3]})
    assert value == future.LateRequest(text="hi", pages=[1, 2, 3])
    assert type(value) is future.LateRequest
    assert wf.return_type is future.LateResult
    result = wf.decode_result({"echoed": "hi", "pages": 3}, None)
    assert type(result) is future.LateResult
    with pytest.raises(PayloadValidationError):
        wf.decode_payload({"text": "hi"})


def test_postponed_optional_annotations() -> None:
    wf = future.late_optional
    assert wf.decode_payload(None) is None
    assert type(wf.decode_payload({"text": "x", "pages": []})) is future.LateRequest
    results = wf.decode_result([{"echoed": "a", "pages": 1}], None)
    assert [type(r) for r in results] == [future.LateResult]


def test_invalid_payload_names_every_rejected_field() -> None:
    @workflow(id="wfdec_payload_invalid")
    async def f(ctx: WorkflowContext, payload: ReviewRequest) -> None:
        return None

    with pytest.raises(PayloadValidationError) as raised:
        f.decode_payload({"title": ["not", "a", "string"], "pages": "many", "reviewers": 7})
    message = str(raised.value)
    assert "'wfdec_payload_invalid'" in message
    assert "3 validation errors" in message
    for field in ("title", "pages", "reviewers"):
        assert f"\n{field}\n" in message
    assert isinstance(raised.value, ValueError)


def test_missing_payload_fields_are_all_named() -> None:
    @workflow(id="wfdec_payload_missing")
    async def f(ctx: WorkflowContext, payload: ReviewRequest) -> None:
        return None

    with pytest.raises(PayloadValidationError) as raised:
        f.decode_payload({})
    message = str(raised.value)
    assert "3 validation errors" in message
    for field in ("title", "pages", "reviewers"):
        assert f"\n{field}\n  Field required" in message


def test_none_payload_for_a_model_is_refused() -> None:
    @workflow(id="wfdec_payload_none_for_model")
    async def f(ctx: WorkflowContext, payload: ReviewRequest) -> None:
        return None

    with pytest.raises(PayloadValidationError):
        f.decode_payload(None)


# --------------------------------------------------------------------------- results


def test_return_model_is_rebuilt() -> None:
    @workflow(id="wfdec_return_model")
    async def f(ctx: WorkflowContext) -> ReviewResult:
        return ReviewResult(verdict="ok", score=1.0)

    assert f.return_type is ReviewResult
    value = f.decode_result({"verdict": "ok", "score": 0.5}, None)
    assert value == ReviewResult(verdict="ok", score=0.5)
    assert type(value) is ReviewResult


def test_return_list_of_models_is_rebuilt() -> None:
    @workflow(id="wfdec_return_list")
    async def f(ctx: WorkflowContext) -> list[ReviewResult]:
        return []

    value = f.decode_result([{"verdict": "a", "score": 1}, {"verdict": "b", "score": 0}], None)
    assert [type(v) for v in value] == [ReviewResult, ReviewResult]
    assert [v.verdict for v in value] == ["a", "b"]


def test_return_annotation_wins_over_the_stored_schema() -> None:
    @workflow(id="wfdec_return_wins")
    async def f(ctx: WorkflowContext) -> ReviewResult:
        return ReviewResult(verdict="ok", score=1.0)

    value = f.decode_result({"verdict": "ok", "score": 2}, f"{__name__}:ReviewRequest")
    assert type(value) is ReviewResult


def test_without_return_annotation_the_stored_schema_is_used() -> None:
    async def wfdec_no_return(ctx):  # type: ignore[no-untyped-def]
        return None

    wf = workflow(id="wfdec_return_schema")(wfdec_no_return)
    assert wf.return_type is None
    value = wf.decode_result({"verdict": "ok", "score": 2}, f"{__name__}:ReviewResult")
    assert type(value) is ReviewResult
    assert wf.decode_result({"verdict": "ok"}, None) == {"verdict": "ok"}


@pytest.mark.parametrize("falsy", [0, 0.0, "", False, [], {}], ids=repr)
def test_falsy_results_are_returned_as_themselves(falsy: Any) -> None:
    @workflow(id="wfdec_return_falsy")
    async def f(ctx: WorkflowContext) -> Any:
        return falsy

    assert f.return_type is None
    back = f.decode_result(falsy, None)
    assert back == falsy
    assert type(back) is type(falsy)


def test_return_none_annotation_means_no_type() -> None:
    @workflow(id="wfdec_return_none")
    async def f(ctx: WorkflowContext) -> None:
        return None

    assert f.return_type is None
    assert f.decode_result(None, None) is None
