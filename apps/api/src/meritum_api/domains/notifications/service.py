"""The notifications domain's use cases: writing notices when reports settle or near expiry,
reading and marking them, delivery preferences, and sending the email of one notification.

As in every domain, nothing here commits: the caller owns the transaction.
"""

from __future__ import annotations

import logging
import uuid
from typing import TYPE_CHECKING

from sqlalchemy.orm import Session

from meritum_api.context import AuthContext
from meritum_api.domains.analytics.schemas import ReportView
from meritum_api.domains.notifications import messages, repository
from meritum_api.domains.notifications.exceptions import MailNotConfigured, NotificationNotFound
from meritum_api.domains.notifications.outbox import defer_emails
from meritum_api.domains.notifications.schemas import NotificationPage, NotificationView, Written
from meritum_shared.constants.analytics import DeliveryMethod, ReportStatus
from meritum_shared.constants.notifications import (
    NotificationEvent,
    ready_event,
    viewing_permission,
)

if TYPE_CHECKING:
    from meritum_api.deps import Deps

log = logging.getLogger(__name__)


def notify_settled(deps: Deps, session: Session, report: ReportView) -> None:
    """The settle effect: notices (and their email jobs) for a report now ready or failed."""
    at = deps.clock.now()
    if report.status not in (ReportStatus.READY, ReportStatus.FAILED):
        return
    written: list[Written]
    if report.status is ReportStatus.READY:
        written = repository.notify_holders(
            session=session,
            report=report,
            event=ready_event(report.report_type),
            permission=viewing_permission(report.report_type),
            at=at,
        )
    else:
        written = repository.notify_requester(
            session=session,
            report=report,
            event=NotificationEvent.REPORT_FAILED,
            at=at,
        )
    defer_emails(queue=deps.queue, session=session, written=written)


def remind_expiring(*, deps: Deps, session: Session) -> int:
    """REPORT_EXPIRING notices for ready reports about to expire undownloaded; how many."""
    written = repository.notify_expiring(session=session, now=deps.clock.now())
    defer_emails(queue=deps.queue, session=session, written=written)
    return len(written)


def list_notifications(
    *, session: Session, ctx: AuthContext, unread_only: bool, limit: int, offset: int
) -> NotificationPage:
    """A page of the user's own notifications, newest first."""
    return repository.list_notifications(
        session=session, ctx=ctx, unread_only=unread_only, limit=limit, offset=offset
    )


def unread_count(*, session: Session, ctx: AuthContext) -> int:
    """How many of the user's notifications are unread (the header of every page)."""
    return repository.unread_count(session=session, ctx=ctx)


def mark_read(
    *, deps: Deps, session: Session, ctx: AuthContext, notification_id: uuid.UUID
) -> NotificationView:
    """Mark one of the user's notifications read; NotificationNotFound if it is not theirs."""
    found = repository.mark_read(
        session=session, ctx=ctx, notification_id=notification_id, at=deps.clock.now()
    )
    if found is None:
        raise NotificationNotFound
    return found


def mark_all_read(*, deps: Deps, session: Session, ctx: AuthContext) -> int:
    """Mark all of the user's unread notifications read; how many were."""
    return repository.mark_all_read(session=session, ctx=ctx, at=deps.clock.now())


def delivery_preference(*, session: Session, ctx: AuthContext) -> DeliveryMethod:
    """How the user hears about their on-demand reports."""
    return repository.get_preference(session=session, ctx=ctx)


def set_delivery_preference(
    *, deps: Deps, session: Session, ctx: AuthContext, delivery_method: DeliveryMethod
) -> DeliveryMethod:
    """Choose how the user hears about on-demand reports (IN_APP, EMAIL or BOTH)."""
    repository.set_preference(
        session=session, ctx=ctx, delivery_method=delivery_method, at=deps.clock.now()
    )
    return delivery_method


def send_email(*, deps: Deps, notification_id: uuid.UUID) -> bool:
    """Send the notification's email unless it has been sent; True if it was sent now.

    One transaction: the notification's row is locked, the message handed to
    the mail server, and ``email_sent_at`` recorded before the commit. A
    second attempt waits for the lock and then finds the time recorded, so a
    notification is emailed once. (Only a crash between the server accepting
    the message and the commit can repeat it; the Message-ID is the same on
    every attempt, so the copies are recognisably one message.)
    """
    with deps.session_factory.begin() as session:
        due = repository.lock_email_due(session=session, notification_id=notification_id)
        if due is None:
            return False
        if deps.mailer is None:
            raise MailNotConfigured("an email is due but MERITUM_SMTP_URL is not set")
        now = deps.clock.now()
        message = messages.compose(
            due, sender=deps.settings.mail_from, public_url=deps.settings.public_url, now=now
        )
        deps.mailer.send(message)
        repository.mark_emailed(session=session, notification_id=notification_id, at=now)
    log.info("notification %s: email sent", notification_id)
    return True
