"""Queueing a notification's email inside the transaction that wrote the notification."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import procrastinate
from sqlalchemy.orm import Session

from meritum_api.domains.notifications.schemas import Written

NAMESPACE = "notifications"
SEND_EMAIL = f"{NAMESPACE}:send_email"
REMIND_EXPIRING = f"{NAMESPACE}:remind_expiring"
QUEUE = "notifications"


def defer_emails(*, queue: procrastinate.App, session: Session, written: Iterable[Written]) -> int:
    """Enqueue one email job per written notification that asks for email; how many.

    In the caller's transaction (an outbox): the notifications and their
    jobs commit together, or none does. One statement for all of them. The
    notifications are new rows, so no job for them can exist yet; the job
    lock keeps two attempts at one email from running at once.
    """
    task = queue.tasks[SEND_EMAIL]
    jobs = [
        task.configure(lock=f"notification:{item.notification_id}").make_new_job(
            notification_id=str(item.notification_id)
        )
        for item in written
        if item.wants_email
    ]
    if jobs:
        connection: Any = session.connection().connection.driver_connection
        queue.job_manager.batch_defer_jobs(jobs, connection=connection)
    return len(jobs)
