"""The one place where exceptions become HTTP error responses.

Every error leaves the API as ``{"error": {"code", "message", "details"?}}``.
Routes and dependencies raise :class:`ApiError`; domain code raises its own
exceptions, which :func:`register_error_mapping` turns into an ``ApiError``
(services never know about HTTP). Messages are fixed texts chosen here or by
the mapping: nothing from a request (a password, a PHN) and nothing from an
unexpected exception (SQL, a storage key, a traceback) is ever echoed.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final, TypeVar

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import Scope

log = logging.getLogger("meritum.http")

#: Code and message of each status when nothing more specific is said.
STANDARD_ERRORS: Final[Mapping[int, tuple[str, str]]] = {
    400: ("BAD_REQUEST", "Bad request"),
    401: ("UNAUTHENTICATED", "Authentication required"),
    403: ("FORBIDDEN", "You do not have permission to do this"),
    404: ("NOT_FOUND", "Not found"),
    405: ("METHOD_NOT_ALLOWED", "Method not allowed"),
    406: ("NOT_ACCEPTABLE", "Not acceptable"),
    409: ("CONFLICT", "The request conflicts with the current state"),
    410: ("GONE", "No longer available"),
    413: ("PAYLOAD_TOO_LARGE", "Request body too large"),
    415: ("UNSUPPORTED_MEDIA_TYPE", "Request body must be application/json"),
    422: ("UNPROCESSABLE", "The request breaks a business rule"),
    429: ("RATE_LIMITED", "Too many requests"),
    500: ("INTERNAL_ERROR", "Internal server error"),
}

#: Where a request's id is kept in the ASGI scope's ``state``.
REQUEST_ID_STATE_KEY: Final = "request_id"

# Headers a framework exception may carry that are safe to pass on.
_PASSED_HEADERS: Final = frozenset({"allow", "retry-after", "www-authenticate"})
_MAX_MESSAGE: Final = 200


class ApiError(Exception):
    """An error response: HTTP status, stable machine code, human message."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        details: Any = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.details = details
        self.headers: dict[str, str] = dict(headers or {})

    @classmethod
    def of(
        cls, status: int, *, details: Any = None, headers: Mapping[str, str] | None = None
    ) -> ApiError:
        """The standard error of ``status`` (e.g. ``ApiError.of(404)``)."""
        code, message = STANDARD_ERRORS.get(status, STANDARD_ERRORS[500])
        return cls(status, code, message, details, headers)


def error_body(code: str, message: str, details: Any = None) -> dict[str, Any]:
    """The JSON body of an error response."""
    error: dict[str, Any] = {"code": code, "message": message}
    if details is not None:
        error["details"] = details
    return {"error": error}


def error_response(
    status: int,
    code: str,
    message: str,
    details: Any = None,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    """An error response in the API's one shape."""
    return JSONResponse(
        error_body(code, message, details), status_code=status, headers=dict(headers or {})
    )


def api_error_response(error: ApiError) -> JSONResponse:
    """The response of an :class:`ApiError`."""
    return error_response(error.status, error.code, error.message, error.details, error.headers)


def request_id_of(scope: Scope) -> str | None:
    """The id the hardening middleware gave this request, if any."""
    state = scope.get("state")
    if isinstance(state, dict):
        value = state.get(REQUEST_ID_STATE_KEY)
        return value if isinstance(value, str) else None
    return None


def internal_error_response(request_id: str | None) -> JSONResponse:
    """The generic 500: a request id to quote to support, nothing else."""
    code, message = STANDARD_ERRORS[500]
    details = {"request_id": request_id} if request_id else None
    headers = {"X-Request-ID": request_id} if request_id else None
    return error_response(500, code, message, details, headers)


# --- request validation ---

_LOCATIONS: Final = frozenset({"body", "query", "path", "header", "cookie"})
#: A name a client may see again: a field of ours, or an ordinary unknown key.
_FIELD_NAME: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_-]{0,63}")
#: Pydantic messages that quote part of the input, and what is said instead.
_QUOTING_MESSAGES: Final[Mapping[str, str]] = {
    "uuid_parsing": "Input should be a valid UUID",
}
NOT_UTF8_MESSAGE: Final = "The request body must be UTF-8 encoded JSON"


def _field(loc: Sequence[Any]) -> str:
    parts = list(loc)
    if len(parts) > 1 and parts[0] in _LOCATIONS:
        parts = parts[1:]
    # An unknown key is the client's text: named only when it is a plain
    # identifier (never NUL, a surrogate, or a number that could be a PHN).
    shown = [
        str(part)
        if isinstance(part, int) or (isinstance(part, str) and _FIELD_NAME.fullmatch(part))
        else "(unnamed)"
        for part in parts
    ]
    return ".".join(shown) or "body"


def validation_details(errors: Sequence[Any]) -> list[dict[str, str]]:
    """``[{field, message}]`` from Pydantic errors, never echoing the submitted value.

    Pydantic's ``msg`` describes the rule ("String should have at least 12
    characters"); ``input`` and ``ctx`` would carry the value, and a value
    may be a password or a PHN, so they are dropped, as are the few messages
    that quote a piece of the input.
    """
    details: list[dict[str, str]] = []
    for error in errors:
        if not isinstance(error, Mapping):
            continue
        kind = error.get("type")
        if kind == "json_invalid":
            details.append({"field": "body", "message": "Malformed JSON"})
            continue
        message = _QUOTING_MESSAGES.get(str(kind)) or str(error.get("msg", "Invalid value"))
        if not message.isprintable():
            message = "Invalid value"
        details.append({"field": _field(error.get("loc", ())), "message": message[:_MAX_MESSAGE]})
    return details


def validation_error_response(details: list[dict[str, str]]) -> JSONResponse:
    """The 400 of a request that breaks its contract, saying which field and why."""
    return error_response(400, "VALIDATION_ERROR", "Request validation failed", details)


# --- handlers ---


async def _handle_api_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    return api_error_response(exc)


async def _handle_validation(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    return validation_error_response(validation_details(exc.errors()))


async def _handle_http_exception(request: Request, exc: Exception) -> JSONResponse:
    # Raised by the framework itself (unknown route, wrong method, body too
    # large): the message is ours, ``exc.detail`` is not passed on.
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == 400 and exc.__cause__ is not None:
        # FastAPI could not read the JSON body: bytes that are no UTF-8, or
        # nesting deeper than the decoder goes.
        not_utf8 = isinstance(exc.__cause__, UnicodeDecodeError)
        message = NOT_UTF8_MESSAGE if not_utf8 else "Malformed JSON"
        return validation_error_response([{"field": "body", "message": message}])
    code, message = STANDARD_ERRORS.get(exc.status_code, ("ERROR", "Request failed"))
    headers = {k: v for k, v in (exc.headers or {}).items() if k.lower() in _PASSED_HEADERS}
    return error_response(exc.status_code, code, message, headers=headers)


async def _handle_unexpected(request: Request, exc: Exception) -> JSONResponse:
    # Normally the hardening middleware answers first; this is the fallback
    # for an app built without it.
    request_id = request_id_of(request.scope)
    log.error("unhandled error (request_id=%s)", request_id, exc_info=exc)
    return internal_error_response(request_id)


def install_error_handlers(app: FastAPI) -> None:
    """Route every error of ``app`` through this module."""
    app.add_exception_handler(ApiError, _handle_api_error)
    app.add_exception_handler(RequestValidationError, _handle_validation)
    app.add_exception_handler(StarletteHTTPException, _handle_http_exception)
    app.add_exception_handler(Exception, _handle_unexpected)


E = TypeVar("E", bound=Exception)


def register_error_mapping(
    app: FastAPI, exc_type: type[E], to: ApiError | Callable[[E], ApiError]
) -> None:
    """Answer ``exc_type`` raised anywhere in ``app`` with an :class:`ApiError`.

    ``to`` is a fixed error or a function of the exception, e.g.
    ``register_error_mapping(app, ReportExpired, ApiError(410, "REPORT_EXPIRED",
    "The download link has expired"))``. Mappings are per app, so two apps
    in one process stay independent.
    """

    async def handler(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, exc_type)
        error = to(exc) if callable(to) else to
        return api_error_response(error)

    app.add_exception_handler(exc_type, handler)
