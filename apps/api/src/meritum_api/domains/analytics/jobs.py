"""The reports domain's background jobs, registered on a procrastinate app."""

from __future__ import annotations

import logging
import uuid
from typing import Any

import procrastinate
from procrastinate import JobContext, RetryStrategy
from procrastinate.exceptions import AlreadyEnqueued
from procrastinate.jobs import Status
from sqlalchemy.orm import Session

from meritum_api.auth.service import purge_expired_sessions
from meritum_api.domains.analytics.cleanup import run_cleanup
from meritum_api.domains.analytics.generation import WorkerDeps, generate_report
from meritum_api.settings import Settings

log = logging.getLogger(__name__)

GENERATE = "reports.generate"
CLEANUP = "reports.retention_cleanup"
RETRY_STALLED = "queue.retry_stalled"

REPORTS_QUEUE = "reports"
MAINTENANCE_QUEUE = "maintenance"
QUEUES = (REPORTS_QUEUE, MAINTENANCE_QUEUE)


def _deps(context: JobContext) -> WorkerDeps:
    deps: WorkerDeps = context.additional_context["deps"]
    return deps


def register_tasks(app: procrastinate.App, settings: Settings) -> None:
    """Register the generation, cleanup and stalled-job tasks on ``app``."""
    retry = RetryStrategy(
        max_attempts=settings.generation_retries,
        exponential_wait=settings.generation_backoff_seconds,
    )

    def generate(context: JobContext, report_id: str) -> str:
        job = context.job

        def is_final(exc: BaseException) -> bool:
            return retry.get_retry_decision(exception=exc, job=job) is None

        outcome = generate_report(
            deps=_deps(context), report_id=uuid.UUID(report_id), is_final_attempt=is_final
        )
        return outcome.value

    app.task(name=GENERATE, queue=REPORTS_QUEUE, pass_context=True, retry=retry)(generate)

    def cleanup(context: JobContext, timestamp: int) -> dict[str, int]:
        deps = _deps(context)
        result = run_cleanup(deps=deps)
        # Expired login sessions are refused already; this only reclaims their rows.
        with deps.session_factory() as session:
            sessions = purge_expired_sessions(session=session)
        return {
            "expired": result.expired,
            "files_deleted": result.files_deleted,
            "orphans_deleted": result.orphans_deleted,
            "partials_discarded": result.partials_discarded,
            "sessions_purged": sessions,
        }

    # A singleton: the lock keeps runs from overlapping, whichever worker takes
    # them (a run whose worker died is finished by the stalled check, which
    # frees the lock); the queueing lock keeps at most one run waiting.
    cleanup_task = app.task(
        name=CLEANUP,
        queue=MAINTENANCE_QUEUE,
        pass_context=True,
        lock=CLEANUP,
        queueing_lock=CLEANUP,
    )(cleanup)
    app.periodic(cron=settings.cleanup_cron, periodic_id="retention")(cleanup_task)

    async def retry_stalled(context: JobContext, timestamp: int) -> int:
        # A worker killed mid-job leaves its job "doing" forever; once the
        # worker has missed heartbeats for long enough, deal with the job.
        manager = context.app.job_manager
        stalled = await manager.get_stalled_jobs(
            seconds_since_heartbeat=settings.stalled_after_seconds
        )
        handled = 0
        for job in stalled:
            try:
                if job.task_name == GENERATE:
                    log.warning("job %s (%s) stalled: retrying it", job.id, job.task_name)
                    await manager.retry_job(job)
                else:
                    # Periodic maintenance: the next run does the same work.
                    # Finishing the dead run releases its lock, which would
                    # otherwise keep every later run (this one too) waiting.
                    log.warning("job %s (%s) stalled: abandoned", job.id, job.task_name)
                    await manager.finish_job(job, status=Status.FAILED, delete_job=False)
            except Exception:  # another checker dealt with it first
                log.warning("job %s (%s) stalled: already handled elsewhere", job.id, job.task_name)
                continue
            handled += 1
        return handled

    # No ``lock``: a checker killed mid-run would hold it and stop every later
    # check. The queueing lock keeps at most one check waiting; two running at
    # once (on two workers) are harmless, the slower one finds nothing left.
    stalled_task = app.task(
        name=RETRY_STALLED,
        queue=MAINTENANCE_QUEUE,
        pass_context=True,
        queueing_lock=RETRY_STALLED,
    )(retry_stalled)
    app.periodic(cron=settings.stalled_check_cron, periodic_id="stalled")(stalled_task)


def defer_generation(*, app: procrastinate.App, session: Session, report_id: uuid.UUID) -> bool:
    """Enqueue generation inside the session's transaction; False if already queued.

    Enqueued in the same transaction as the report row: both commit or
    neither does, so a committed report always has its job.
    """
    task = app.tasks[GENERATE]
    lock = f"report:{report_id}"
    job = task.configure(lock=lock, queueing_lock=lock).make_new_job(report_id=str(report_id))
    connection: Any = session.connection().connection.driver_connection
    try:
        app.job_manager.defer_job(job, connection=connection)
    except AlreadyEnqueued:
        return False
    return True
