"""polos.codec: the one serialization policy for payloads, results, state and errors."""

from __future__ import annotations

import enum
import math
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from pydantic import BaseModel, Field, ValidationError

from polos import PayloadValidationError, codec


class Color(enum.Enum):
    RED = "red"


class Address(BaseModel):
    street: str
    zip_code: str


class Person(BaseModel):
    name: str
    age: int
    address: Address
    tags: list[str] = []
    born: datetime | None = None


class Review(BaseModel):
    reviewer: str
    score: float


class Other(BaseModel):
    reviewer: str
    score: float
    note: str = "rebuilt by annotation"


class Outer(BaseModel):
    class Inner(BaseModel):
        value: int

    inner: Inner


def _round_trip(value: Any, annotation: Any = None) -> Any:
    encoded = codec.encode(value)
    return codec.decode(encoded.text, annotation, encoded.schema)


def _person() -> Person:
    return Person(
        name="Ada",
        age=36,
        address=Address(street="1 Loop Rd", zip_code="00100"),
        tags=["math", "engines"],
        born=datetime(1815, 12, 10, tzinfo=UTC),
    )


# --------------------------------------------------------------------------- models


def test_model_round_trips_by_its_stored_schema() -> None:
    person = _person()
    encoded = codec.encode(person)
    assert encoded.schema == f"{__name__}:Person"
    back = codec.decode(encoded.text, None, encoded.schema)
    assert type(back) is Person
    assert back == person
    assert type(back.address) is Address


def test_model_round_trips_by_annotation_without_schema() -> None:
    person = _person()
    back = codec.decode(codec.dumps(person), Person)
    assert type(back) is Person
    assert back == person


def test_nested_class_schema_is_resolved() -> None:
    value = Outer(inner=Outer.Inner(value=7))
    encoded = codec.encode(value)
    assert encoded.schema == f"{__name__}:Outer"
    back = codec.decode(encoded.text, None, encoded.schema)
    assert back == value
    inner = codec.encode(value.inner)
    assert inner.schema == f"{__name__}:Outer.Inner"
    assert codec.decode(inner.text, None, inner.schema) == Outer.Inner(value=7)


class Rich(BaseModel):
    when: datetime
    id: uuid.UUID
    amount: Decimal
    raw: bytes
    color: Color
    maybe: int | None = None


class Aliased(BaseModel):
    my_field: int = Field(alias="myField")


def test_model_with_rich_field_types_round_trips() -> None:
    rich = Rich(
        when=datetime(2024, 2, 29, 12, 30, tzinfo=UTC),
        id=uuid.UUID("12345678-1234-5678-1234-567812345678"),
        amount=Decimal("1.10"),
        raw=b"bytes",
        color=Color.RED,
    )
    assert _round_trip(rich) == rich
    assert codec.decode(codec.dumps(rich), Rich) == rich


def test_model_with_aliases_round_trips() -> None:
    value = Aliased(myField=3)
    back = _round_trip(value)
    assert type(back) is Aliased
    assert back.my_field == 3


def test_list_of_models_round_trips_by_list_schema() -> None:
    reviews = [Review(reviewer="a", score=1.5), Review(reviewer="b", score=0.0)]
    encoded = codec.encode(reviews)
    assert encoded.schema == f"list[{__name__}:Review]"
    back = codec.decode(encoded.text, None, encoded.schema)
    assert back == reviews
    assert all(type(r) is Review for r in back)


def test_list_of_models_round_trips_by_annotation() -> None:
    reviews = [Review(reviewer="a", score=1.5), Review(reviewer="b", score=2.0)]
    back = codec.decode(codec.dumps(reviews), list[Review])
    assert back == reviews
    assert all(type(r) is Review for r in back)


def test_list_of_mixed_models_has_no_schema_and_comes_back_as_json() -> None:
    mixed = [Review(reviewer="a", score=1.0), Address(street="s", zip_code="z")]
    encoded = codec.encode(mixed)
    assert encoded.schema is None
    assert codec.decode(encoded.text, None, encoded.schema) == [
        {"reviewer": "a", "score": 1.0},
        {"street": "s", "zip_code": "z"},
    ]


def test_dict_of_models_is_plain_json_without_annotation() -> None:
    value = {"first": Review(reviewer="a", score=1.0), "count": 2}
    encoded = codec.encode(value)
    assert encoded.schema is None
    assert codec.decode(encoded.text) == {"first": {"reviewer": "a", "score": 1.0}, "count": 2}
    rebuilt = codec.decode(encoded.text, dict[str, Review | int])
    assert rebuilt == value


@pytest.mark.parametrize(
    "value",
    [
        {"a": 1, "b": [1, 2, {"c": None}], "d": "text", "e": True},
        [1, "two", 3.5, None, {"x": []}],
        "plain text with ünïcode",
        12345678901234567890,
        -2.5,
        True,
    ],
)
def test_plain_json_values_round_trip(value: Any) -> None:
    encoded = codec.encode(value)
    assert encoded.schema is None
    assert codec.decode(encoded.text, None, encoded.schema) == value


def test_none_round_trips() -> None:
    encoded = codec.encode(None)
    assert encoded.text == "null"
    assert encoded.schema is None
    assert codec.decode(encoded.text) is None
    assert codec.decode(None) is None
    # An annotation does not turn a stored null into something else.
    assert codec.decode("null", Person) is None


FALSY = [0, 0.0, {}, [], "", False]


@pytest.mark.parametrize("value", FALSY, ids=repr)
def test_falsy_values_come_back_as_themselves(value: Any) -> None:
    back = _round_trip(value)
    assert back is not None
    assert back == value
    assert type(back) is type(value)


@pytest.mark.parametrize("value", FALSY, ids=repr)
def test_falsy_values_come_back_as_themselves_with_an_annotation(value: Any) -> None:
    back = _round_trip(value, type(value))
    assert back is not None
    assert back == value
    assert type(back) is type(value)


@pytest.mark.parametrize("value", FALSY, ids=repr)
def test_falsy_values_inside_a_model_survive(value: Any) -> None:
    class Holder(BaseModel):
        value: Any

    back = codec.decode(codec.dumps(Holder(value=value)), Holder)
    assert back.value == value
    assert type(back.value) is type(value)


# --------------------------------------------------------------------------- refusals


@pytest.mark.parametrize(
    "value",
    [
        math.nan,
        math.inf,
        -math.inf,
        [1.0, math.nan],
        {"deep": {"deeper": [math.inf]}},
        Review(reviewer="x", score=math.nan),
    ],
    ids=["nan", "inf", "-inf", "nan-in-list", "inf-in-dict", "nan-in-model"],
)
def test_non_finite_floats_are_refused(value: Any) -> None:
    with pytest.raises(codec.EncodeError):
        codec.encode(value)
    with pytest.raises(codec.EncodeError):
        codec.dumps(value)


class _Opaque:
    pass


@pytest.mark.parametrize(
    "value",
    [object(), _Opaque(), {"key": _Opaque()}, [1, object()], lambda: None],
    ids=["object", "class-instance", "in-dict", "in-list", "lambda"],
)
def test_arbitrary_objects_are_refused(value: Any) -> None:
    with pytest.raises(codec.EncodeError):
        codec.encode(value)


def test_encode_error_is_a_type_error() -> None:
    # Callers that catch TypeError for "cannot serialize" keep working.
    assert issubclass(codec.EncodeError, TypeError)


def test_loads_refuses_text_that_is_not_json() -> None:
    with pytest.raises(codec.DecodeError):
        codec.loads("{not json")
    with pytest.raises(codec.DecodeError):
        codec.check_json("")
    codec.check_json('{"ok": [1, 2]}')


# --------------------------------------------------------------------------- rebuild


def test_rebuild_prefers_the_annotation_over_the_stored_schema() -> None:
    encoded = codec.encode(Review(reviewer="a", score=3.0))
    assert encoded.schema == f"{__name__}:Review"
    back = codec.decode(encoded.text, Other, encoded.schema)
    assert type(back) is Other
    assert back == Other(reviewer="a", score=3.0)


def test_rebuild_prefers_the_annotation_over_a_list_schema() -> None:
    encoded = codec.encode([Review(reviewer="a", score=3.0)])
    back = codec.rebuild(codec.loads(encoded.text), list[Other], encoded.schema)
    assert [type(x) for x in back] == [Other]


def test_unimportable_schema_gives_the_plain_json_value() -> None:
    value = {"reviewer": "a", "score": 1.0}
    for schema in (
        "no_such_module_xyz:Review",
        f"{__name__}:NoSuchClass",
        f"{__name__}:Outer.Missing",
        "list[no_such_module_xyz:Review]",
    ):
        stored = [value] if schema.startswith("list[") else value
        assert codec.rebuild(stored, None, schema) == stored


def test_schema_of_a_local_class_gives_the_plain_json_value() -> None:
    class Local(BaseModel):
        n: int

    encoded = codec.encode(Local(n=1))
    assert encoded.schema is not None and "<locals>" in encoded.schema
    assert codec.decode(encoded.text, None, encoded.schema) == {"n": 1}


def test_schema_naming_something_that_is_not_a_model_gives_plain_json() -> None:
    assert codec.rebuild({"a": 1}, None, "json:dumps") == {"a": 1}
    assert codec.rebuild({"a": 1}, None, f"{__name__}:_Opaque") == {"a": 1}


def test_model_schema_with_a_non_dict_value_gives_the_value() -> None:
    assert codec.rebuild(5, None, f"{__name__}:Review") == 5


# --------------------------------------------------------------------------- errors


def test_error_info_keeps_type_and_whole_message() -> None:
    message = "line one\n" + "x" * 10_000 + "\nlast line"
    info = codec.error_info(ValueError(message))
    assert info == {"type": "ValueError", "message": message}


def test_error_info_of_a_custom_exception_uses_its_class_name() -> None:
    class QuotaExceeded(RuntimeError):
        pass

    assert codec.error_info(QuotaExceeded("over quota: 12 > 10")) == {
        "type": "QuotaExceeded",
        "message": "over quota: 12 > 10",
    }


def test_error_info_of_an_exception_without_message_is_never_empty() -> None:
    info = codec.error_info(KeyboardInterrupt())
    assert info["type"] == "KeyboardInterrupt"
    assert info["message"]


def test_error_info_keeps_every_field_of_a_payload_validation_error() -> None:
    class Request(BaseModel):
        title: str
        pages: int
        ratio: float

    with pytest.raises(ValidationError) as rejected:
        Request.model_validate({"title": 1, "pages": "many", "ratio": "high"})
    info = codec.error_info(PayloadValidationError(f"invalid payload: {rejected.value}"))
    assert info["type"] == "PayloadValidationError"
    assert "3 validation errors" in info["message"]
    for field in ("title", "pages", "ratio"):
        assert f"\n{field}\n" in info["message"]
