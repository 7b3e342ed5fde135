"""The OpenAPI document: the error body, shared response entries, and a final pass.

FastAPI documents a 422 "Validation Error" on every route with parameters,
but this API answers validation failures with 400 and its own error body;
:func:`install_openapi` removes those entries (keeping the 422s a route
declares itself) so the document says what the server really does.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel

Responses = dict[int | str, dict[str, Any]]


class ErrorDetail(BaseModel):
    code: str
    message: str
    details: Any | None = None


class ErrorEnvelope(BaseModel):
    """``{ "error": { "code", "message", "details"? } }``."""

    error: ErrorDetail


def error_response(description: str) -> dict[str, Any]:
    """An OpenAPI response entry with the error body."""
    return {"model": ErrorEnvelope, "description": description}


#: What any route may answer whatever it does: a throttled client, a fault.
ALWAYS: Responses = {
    429: error_response("Too many requests; see Retry-After"),
    500: error_response("Internal server error (a request id is given, details are only logged)"),
}

_FRAMEWORK_422 = "#/components/schemas/HTTPValidationError"


def install_openapi(app: FastAPI) -> None:
    """Generate the document once, without FastAPI's own validation-error entries."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = get_openapi(
                title=app.title, version=app.version, routes=app.routes, description=app.description
            )
            for operation in _operations(document):
                response = operation["responses"].get("422", {})
                schema = response.get("content", {}).get("application/json", {}).get("schema", {})
                if schema.get("$ref") == _FRAMEWORK_422:
                    del operation["responses"]["422"]
            schemas = document.get("components", {}).get("schemas", {})
            for name in ("HTTPValidationError", "ValidationError"):
                schemas.pop(name, None)
            app.openapi_schema = document
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def _operations(document: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        operation
        for path in document.get("paths", {}).values()
        for operation in path.values()
        if isinstance(operation, dict) and "responses" in operation
    ]
