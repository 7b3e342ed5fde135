"""The FastAPI application factory."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from pydantic import BaseModel
from sqlalchemy import text

from meritum_api.auth.dependencies import rate_limit_identity
from meritum_api.auth.middleware import AuthenticationMiddleware
from meritum_api.auth.resolver import SessionResolver
from meritum_api.auth.router import install_auth
from meritum_api.db.migrate import current_revision
from meritum_api.db.reads import ReadPool
from meritum_api.deps import Deps
from meritum_api.domains.analytics.errors import install_report_errors
from meritum_api.domains.analytics.router import router as reports_router
from meritum_api.domains.notifications.errors import install_notification_errors
from meritum_api.domains.notifications.router import router as notifications_router
from meritum_api.domains.subscriptions.errors import install_subscription_errors
from meritum_api.domains.subscriptions.router import router as subscriptions_router
from meritum_api.http.deps import AppDeps
from meritum_api.http.docs import install_docs
from meritum_api.http.errors import install_error_handlers
from meritum_api.http.log_redaction import install_log_redaction
from meritum_api.http.middleware import DOCS_PATHS, BodyPolicyMiddleware, HardeningMiddleware
from meritum_api.http.openapi import ALWAYS, install_openapi
from meritum_api.ratelimit import (
    DEFAULT_EXEMPT,
    AsyncRateLimiter,
    RateLimiter,
    RateLimitMiddleware,
)
from meritum_web.app import PAGE_CSP, STATIC_PATHS, install_web, is_page

__all__ = ["create_app"]


class Health(BaseModel):
    status: str
    postgres_version: str
    migration_revision: str | None


class HealthEnvelope(BaseModel):
    data: Health


def create_app(deps: Deps) -> FastAPI:
    """Build the app around explicit dependencies."""
    settings = deps.settings
    install_log_redaction()
    # The interactive docs are served from this origin (see http/docs.py),
    # and in development only: see DOCS_CSP for why.
    development = settings.environment == "development"
    sessions = SessionResolver(
        engine=deps.engine, session_factory=deps.session_factory, settings=settings
    )

    reads = ReadPool(deps.url, size=settings.api_read_connections)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # The session cache answers only while its listener runs.
        try:
            async with sessions.running():
                yield
        finally:
            await reads.close()

    app = FastAPI(
        lifespan=lifespan,
        title="Meritum Reports API",
        version="0.1.0",
        docs_url=None,
        redoc_url=None,
        openapi_url="/openapi.json" if development else None,
    )
    app.state.deps = deps
    app.state.sessions = sessions
    app.state.reads = reads
    app.state.login_throttle = RateLimiter(
        amount=settings.login_max_failures, seconds=settings.login_failure_window_seconds
    )
    install_error_handlers(app)
    install_report_errors(app)
    install_notification_errors(app)
    install_subscription_errors(app)
    install_auth(app)
    app.include_router(reports_router)
    app.include_router(notifications_router)
    app.include_router(subscriptions_router)
    install_openapi(app)
    if development:
        install_docs(app, openapi_url="/openapi.json")
    install_web(app)

    @app.get("/health", tags=["operations"], responses=ALWAYS)
    def health(deps: AppDeps) -> HealthEnvelope:
        """PostgreSQL server version and the schema's migration revision."""
        with deps.engine.connect() as conn:
            version = conn.execute(text("SHOW server_version")).scalar_one()
        return HealthEnvelope(
            data=Health(
                status="ok",
                postgres_version=str(version),
                migration_revision=current_revision(deps.engine),
            )
        )

    # Added innermost first: the last one added is the outermost.
    app.add_middleware(
        RateLimitMiddleware,
        limiter=AsyncRateLimiter(amount=settings.rate_limit_per_minute, seconds=60),
        identify=rate_limit_identity,
        exempt_paths=DEFAULT_EXEMPT | STATIC_PATHS,
    )
    app.add_middleware(AuthenticationMiddleware, resolve=sessions.resolve)
    app.add_middleware(
        BodyPolicyMiddleware, max_body_bytes=settings.max_body_bytes, accepts_form=is_page
    )
    app.add_middleware(
        HardeningMiddleware,
        hsts=not development,
        docs_paths=DOCS_PATHS if development else (),
        page_csp=PAGE_CSP,
        is_page=is_page,
    )
    return app
