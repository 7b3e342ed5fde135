"""Mounting the web app on the product's FastAPI app: pages at ``/``, files at ``/static/``."""

from __future__ import annotations

import inspect
from typing import Final
from urllib.parse import urlencode

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from meritum_web.assets import STATIC_DIR, VersionedStaticFiles
from meritum_web.pages import render_page, router
from meritum_web.rendering import render
from meritum_web.security import FormNotVerified, SignInRequired, signed_in

__all__ = ["PAGE_CSP", "STATIC_PATHS", "install_web", "is_page"]

#: The app's own files (a fixed set, public, cheap): not counted against a user's request rate.
STATIC_PATHS: Final = frozenset(f"/static/{file.name}" for file in STATIC_DIR.iterdir())

#: The pages' policy: only this origin's files; no inline script or style, no framing.
PAGE_CSP: Final = (
    "default-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'; "
    "object-src 'none'"
)

_PAGE_PREFIXES: Final = (
    "/sign-in",
    "/sign-out",
    "/reports/",
    "/data-portability",
    "/notifications",
    "/scheduled-reports",
    "/subscriptions",
    "/static/",
)


def is_page(path: str) -> bool:
    """Whether a path belongs to the web app (pages, their files) rather than the API."""
    return path == "/" or path.startswith(_PAGE_PREFIXES)


async def _to_sign_in(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, SignInRequired)
    target = "/sign-in"
    if exc.back_to != "/":
        target += "?" + urlencode({"next": exc.back_to})
    return RedirectResponse(target, status_code=303)


def _message(request: Request, *, status_code: int, title: str, message: str) -> HTMLResponse:
    principal = signed_in(request)
    if principal is None:
        return render(
            request,
            "message.html",
            principal=None,
            status_code=status_code,
            title=title,
            message=message,
        )
    return render_page(
        request,
        principal,
        "message.html",
        status_code=status_code,
        title=title,
        message=message,
    )


async def _not_verified(request: Request, exc: Exception) -> HTMLResponse:
    return _message(
        request,
        status_code=403,
        title="This form could not be sent",
        message="It did not carry this session's security token. Go back, reload the page "
        "and try again.",
    )


def _unreadable(request: Request) -> HTMLResponse:
    return _message(
        request,
        status_code=400,
        title="This could not be read",
        message="Part of what was sent is not text this site accepts. Go back and try again.",
    )


def install_web(app: FastAPI) -> None:
    """Add the pages, their static files and the exceptions they answer with."""
    app.include_router(router)
    app.mount("/static", VersionedStaticFiles(directory=STATIC_DIR), name="static")
    app.add_exception_handler(SignInRequired, _to_sign_in)
    app.add_exception_handler(FormNotVerified, _not_verified)
    # A page's malformed input is answered with a page; the API keeps its JSON error.
    api_handler = app.exception_handlers[RequestValidationError]

    async def validation_failed(request: Request, exc: Exception) -> Response:
        if is_page(request.url.path):
            return _unreadable(request)
        answer = api_handler(request, exc)
        return await answer if inspect.isawaitable(answer) else answer

    app.add_exception_handler(RequestValidationError, validation_failed)
