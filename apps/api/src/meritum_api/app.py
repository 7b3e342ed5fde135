"""The FastAPI application factory."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, FastAPI, Request
from pydantic import BaseModel
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session, sessionmaker

from meritum_api.db.migrate import current_revision
from meritum_api.settings import Settings


@dataclass(frozen=True, slots=True)
class AppDeps:
    """What the app is built from; tests build several side by side."""

    settings: Settings
    engine: Engine
    session_factory: sessionmaker[Session]


def get_deps(request: Request) -> AppDeps:
    """The dependencies the app was created with."""
    deps: AppDeps = request.app.state.deps
    return deps


def get_session(deps: Annotated[AppDeps, Depends(get_deps)]) -> Iterator[Session]:
    """A database session for one request, closed (and rolled back if open) after it."""
    with deps.session_factory() as session:
        yield session


class Health(BaseModel):
    status: str
    postgres_version: str
    migration_revision: str | None


class HealthEnvelope(BaseModel):
    data: Health


def create_app(deps: AppDeps) -> FastAPI:
    """Build the app around explicit dependencies."""
    app = FastAPI(title="Meritum Reports API", version="0.1.0")
    app.state.deps = deps

    @app.get("/health", tags=["operations"])
    def health(deps: Annotated[AppDeps, Depends(get_deps)]) -> HealthEnvelope:
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

    return app
