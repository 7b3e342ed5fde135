"""Hardening middleware, as plain ASGI so that nothing buffers a response body.

Report downloads stream large files; Starlette's ``BaseHTTPMiddleware``
would funnel them through a memory stream. These classes only look at the
``http.response.start`` message (headers) and at the request's ``receive``
channel, and pass body chunks straight through.

Order in the app, outermost first: :class:`HardeningMiddleware` (request id,
security headers, the generic 500) → :class:`BodyPolicyMiddleware` (size,
media type) → authentication → rate limit → the routes.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Iterable
from email.message import Message as EmailMessage
from typing import Final

from starlette.datastructures import Headers
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from meritum_api.http.errors import (
    REQUEST_ID_STATE_KEY,
    ApiError,
    api_error_response,
    internal_error_response,
)
from meritum_api.http.log_redaction import request_id_var

log = logging.getLogger("meritum.http")

#: Every API response: it is JSON or a file, never a page, and never framed.
API_CSP: Final = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"

#: The interactive docs page (``/docs``): Swagger UI's script, styles and the
#: OpenAPI document, all from this origin, and no inline script. The docs are
#: still development only: Swagger UI is a large third-party application, and
#: on the API's origin in production any flaw of it would act with a
#: physician's session; production has no need for it.
DOCS_CSP: Final = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
)
DOCS_PATHS: Final = frozenset({"/docs"})
_API_CSP_RAW: Final = API_CSP.encode("latin-1")
_DOCS_CSP_RAW: Final = DOCS_CSP.encode("latin-1")

_HSTS: Final = "max-age=63072000; includeSubDomains"
_STATIC_HEADERS: Final = (
    ("x-content-type-options", "nosniff"),
    ("referrer-policy", "no-referrer"),
    ("x-frame-options", "DENY"),
    ("cross-origin-opener-policy", "same-origin"),
    ("cross-origin-resource-policy", "same-origin"),
)
_REMOVED_HEADERS: Final = ("server", "x-powered-by")
#: Raw ASGI header names (lower case) never passed on from the app: set here, or removed.
_REPLACED: Final = frozenset(
    name.encode("latin-1")
    for name in (
        *_REMOVED_HEADERS,
        *(name for name, _ in _STATIC_HEADERS),
        "x-request-id",
        "content-security-policy",
        "strict-transport-security",
    )
)
_STATIC_RAW: Final = tuple((k.encode("latin-1"), v.encode("latin-1")) for k, v in _STATIC_HEADERS)
_NO_STORE: Final = (b"cache-control", b"no-store")
_HSTS_RAW: Final = (b"strict-transport-security", _HSTS.encode("latin-1"))


def _never(path: str) -> bool:
    return False


class HardeningMiddleware:
    """A request id, security headers on every response, and the generic 500.

    Sits outside Starlette's exception handling, so it also stamps error
    responses. An exception that escapes the app becomes a 500 carrying only
    the request id; the traceback goes to the log (redacted there). If the
    response had already started (a download broke midway) the exception is
    re-raised so the server aborts the connection rather than let a
    truncated file look complete.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        hsts: bool,
        docs_paths: Iterable[str] = (),
        page_csp: str | None = None,
        is_page: Callable[[str], bool] = _never,
    ) -> None:
        self.app = app
        self.hsts = hsts
        self.docs_paths = frozenset(docs_paths)
        self.page_csp = page_csp
        self._page_csp_raw = (page_csp or "").encode("latin-1")
        self.is_page = is_page

    def _csp(self, path: str) -> bytes:
        if path in self.docs_paths:
            return _DOCS_CSP_RAW
        if self.page_csp is not None and self.is_page(path):
            return self._page_csp_raw
        return _API_CSP_RAW

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = uuid.uuid4().hex
        scope.setdefault("state", {})[REQUEST_ID_STATE_KEY] = request_id
        csp = self._csp(scope.get("path", ""))
        started = False

        async def send_hardened(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                # Raw pairs, not MutableHeaders: this runs on every response.
                headers = [
                    (name, value)
                    for name, value in message.get("headers", ())
                    if name not in _REPLACED
                ]
                cached = any(name == b"cache-control" for name, _ in headers)
                headers.append((b"x-request-id", request_id.encode("ascii")))
                headers.append((b"content-security-policy", csp))
                headers.extend(_STATIC_RAW)
                if not cached:
                    # Responses carry PHI or session data: no cache may keep them.
                    headers.append(_NO_STORE)
                if self.hsts:
                    headers.append(_HSTS_RAW)
                message["headers"] = headers
            await send(message)

        token = request_id_var.set(request_id)
        try:
            await self.app(scope, receive, send_hardened)
        except Exception:
            log.exception("unhandled error (request_id=%s)", request_id)
            if started:
                raise
            await internal_error_response(request_id)(scope, receive, send_hardened)
        finally:
            request_id_var.reset(token)


class BodyTooLarge(StarletteHTTPException):
    """The request body grew past the limit while it was being read."""

    def __init__(self) -> None:
        super().__init__(status_code=413)


def _is_json(content_type: str | None) -> bool:
    if not content_type:
        return False
    parsed = EmailMessage()
    parsed["content-type"] = content_type
    if parsed.get_content_maintype() != "application":
        return False
    subtype = parsed.get_content_subtype()
    return subtype == "json" or subtype.endswith("+json")


def _is_form(content_type: str | None) -> bool:
    if not content_type:
        return False
    parsed = EmailMessage()
    parsed["content-type"] = content_type
    return parsed.get_content_type() == "application/x-www-form-urlencoded"


class BodyPolicyMiddleware:
    """At most ``max_body_bytes`` of request body, and only JSON (or a form, on the pages).

    A declared ``Content-Length`` over the limit is refused before a byte is
    read. The body is also counted as it streams in, so a chunked upload (no
    length declared) or a length that understates the body is cut off at the
    limit too: the read raises :class:`BodyTooLarge`, which becomes a 413.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        max_body_bytes: int,
        accepts_form: Callable[[str], bool] = _never,
    ) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.accepts_form = accepts_form

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        declared = headers.get("content-length")
        length: int | None = None
        if declared is not None:
            try:
                length = int(declared)
            except ValueError:
                length = -1
            if length < 0:
                field = {"field": "Content-Length", "message": "Must be a whole number of bytes"}
                await api_error_response(ApiError.of(400, details=[field]))(scope, receive, send)
                return
            if length > self.max_body_bytes:
                await api_error_response(ApiError.of(413))(scope, receive, send)
                return
        has_body = (length or 0) > 0 or "transfer-encoding" in headers
        content_type = headers.get("content-type")
        form = self.accepts_form(scope.get("path", "")) and _is_form(content_type)
        if has_body and not form and not _is_json(content_type):
            await api_error_response(ApiError.of(415))(scope, receive, send)
            return

        received = 0
        limit = self.max_body_bytes
        started = False

        async def receive_limited() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge
            return message

        async def send_tracked(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive_limited, send_tracked)
        except BodyTooLarge:
            # Normally the route's exception handling has already answered;
            # this covers a body read outside it.
            if started:
                raise
            await api_error_response(ApiError.of(413))(scope, receive, send)
