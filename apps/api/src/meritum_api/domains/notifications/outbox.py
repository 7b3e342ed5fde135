"""Queueing a notification's email inside the transaction that wrote the notification."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import procrastinate
from procrastinate.exceptions import AlreadyEnqueued
from sqlalchemy.orm import Session

from meritum_api.domains.notifications.schemas import Written

NAMESPACE = "notifications"
SEND_EMAIL = f"{NAMESPACE}:send_email"
REMIND_EXPIRING = f"{NAMESPACE}:remind_expiring"
QUEUE = "notifications"


def defer_emails(*, queue: procrastinate.App, session: Session, written: Iterable[Written]) -> int:
    """Enqueue one email job per written notification that asks for email; how many.

    In the caller's transaction (an outbox): the notification and its job
    commit together, or neither does.
    """
    task = queue.tasks[SEND_EMAIL]
    connection: Any = session.connection().connection.driver_connection
    count = 0
    for item in written:
        if not item.wants_email:
            continue
        lock = f"notification:{item.notification_id}"
        job = task.configure(lock=lock, queueing_lock=lock).make_new_job(
            notification_id=str(item.notification_id)
        )
        try:
            queue.job_manager.defer_job(job, connection=connection)
        except AlreadyEnqueued:
            continue
        count += 1
    return count
