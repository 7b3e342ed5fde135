"""Every background task of the service, collected from the domains' blueprints in one place."""

from __future__ import annotations

from typing import TYPE_CHECKING

import procrastinate
from procrastinate import PsycopgConnector

from meritum_api import maintenance
from meritum_api.auth import jobs as auth_jobs
from meritum_api.db.cluster import libpq_dsn
from meritum_api.domains.analytics import jobs as report_jobs
from meritum_api.domains.notifications import jobs as notification_jobs
from meritum_api.domains.notifications.outbox import SEND_EMAIL
from meritum_api.domains.subscriptions import jobs as subscription_jobs
from meritum_api.settings import Settings

if TYPE_CHECKING:
    from meritum_api.deps import Deps

#: The queues a worker takes jobs from.
QUEUES = (report_jobs.QUEUE, notification_jobs.QUEUE, report_jobs.MAINTENANCE_QUEUE)

#: Names the tasks had before they were declared per domain, so jobs queued
#: under them by an older version still run.
_LEGACY_NAMES = {
    report_jobs.GENERATE: "reports.generate",
    report_jobs.CLEANUP: "reports.retention_cleanup",
    maintenance.RETRY_STALLED: "queue.retry_stalled",
}


def register_all(app: procrastinate.App, settings: Settings) -> None:
    """Add every domain's blueprint to ``app``, each under its namespace."""
    app.add_tasks_from(report_jobs.blueprint(settings), namespace=report_jobs.NAMESPACE)
    app.add_tasks_from(auth_jobs.blueprint(settings), namespace=auth_jobs.NAMESPACE)
    app.add_tasks_from(notification_jobs.blueprint(settings), namespace=notification_jobs.NAMESPACE)
    app.add_tasks_from(subscription_jobs.blueprint(settings), namespace=subscription_jobs.NAMESPACE)
    app.add_tasks_from(
        maintenance.blueprint(settings, retry_when_stalled={report_jobs.GENERATE, SEND_EMAIL}),
        namespace=maintenance.NAMESPACE,
    )
    for name, legacy in _LEGACY_NAMES.items():
        app.add_task_alias(app.tasks[name], legacy)


def make_worker_queue(*, url: str, settings: Settings) -> procrastinate.App:
    """A queue app for running workers (asynchronous connection pool, LISTEN/NOTIFY)."""
    # One connection listens, one fetches, one per running job reports its end,
    # and one spare for the periodic deferrer.
    connector = PsycopgConnector(
        conninfo=libpq_dsn(url), min_size=1, max_size=settings.worker_concurrency + 3
    )
    app = procrastinate.App(connector=connector)
    register_all(app, settings)
    return app


async def run_worker(
    app: procrastinate.App,
    *,
    deps: Deps,
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
