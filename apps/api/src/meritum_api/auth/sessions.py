"""Session tokens, how a request presents one, and who it turns out to be.

A session token is 32 random bytes (``secrets.token_urlsafe``); the server
keeps only its SHA-256. Because the token is uniformly random and long, a
plain unsalted digest is enough: there is nothing to guess a dictionary
from, and a stolen table of digests does not let anyone sign in. The same
holds for the per-session CSRF token.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Final, Literal

from starlette.datastructures import Headers
from starlette.requests import cookie_parser

from meritum_api.context import AuthContext
from meritum_shared.constants.auth import Permission, UserRole

SESSION_COOKIE: Final = "meritum_session"
CSRF_HEADER: Final = "X-CSRF-Token"
#: Methods that change nothing and so need no CSRF token.
SAFE_METHODS: Final = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})

_TOKEN_SHAPE: Final = re.compile(r"^[A-Za-z0-9_-]{32,128}$")

Via = Literal["cookie", "bearer"]


def new_token() -> str:
    """A fresh random token (256 bits, URL-safe text)."""
    return secrets.token_urlsafe(32)


def digest(token: str) -> bytes:
    """The SHA-256 under which a token is stored."""
    return hashlib.sha256(token.encode()).digest()


def well_formed(token: str) -> bool:
    """Whether ``token`` could be one of ours (saves a database look-up if not)."""
    return _TOKEN_SHAPE.fullmatch(token) is not None


def csrf_matches(supplied: str | None, stored_digest: bytes) -> bool:
    """Constant-time comparison of a supplied CSRF token with the stored digest."""
    if not supplied:
        return False
    return hmac.compare_digest(digest(supplied), stored_digest)


@dataclass(frozen=True, slots=True)
class Credential:
    """A session token as a request presented it."""

    token: str = field(repr=False)
    via: Via


def credential_from(headers: Headers) -> Credential | None:
    """The request's credential: ``Authorization: Bearer`` first, else the cookie.

    A present but malformed ``Authorization`` header yields an empty (invalid)
    bearer credential rather than falling back to the cookie: a client that
    says how it authenticates is taken at its word.
    """
    authorization = headers.get("authorization")
    if authorization is not None:
        scheme, _, value = authorization.strip().partition(" ")
        token = value.strip() if scheme.lower() == "bearer" else ""
        return Credential(token, "bearer")
    cookie = headers.get("cookie")
    if cookie:
        from_cookie = cookie_parser(cookie).get(SESSION_COOKIE)
        if from_cookie:
            return Credential(from_cookie, "cookie")
    return None


@dataclass(frozen=True, slots=True)
class Principal:
    """The signed-in user behind a request, and the session it came through."""

    session_id: uuid.UUID
    user_id: uuid.UUID
    provider_id: uuid.UUID
    role: UserRole
    permissions: frozenset[Permission]
    expires_at: datetime
    via: Via
    csrf_token_hash: bytes = field(repr=False)

    @property
    def context(self) -> AuthContext:
        """The scope every repository call takes."""
        return AuthContext(
            provider_id=self.provider_id, user_id=self.user_id, permissions=self.permissions
        )
