"""Resolving a request's session once, before rate limiting and routing.

The rate limiter counts signed-in users by user id, so the session is looked
up before it; the result is left in ``scope["state"]`` for the dependencies
(:func:`meritum_api.auth.dependencies.current_principal`), which then need no
second look-up. An absent or invalid credential leaves ``None``: refusing it
is the dependencies' job, so public routes (login, health) still work.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from meritum_api.auth.dependencies import PRINCIPAL_STATE_KEY
from meritum_api.auth.sessions import Credential, Principal, credential_from


class AuthenticationMiddleware:
    """Looks up the presented session (see :class:`~meritum_api.auth.resolver.SessionResolver`)."""

    def __init__(
        self, app: ASGIApp, *, resolve: Callable[[Credential], Awaitable[Principal | None]]
    ) -> None:
        self.app = app
        self.resolve = resolve

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            credential = credential_from(Headers(scope=scope))
            principal = None
            if credential is not None:
                principal = await self.resolve(credential)
            scope.setdefault("state", {})[PRINCIPAL_STATE_KEY] = principal
        await self.app(scope, receive, send)
