"""The job queue (procrastinate on PostgreSQL): apps for deferring and for working."""

from __future__ import annotations

import procrastinate
from procrastinate import PsycopgConnector, SyncPsycopgConnector

from meritum_api.db.cluster import libpq_dsn
from meritum_api.domains.analytics.generation import WorkerDeps
from meritum_api.domains.analytics.jobs import QUEUES, register_tasks
from meritum_api.settings import Settings


def make_defer_app(*, url: str, settings: Settings) -> procrastinate.App:
    """An app used only to defer jobs inside a caller's transaction (never opened)."""
    app = procrastinate.App(connector=SyncPsycopgConnector(conninfo=libpq_dsn(url)))
    register_tasks(app, settings)
    return app


def make_worker_app(*, url: str, settings: Settings) -> procrastinate.App:
    """An app for running workers (asynchronous connection pool, LISTEN/NOTIFY)."""
    connector = PsycopgConnector(
        conninfo=libpq_dsn(url), min_size=1, max_size=settings.worker_concurrency + 3
    )
    app = procrastinate.App(connector=connector)
    register_tasks(app, settings)
    return app


async def run_worker(
    app: procrastinate.App,
    *,
    deps: WorkerDeps,
    name: str | None = None,
    install_signal_handlers: bool = True,
    poll_seconds: float = 5.0,
) -> None:
    """Run a worker until cancelled or signalled; the app must be open."""
    settings = deps.settings
    await app.run_worker_async(
        queues=list(QUEUES),
        name=name or "worker",
        concurrency=settings.worker_concurrency,
        additional_context={"deps": deps},
        update_heartbeat_interval=settings.heartbeat_seconds,
        stalled_worker_timeout=settings.stalled_after_seconds,
        install_signal_handlers=install_signal_handlers,
        # New jobs arrive by LISTEN/NOTIFY; polling only covers missed notifications
        # and jobs whose retry time has come.
        fetch_job_polling_interval=poll_seconds,
        # Finished jobs carry nothing worth keeping; failed ones are kept to inspect.
        delete_jobs="successful",
    )
