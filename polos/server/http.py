"""HTTP plumbing shared by the routes: errors, body parsing, responses, the request's project.

Hot routes parse bodies with pydantic's JSON parser straight from bytes and answer with
pre-serialized JSON; the OpenAPI schema still describes them (see `body_schema`).
"""

from __future__ import annotations

from typing import Any, TypeVar

from fastapi import Request
from fastapi.responses import Response
from pydantic import BaseModel, ValidationError

from polos.protocol import (
    MAX_ID_LENGTH,
    ErrorBody,
    ErrorDetail,
    check_text,
    describe_validation_error,
)

M = TypeVar("M", bound=BaseModel)

DEFAULT_PROJECT = "default"


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def error_response(status: int, code: str, message: str) -> Response:
    body = ErrorBody(error=ErrorDetail(code=code, message=message))
    return Response(body.model_dump_json(), status_code=status, media_type="application/json")


def json_response(model: BaseModel, status: int = 200) -> Response:
    return Response(model.model_dump_json(), status_code=status, media_type="application/json")


def encoded_json_response(content: bytes) -> Response:
    """An answer whose JSON the route wrote itself (orjson, on the hot paths)."""
    return Response(content, media_type="application/json")


async def parse_body(request: Request, model: type[M], max_bytes: int) -> M:
    raw = await request.body()
    if len(raw) > max_bytes:
        raise ApiError(
            413, "request_too_large", f"request body is {len(raw)} bytes; the limit is {max_bytes}"
        )
    try:
        return model.model_validate_json(raw or b"{}")
    except ValidationError as exc:
        raise ApiError(422, "invalid_request", describe_validation_error(exc)) from None


def body_schema(model: type[BaseModel]) -> dict[str, Any]:
    """`openapi_extra` for a route that parses `model` itself."""
    return {
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": {"$ref": f"#/components/schemas/{model.__name__}"}}
            },
        }
    }


def check_identifier(value: str, what: str) -> str:
    """Path parameters and headers that name things: same rules as body identifiers."""
    if not value or len(value) > MAX_ID_LENGTH:
        raise ApiError(400, "invalid_identifier", f"{what} must be 1 to {MAX_ID_LENGTH} characters")
    try:
        return check_text(value)
    except ValueError as exc:
        raise ApiError(400, "invalid_identifier", f"{what} {exc}") from None


def project_of(request: Request) -> str:
    """The request's project: the API key's (set by the auth middleware), else X-Project-ID
    (local mode), else "default"."""
    project = getattr(request.state, "project_id", None)
    if project is not None:
        return str(project)
    raw = request.headers.get("x-project-id") or DEFAULT_PROJECT
    try:  # headers arrive decoded as latin-1; project IDs are UTF-8
        raw = raw.encode("latin-1").decode("utf-8")
    except UnicodeError:
        raise ApiError(400, "invalid_identifier", "X-Project-ID is not valid UTF-8") from None
    return check_identifier(raw, "X-Project-ID")
