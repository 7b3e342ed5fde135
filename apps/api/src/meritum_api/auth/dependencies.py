"""FastAPI dependencies that authenticate and authorise a request.

Use in routers::

    @router.get("/api/v1/reports/{report_id}")
    def get_report(ctx: Annotated[AuthContext, Depends(require(Permission.REPORT_VIEW))]): ...

The provider scope comes only from the session's user: no request field can
widen or change it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from functools import partial
from typing import Annotated

import anyio.to_thread
from fastapi import Depends, Request
from starlette.types import Scope

from meritum_api.auth import service
from meritum_api.auth.sessions import (
    CSRF_HEADER,
    SAFE_METHODS,
    Principal,
    credential_from,
    csrf_matches,
)
from meritum_api.context import AuthContext
from meritum_api.deps import Deps
from meritum_api.http.errors import ApiError
from meritum_shared.constants.auth import Permission

#: Where the authentication middleware leaves its verdict in ``scope["state"]``.
PRINCIPAL_STATE_KEY = "principal"


def unauthenticated() -> ApiError:
    """The 401 answer."""
    return ApiError(
        401,
        "UNAUTHENTICATED",
        "Authentication required",
        headers={"WWW-Authenticate": 'Bearer realm="meritum"'},
    )


def principal_in(scope: Scope) -> Principal | None:
    """The principal the authentication middleware resolved, if any."""
    state = scope.get("state")
    value = state.get(PRINCIPAL_STATE_KEY) if isinstance(state, dict) else None
    return value if isinstance(value, Principal) else None


async def _resolve(request: Request) -> Principal | None:
    state = request.scope.get("state")
    if isinstance(state, dict) and PRINCIPAL_STATE_KEY in state:
        return principal_in(request.scope)
    # No middleware ran (an app assembled by hand): resolve here.
    credential = credential_from(request.headers)
    if credential is None:
        return None
    deps: Deps = request.app.state.deps
    resolver = partial(
        service.resolve,
        session_factory=deps.session_factory,
        settings=deps.settings,
        credential=credential,
    )
    return await anyio.to_thread.run_sync(resolver)


async def current_principal(request: Request) -> Principal:
    """The signed-in principal, or 401; 403 ``CSRF_FAILED`` for an unsafe cookie request.

    A browser attaches the cookie to cross-site requests on its own; the
    CSRF token, which only the signed-in page holds, proves the request
    came from it. A bearer token is never sent by a browser on its own, so
    bearer requests need no CSRF token.
    """
    principal = await _resolve(request)
    if principal is None:
        raise unauthenticated()
    if (
        principal.via == "cookie"
        and request.method not in SAFE_METHODS
        and not csrf_matches(request.headers.get(CSRF_HEADER), principal.csrf_token_hash)
    ):
        raise ApiError(403, "CSRF_FAILED", "Missing or invalid CSRF token")
    return principal


async def current_context(
    principal: Annotated[Principal, Depends(current_principal)],
) -> AuthContext:
    """The authenticated context (provider scope, user, permissions), or 401."""
    return principal.context


#: ``ctx: CurrentContext`` in a route signature.
CurrentContext = Annotated[AuthContext, Depends(current_context)]
CurrentPrincipal = Annotated[Principal, Depends(current_principal)]


def forbidden() -> ApiError:
    """The 403 answer for a missing permission."""
    return ApiError(403, "FORBIDDEN", "You do not have permission to do this")


def require(permission: Permission) -> Callable[..., Awaitable[AuthContext]]:
    """A dependency returning the context if it holds ``permission``, else 403 FORBIDDEN."""

    # One dependency taking the request, not a chain of three: every level
    # FastAPI resolves costs time on each request of every guarded route.
    async def dependency(request: Request) -> AuthContext:
        ctx = (await current_principal(request)).context
        if not ctx.can(permission):
            raise forbidden()
        return ctx

    dependency.__name__ = f"require_{permission.value.lower()}"
    return dependency


def rate_limit_identity(scope: Scope) -> str | None:
    """The user id the rate limiter counts a request against (None: by address)."""
    principal = principal_in(scope)
    return str(principal.user_id) if principal else None
