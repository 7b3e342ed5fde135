"""Who is signed in on a page, the form CSRF token, and where a sign-in may lead back to.

The API's CSRF token is handed to a client once, at login, and the server
keeps only its digest. A page cannot ask the server for it again, so the web
sign-in leaves it in a second cookie (HttpOnly, SameSite=Strict) from which
each page copies it into its forms' hidden field. A foreign page can make
the browser send both cookies, but it can neither read them nor the page,
so it cannot fill in the field: the server compares the *field* with the
session's digest, exactly as the API compares its ``X-CSRF-Token`` header.
"""

from __future__ import annotations

from typing import Final
from urllib.parse import urlsplit

from starlette.requests import Request

from meritum_api.auth.dependencies import principal_in
from meritum_api.auth.sessions import Principal, csrf_matches

CSRF_COOKIE: Final = "meritum_csrf"
#: The hidden form field every POST carries.
CSRF_FIELD: Final = "csrf_token"


class SignInRequired(Exception):
    """The page needs a signed-in user; answered with a redirect to the sign-in page."""

    def __init__(self, back_to: str) -> None:
        super().__init__("sign-in required")
        self.back_to = back_to


class FormNotVerified(Exception):
    """A form POST without the session's CSRF token (or from another site)."""


def signed_in(request: Request) -> Principal | None:
    """The principal the authentication middleware resolved from the session cookie."""
    principal = principal_in(request.scope)
    return principal if principal is not None and principal.via == "cookie" else None


def require_signed_in(request: Request) -> Principal:
    """The signed-in principal, or :class:`SignInRequired` naming this page."""
    principal = signed_in(request)
    if principal is None:
        path = request.url.path
        query = request.url.query
        raise SignInRequired(f"{path}?{query}" if query else path)
    return principal


def check_form(principal: Principal, supplied: str) -> None:
    """Raise :class:`FormNotVerified` unless ``supplied`` is the session's CSRF token."""
    if not supplied.isascii() or not csrf_matches(supplied, principal.csrf_token_hash):
        raise FormNotVerified


def same_origin(request: Request) -> bool:
    """Whether a POST came from one of our pages.

    Browsers say so in ``Sec-Fetch-Site``. ``Origin`` is the fallback for
    those that do not; under ``Referrer-Policy: no-referrer`` a browser sends
    ``Origin: null`` for a form, so only a real origin is compared.
    """
    fetch_site = request.headers.get("sec-fetch-site")
    if fetch_site is not None:
        return fetch_site == "same-origin"
    origin = request.headers.get("origin")
    if origin is None or origin == "null":
        return True
    return urlsplit(origin).netloc.lower() == request.headers.get("host", "").lower()


def safe_next(value: str | None) -> str:
    """A same-site path to go back to after signing in; anything else becomes ``/``."""
    if not value or not value.startswith("/") or value.startswith(("//", "/\\")):
        return "/"
    # It becomes a Location header: printable ASCII only (a browser sends no other).
    if not all("!" <= c <= "~" for c in value):
        return "/"
    parts = urlsplit(value)
    if parts.scheme or parts.netloc or parts.path.startswith("/api/"):
        return "/"
    return value
