"""Building the process's dependencies once, from settings and a database URL."""

from __future__ import annotations

from dataclasses import dataclass

import procrastinate
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from meritum_api.crypto.keys import load_keyring
from meritum_api.db.engine import make_engine, make_session_factory
from meritum_api.db.migrate import current_revision, head_revision
from meritum_api.domains.analytics.generation import WorkerDeps
from meritum_api.http.deps import AppDeps
from meritum_api.queue import make_defer_app
from meritum_api.settings import Settings
from meritum_api.storage.base import ReportStorage
from meritum_api.storage.factory import make_storage


class SchemaNotCurrent(RuntimeError):
    """The database is not at the migration revision this code expects."""


@dataclass(frozen=True, slots=True)
class Runtime:
    """Everything a server or worker process shares."""

    settings: Settings
    url: str
    engine: Engine
    session_factory: sessionmaker[Session]
    storage: ReportStorage
    queue: procrastinate.App

    def worker_deps(self) -> WorkerDeps:
        """The subset background jobs need."""
        return WorkerDeps(
            settings=self.settings,
            engine=self.engine,
            session_factory=self.session_factory,
            storage=self.storage,
        )

    def app_deps(self) -> AppDeps:
        """What the HTTP app is built from."""
        return AppDeps(
            settings=self.settings,
            engine=self.engine,
            session_factory=self.session_factory,
            storage=self.storage,
            queue=self.queue,
        )

    def close(self) -> None:
        """Release pooled connections."""
        self.engine.dispose()


def build_runtime(settings: Settings, url: str, *, require_current_schema: bool = True) -> Runtime:
    """Engine, storage (with its keys) and the deferring queue app for ``url``."""
    engine = make_engine(url)
    if require_current_schema:
        current, head = current_revision(engine), head_revision()
        if current != head:
            engine.dispose()
            raise SchemaNotCurrent(
                f"the database is at revision {current or 'none'}, this code needs {head}: "
                "run `meritum migrate`"
            )
    return Runtime(
        settings=settings,
        url=url,
        engine=engine,
        session_factory=make_session_factory(engine),
        storage=make_storage(settings, load_keyring(settings)),
        queue=make_defer_app(url=url, settings=settings),
    )
