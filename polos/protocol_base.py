"""What every part of the wire protocol shares: request limits, the checked text types
(`Identifier`, `StepKey`, ...), the strict request base and the error bodies.

A leaf module: the other polos/protocol_*.py modules build their models on it, and
polos/protocol.py re-exports all of it (`from polos import protocol`, then `protocol.X`). The
limits live here rather than in polos/protocol.py because the models' field bounds use them and
polos/protocol.py imports the models: defining them there would make an import cycle.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError

# Limits that keep one request bounded; the server also enforces byte sizes.
MAX_CLAIM = 1000
MAX_LONG_POLL_SECONDS = 60.0
MAX_STEP_KEY_LENGTH = 512
MAX_ID_LENGTH = 255
# Integers stored in 32-bit columns (positions, batch indexes, limits).
MAX_INT32 = 2**31 - 1


def check_text(value: str) -> str:
    """Identifiers and keys are stored as text: NUL bytes (which PostgreSQL cannot store) and
    lone surrogates (which UTF-8 cannot encode) are refused."""
    if "\x00" in value:
        raise ValueError("must not contain NUL bytes")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("must be valid Unicode (no lone surrogates)") from None
    return value


StepKey = Annotated[
    str, Field(min_length=1, max_length=MAX_STEP_KEY_LENGTH), AfterValidator(check_text)
]
Identifier = Annotated[
    str, Field(min_length=1, max_length=MAX_ID_LENGTH), AfterValidator(check_text)
]
Limit = Annotated[int, Field(ge=1, le=MAX_INT32)]
OptionalKey = Annotated[str, Field(max_length=MAX_ID_LENGTH), AfterValidator(check_text)]


def describe_validation_error(exc: ValidationError) -> str:
    """A model's validation errors in one line: `where: what; ...` (API answers, SDK errors)."""
    parts = []
    for err in exc.errors(include_url=False):
        where = ".".join(str(p) for p in err.get("loc", ())) or "body"
        parts.append(f"{where}: {err.get('msg')}")
    return "; ".join(parts)


# Requests refuse fields they do not know (a typo is an error, not a silently ignored field).
class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ErrorDetail(BaseModel):
    code: str
    message: str


class ErrorBody(BaseModel):
    """Every 4xx/5xx answer of the API has this body."""

    error: ErrorDetail


class StoredError(BaseModel):
    """An error as stored: the exception's type name and its whole message."""

    type: str
    message: str
