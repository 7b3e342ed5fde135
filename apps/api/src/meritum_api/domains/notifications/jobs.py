"""The notifications domain's background tasks: the email outbox and the expiry reminder."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

from procrastinate import Blueprint, JobContext, RetryStrategy

from meritum_api.domains.notifications import service
from meritum_api.domains.notifications.outbox import NAMESPACE, QUEUE, REMIND_EXPIRING
from meritum_api.settings import Settings

if TYPE_CHECKING:
    from meritum_api.deps import Deps

__all__ = ["NAMESPACE", "QUEUE", "blueprint"]


def _deps(context: JobContext) -> Deps:
    deps: Deps = context.additional_context["deps"]
    return deps


def blueprint(settings: Settings) -> Blueprint:
    """Sending one notification's email (retried with backoff) and the periodic reminder."""
    bp = Blueprint()
    # procrastinate reads max_attempts=0 as "no limit": no retries is no strategy.
    retry = (
        RetryStrategy(
            max_attempts=settings.email_retries, exponential_wait=settings.email_backoff_seconds
        )
        if settings.email_retries
        else False
    )

    @bp.task(name="send_email", queue=QUEUE, pass_context=True, retry=retry)
    def send_email(context: JobContext, notification_id: str) -> bool:
        # Raising (server down, refused) hands the job back for a later attempt.
        return service.send_email(deps=_deps(context), notification_id=uuid.UUID(notification_id))

    # A singleton like the retention cleanup; the unique (report, user, event)
    # constraint makes an overlapping run harmless anyway.
    @bp.periodic(cron=settings.expiring_check_cron, periodic_id="expiring")
    @bp.task(
        name="remind_expiring",
        queue="maintenance",
        pass_context=True,
        lock=REMIND_EXPIRING,
        queueing_lock=REMIND_EXPIRING,
    )
    def remind_expiring(context: JobContext, timestamp: int) -> int:
        deps = _deps(context)
        with deps.session_factory.begin() as session:
            return service.remind_expiring(deps=deps, session=session)

    return bp
