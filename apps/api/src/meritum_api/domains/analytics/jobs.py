"""The reports domain's background tasks: generation and retention, as one blueprint."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

import procrastinate
from procrastinate import Blueprint, JobContext, RetryStrategy
from procrastinate.exceptions import AlreadyEnqueued
from sqlalchemy.orm import Session

from meritum_api.domains.analytics.cleanup import run_cleanup
from meritum_api.domains.analytics.generation import generate_report
from meritum_api.settings import Settings

if TYPE_CHECKING:
    from meritum_api.deps import Deps

NAMESPACE = "reports"
GENERATE = f"{NAMESPACE}:generate"
CLEANUP = f"{NAMESPACE}:retention_cleanup"
QUEUE = "reports"
MAINTENANCE_QUEUE = "maintenance"


def deps_of(context: JobContext) -> Deps:
    """The container the worker was started with."""
    deps: Deps = context.additional_context["deps"]
    return deps


def blueprint(settings: Settings) -> Blueprint:
    """Generation (retried with backoff) and the periodic retention cleanup (a singleton)."""
    bp = Blueprint()
    # procrastinate reads max_attempts=0 as "no limit": no retries is no strategy.
    retry = (
        RetryStrategy(
            max_attempts=settings.generation_retries,
            exponential_wait=settings.generation_backoff_seconds,
        )
        if settings.generation_retries
        else None
    )

    @bp.task(name="generate", queue=QUEUE, pass_context=True, retry=retry or False)
    def generate(context: JobContext, report_id: str) -> str:
        job = context.job

        def is_final(exc: BaseException) -> bool:
            return retry is None or retry.get_retry_decision(exception=exc, job=job) is None

        outcome = generate_report(
            deps=deps_of(context), report_id=uuid.UUID(report_id), is_final_attempt=is_final
        )
        return outcome.value

    # A singleton: the lock keeps runs from overlapping, whichever worker takes
    # them (a run whose worker died is finished by the stalled check, which
    # frees the lock); the queueing lock keeps at most one run waiting.
    @bp.periodic(cron=settings.cleanup_cron, periodic_id="retention")
    @bp.task(
        name="retention_cleanup",
        queue=MAINTENANCE_QUEUE,
        pass_context=True,
        lock=CLEANUP,
        queueing_lock=CLEANUP,
    )
    def cleanup(context: JobContext, timestamp: int) -> dict[str, int]:
        result = run_cleanup(deps=deps_of(context))
        return {
            "expired": result.expired,
            "files_deleted": result.files_deleted,
            "orphans_deleted": result.orphans_deleted,
            "partials_discarded": result.partials_discarded,
            "secrets_discarded": result.secrets_discarded,
        }

    return bp


def defer_generation(*, queue: procrastinate.App, session: Session, report_id: uuid.UUID) -> bool:
    """Enqueue generation inside the session's transaction; False if already queued.

    Enqueued in the same transaction as the report row: both commit or
    neither does, so a committed report always has its job.
    """
    task = queue.tasks[GENERATE]
    lock = f"report:{report_id}"
    job = task.configure(lock=lock, queueing_lock=lock).make_new_job(report_id=str(report_id))
    connection: Any = session.connection().connection.driver_connection
    try:
        queue.job_manager.defer_job(job, connection=connection)
    except AlreadyEnqueued:
        return False
    return True
