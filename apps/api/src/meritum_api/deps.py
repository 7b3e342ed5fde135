"""The one dependency container: built once per process, used by the app, the worker and the CLI.

Nothing here is a global: each process (and each test) builds its own
:class:`Deps` with :func:`build_deps` and passes it on explicitly.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from email.message import EmailMessage
from enum import StrEnum
from typing import Protocol

import procrastinate
from procrastinate import SyncPsycopgConnector
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from meritum_api.calendar import ALBERTA, BusinessCalendar
from meritum_api.clock import Clock, SystemClock
from meritum_api.crypto.keys import Keyring, load_keyring
from meritum_api.db.cluster import libpq_dsn
from meritum_api.db.engine import make_engine, make_session_factory
from meritum_api.db.migrate import current_revision, head_revision
from meritum_api.domains.analytics.effects import DEFAULT_EFFECTS, Effect
from meritum_api.domains.analytics.generators import Generator, generator_for
from meritum_api.mail import make_mailer
from meritum_api.settings import Settings
from meritum_api.storage.base import ReportStorage
from meritum_api.storage.factory import make_storage
from meritum_api.tasks import register_all
from meritum_shared.constants.analytics import ReportFormat, ReportType


class SchemaNotCurrent(RuntimeError):
    """The database is not at the migration revision this code expects."""


class Role(StrEnum):
    """What a process does, which decides how many database connections it needs."""

    #: ``meritum serve``: the API, and a worker unless MERITUM_SERVE_WITH_WORKER is false.
    SERVE = "serve"
    #: ``meritum worker``: background jobs only.
    WORKER = "worker"
    #: A one-off command (migrate, seed) or a test harness.
    COMMAND = "command"


class Mailer(Protocol):
    """Sends one message; the email outbox job is its only caller."""

    def send(self, message: EmailMessage) -> None:
        """Deliver ``message`` or raise."""
        ...


#: Connections one generation job holds at once: the transaction that keeps
#: the report's row lock, and the connection the generator reads on.
CONNECTIONS_PER_JOB = 2


def pool_size(settings: Settings, role: Role) -> int:
    """Connections the process's SQLAlchemy pool keeps, from its role and settings.

    The API needs ``api_db_connections`` (requests run in a thread pool; each
    holds one connection while it runs). A worker needs two per concurrent
    job and one for a periodic maintenance job. The queue's own asynchronous
    pool (LISTEN/NOTIFY, fetching jobs) is separate: see ``tasks``.
    """
    api = settings.api_db_connections
    worker = settings.worker_concurrency * CONNECTIONS_PER_JOB + 1
    if role is Role.SERVE:
        return api + (worker if settings.serve_with_worker else 0)
    if role is Role.WORKER:
        return worker
    return 2


@dataclass(frozen=True, slots=True)
class Deps:
    """Everything the process's code depends on; tests build several side by side."""

    settings: Settings
    #: The SQLAlchemy URL of the database (``postgresql+psycopg://…``).
    url: str
    engine: Engine
    session_factory: sessionmaker[Session]
    #: Encrypted report files (local directory or S3).
    storage: ReportStorage
    #: The master keys: storage wraps data keys with them, secrets are sealed under them.
    keyring: Keyring
    #: Defers jobs inside a caller's transaction; never opened, never runs a worker.
    queue: procrastinate.App
    clock: Clock
    #: Which generator produces a (type, format): the registry unless a benchmark swaps it.
    generators: Callable[[ReportType, ReportFormat], Generator] = generator_for
    #: Email delivery (SMTP, or .eml files in development); None when neither applies.
    mailer: Mailer | None = None
    #: Business days and run instants (Alberta holidays; optional ones by a setting).
    calendar: BusinessCalendar = ALBERTA
    #: What is written, in the settling transaction, when a report becomes ready or failed.
    settle_effects: tuple[Effect, ...] = DEFAULT_EFFECTS
    #: Whether :meth:`close` disposes of the engine (False when the caller lent it).
    owns_engine: bool = True

    def replace(self, **changes: object) -> Deps:
        """A copy with some dependencies swapped (tests, benchmarks)."""
        return dataclasses.replace(self, **changes)  # type: ignore[arg-type]

    def close(self) -> None:
        """Release pooled connections the container owns."""
        if self.owns_engine:
            self.engine.dispose()


def make_defer_queue(*, url: str, settings: Settings) -> procrastinate.App:
    """A queue app used only to defer jobs inside a caller's transaction."""
    app = procrastinate.App(connector=SyncPsycopgConnector(conninfo=libpq_dsn(url)))
    register_all(app, settings)
    return app


def build_deps(
    settings: Settings,
    url: str,
    *,
    role: Role,
    engine: Engine | None = None,
    clock: Clock | None = None,
    keyring: Keyring | None = None,
    require_current_schema: bool = True,
) -> Deps:
    """The process's container for ``url``: engine, storage and keys, the deferring queue."""
    # Keys first: a misconfigured key is reported before the database is touched.
    keyring = keyring or load_keyring(settings)
    owns_engine = engine is None
    if engine is None:
        engine = make_engine(url, pool_size=pool_size(settings, role))
    try:
        if require_current_schema:
            current, head = current_revision(engine), head_revision()
            if current != head:
                raise SchemaNotCurrent(
                    f"the database is at revision {current or 'none'}, this code needs {head}: "
                    "run `meritum migrate`"
                )
        return Deps(
            settings=settings,
            url=url,
            engine=engine,
            session_factory=make_session_factory(engine),
            storage=make_storage(settings, keyring),
            keyring=keyring,
            queue=make_defer_queue(url=url, settings=settings),
            clock=clock or SystemClock(),
            mailer=make_mailer(settings),
            calendar=BusinessCalendar.from_settings(settings),
            owns_engine=owns_engine,
        )
    except BaseException:
        if owns_engine:
            engine.dispose()
        raise
