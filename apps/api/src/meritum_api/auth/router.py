"""``/api/v1/auth``: login, logout, who am I."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlsplit

from fastapi import APIRouter, Depends, FastAPI, Request, Response

from meritum_api.auth import service
from meritum_api.auth.dependencies import CurrentPrincipal
from meritum_api.auth.resolver import forget_ended
from meritum_api.auth.schemas import LoginData, LoginEnvelope, LoginRequest, Me, MeEnvelope
from meritum_api.auth.sessions import SESSION_COOKIE, Principal
from meritum_api.http.deps import AppDeps
from meritum_api.http.errors import ApiError, register_error_mapping
from meritum_api.http.openapi import ALWAYS, error_response
from meritum_api.ratelimit import RateLimiter, rate_limited
from meritum_api.settings import Settings
from meritum_shared.constants.auth import Permission

router = APIRouter(prefix="/api/v1/auth", tags=["auth"])

INVALID_CREDENTIALS = ApiError(
    401,
    "INVALID_CREDENTIALS",
    "Invalid email or password",
    headers={"WWW-Authenticate": 'Bearer realm="meritum"'},
)


def secure_cookies(settings: Settings) -> bool:
    """Cookies are ``Secure`` everywhere but on a developer's plain-http machine."""
    return settings.environment != "development"


def _refuse_cross_origin(request: Request) -> None:
    # Login CSRF: a foreign page must not sign the browser into an account
    # of the attacker's choosing. Browsers send Origin on every cross-origin
    # POST; same-origin requests and non-browser clients may omit it. A
    # reverse proxy that rewrites Host passes the original in
    # X-Forwarded-Host; a foreign page cannot set that header (it would need
    # a CORS preflight, which this API never grants).
    origin = request.headers.get("origin")
    hosts = {
        request.headers.get("host", "").lower(),
        request.headers.get("x-forwarded-host", "").split(",")[0].strip().lower(),
    } - {""}
    if request.headers.get("sec-fetch-site") == "cross-site" or (
        origin is not None and urlsplit(origin).netloc.lower() not in hosts
    ):
        raise ApiError(403, "CSRF_FAILED", "Cross-origin login refused")


def _login_throttle(request: Request) -> RateLimiter | None:
    throttle: RateLimiter | None = getattr(request.app.state, "login_throttle", None)
    return throttle


def _ordered(permissions: frozenset[Permission]) -> list[Permission]:
    return [p for p in Permission if p in permissions]


def _me(principal: Principal) -> Me:
    return Me(
        user_id=principal.user_id,
        provider_id=principal.provider_id,
        role=principal.role,
        permissions=_ordered(principal.permissions),
        expires_at=principal.expires_at,
    )


@router.post(
    "/login",
    responses={
        **ALWAYS,
        400: error_response("Malformed request body"),
        401: error_response("Invalid email or password"),
        403: error_response("A login from another origin"),
        413: error_response("The request body is too large"),
    },
)
def login(
    body: LoginRequest,
    request: Request,
    response: Response,
    deps: AppDeps,
    throttle: Annotated[RateLimiter | None, Depends(_login_throttle)],
) -> LoginEnvelope:
    """Sign in: a session cookie, plus the CSRF token (and the bearer token) in the body."""
    _refuse_cross_origin(request)
    with deps.session_factory.begin() as session:
        result = service.login(
            session=session,
            settings=deps.settings,
            email=body.email,
            password=body.password.get_secret_value(),
            throttle=throttle,
        )
    if isinstance(result, service.InvalidCredentials):
        raise result  # its audit entry is committed
    # No Max-Age: the server decides when the session ends (the expiry
    # slides with use), the cookie just carries it until the browser closes.
    response.set_cookie(
        SESSION_COOKIE,
        result.token,
        path="/",
        secure=secure_cookies(deps.settings),
        httponly=True,
        samesite="lax",
    )
    me = _me(result.principal)
    return LoginEnvelope(
        data=LoginData(**me.model_dump(), csrf_token=result.csrf_token, token=result.token)
    )


@router.post(
    "/logout",
    status_code=204,
    response_class=Response,
    responses={
        **ALWAYS,
        401: error_response("Not authenticated"),
        403: error_response("A cookie-authenticated request without its CSRF token"),
    },
)
def logout(
    request: Request,
    principal: CurrentPrincipal,
    deps: AppDeps,
) -> Response:
    """End the session and clear the cookie."""
    with deps.session_factory.begin() as session:
        service.logout(session=session, principal=principal)
    forget_ended(request.app, principal)
    response = Response(status_code=204)
    response.delete_cookie(
        SESSION_COOKIE,
        path="/",
        secure=secure_cookies(deps.settings),
        httponly=True,
        samesite="lax",
    )
    return response


@router.get("/me", responses={**ALWAYS, 401: error_response("Not authenticated")})
def me(principal: CurrentPrincipal) -> MeEnvelope:
    """Who is signed in, for which provider, with which permissions."""
    return MeEnvelope(data=_me(principal))


def install_auth(app: FastAPI) -> None:
    """Add the auth routes and map the auth service's exceptions."""
    app.include_router(router)
    register_error_mapping(app, service.InvalidCredentials, INVALID_CREDENTIALS)
    register_error_mapping(
        app, service.TooManyLoginFailures, lambda exc: rate_limited(exc.retry_after)
    )
