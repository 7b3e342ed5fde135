"""What the app is built from, and the per-request database session."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Annotated

import procrastinate
from fastapi import Depends, Request
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from meritum_api.settings import Settings
from meritum_api.storage.base import ReportStorage


@dataclass(frozen=True, slots=True)
class AppDeps:
    """What the app is built from; tests build several side by side."""

    settings: Settings
    engine: Engine
    session_factory: sessionmaker[Session]
    #: Where report files are read from (decrypted on the way out).
    storage: ReportStorage
    #: Used only to enqueue report generation inside a request's transaction.
    queue: procrastinate.App


async def get_deps(request: Request) -> AppDeps:
    """The dependencies the app was created with (async: no thread hop for a lookup)."""
    deps: AppDeps = request.app.state.deps
    return deps


def get_session(deps: Annotated[AppDeps, Depends(get_deps)]) -> Iterator[Session]:
    """A database session for one request, closed (and rolled back if open) after it."""
    with deps.session_factory() as session:
        yield session
