"""HTTP plumbing shared by the routes: errors, body parsing, responses, the request's project.

Hot routes parse bodies with pydantic's JSON parser straight from bytes and answer with
pre-serialized JSON; the OpenAPI schema still describes them (see `body_schema`).
"""

from __future__ import annotations

from typing import Any, TypeVar

from fastapi import Request
from fastapi.responses import Response
from pydantic import BaseModel, ValidationError

from polos.protocol import ErrorBody, ErrorDetail

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


def describe_validation_error(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors(include_url=False):
        where = ".".join(str(p) for p in err.get("loc", ())) or "body"
        parts.append(f"{where}: {err.get('msg')}")
    return "; ".join(parts)


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


def project_of(request: Request) -> str:
    project = request.headers.get("x-project-id") or DEFAULT_PROJECT
    if len(project) > 255:
        raise ApiError(400, "invalid_project", "X-Project-ID is longer than 255 characters")
    return project
