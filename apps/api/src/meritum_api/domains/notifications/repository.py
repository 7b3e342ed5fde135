"""The only place that touches SQL for notifications and delivery preferences.

Reads and writes on behalf of a user are scoped by the user *and* the
provider of their ``AuthContext``: a notification is its recipient's alone.
Notifications are written by ``INSERT … SELECT`` over the recipients, one
statement per settling, and ``ON CONFLICT DO NOTHING`` on (report, user,
event) makes every event at most once per report and recipient.
"""

from __future__ import annotations

import functools
import uuid
from datetime import datetime

from sqlalchemy import (
    ColumnElement,
    Select,
    bindparam,
    func,
    literal,
    select,
    text,
    update,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.postgresql.psycopg import dialect as psycopg_dialect
from sqlalchemy.orm import Session

from meritum_api.context import AuthContext
from meritum_api.db.engine import driver_connection
from meritum_api.domains.analytics.schemas import ReportView
from meritum_api.domains.notifications.schemas import (
    EmailDue,
    NotificationPage,
    NotificationView,
    Written,
)
from meritum_shared.constants.analytics import (
    AuditAction,
    DeliveryMethod,
    ReportStatus,
    ReportType,
)
from meritum_shared.constants.auth import Permission, UserRole
from meritum_shared.constants.notifications import (
    EXPIRING_NOTICE,
    PORTABILITY_EXPIRING_NOTICE,
    NotificationEvent,
)
from meritum_shared.schemas.db import (
    audit_log,
    generated_reports,
    notification_preferences,
    notifications,
    report_subscriptions,
    subscription_runs,
    users,
)

N = notifications.c
U = users.c
P = notification_preferences.c
R = generated_reports.c
SUB = report_subscriptions.c
RUNS = subscription_runs.c

_INSERTED = ["user_id", "provider_id", "event", "report_id", "delivery", "created_at"]
_CONFLICT = ["report_id", "user_id", "event"]


def _written(rows: object) -> list[Written]:
    return [Written(r.notification_id, DeliveryMethod(r.delivery)) for r in rows]  # type: ignore[attr-defined]


def _insert_for(
    *,
    session: Session,
    report: ReportView,
    event: NotificationEvent,
    at: datetime,
    who: ColumnElement[bool],
) -> list[Written]:
    chosen: ColumnElement[str] = P.delivery_method
    if report.scheduled:  # as _SUBSCRIPTION_DELIVERY says
        chosen = (
            select(SUB.delivery_method)
            .join_from(subscription_runs, report_subscriptions)
            .where(RUNS.report_id == report.report_id)
            .scalar_subquery()
        )
    method = func.coalesce(chosen, DeliveryMethod.IN_APP.value)
    recipients = (
        select(
            U.user_id,
            literal(report.provider_id),
            literal(event.value),
            literal(report.report_id),
            method,
            literal(at),
        )
        .select_from(users.outerjoin(notification_preferences, P.user_id == U.user_id))
        .where(U.provider_id == report.provider_id, who)
    )
    rows = session.execute(
        pg_insert(notifications)
        .from_select(_INSERTED, recipients)
        .on_conflict_do_nothing(index_elements=_CONFLICT)
        .returning(N.notification_id, N.delivery)
    )
    return _written(rows)


#: How a scheduled report is delivered: as its subscription says, to every recipient
#: (in the app only once the subscription is cancelled). Uncorrelated with the
#: recipients, so PostgreSQL evaluates it once (an InitPlan), and only for a
#: scheduled report.
_SUBSCRIPTION_DELIVERY = (
    "coalesce((SELECT s.delivery_method FROM subscription_runs sr "
    "JOIN report_subscriptions s USING (subscription_id) WHERE sr.report_id = {report}), "
    f"'{DeliveryMethod.IN_APP.value}')"
)


#: The physician and each delegate holding a permission, one row each, in one statement
#: (text, not a constructed statement: it runs in every ready transaction).
_HOLDERS = text(
    f"""
    INSERT INTO notifications (user_id, provider_id, event, report_id, delivery, created_at)
    SELECT u.user_id, u.provider_id, :event, :report_id,
           CASE WHEN :scheduled THEN {_SUBSCRIPTION_DELIVERY.format(report=":report_id")}
                ELSE coalesce(p.delivery_method, '{DeliveryMethod.IN_APP.value}') END, :at
    FROM users u
    LEFT JOIN notification_preferences p ON p.user_id = u.user_id
    WHERE u.provider_id = :provider_id
      AND (u.role = '{UserRole.PHYSICIAN.value}' OR :permission = ANY (u.permissions))
    ON CONFLICT (report_id, user_id, event) DO NOTHING
    RETURNING notification_id, delivery
    """
)


def notify_holders(
    *,
    session: Session,
    report: ReportView,
    event: NotificationEvent,
    permission: Permission,
    at: datetime,
) -> list[Written]:
    """Notify the report's physician and each of their delegates holding ``permission``.

    Each is told as their own preference says, or for a scheduled report as
    its subscription says.
    """
    rows = session.execute(
        _HOLDERS,
        {
            "event": event.value,
            "report_id": report.report_id,
            "provider_id": report.provider_id,
            "permission": permission.value,
            "at": at,
            "scheduled": report.scheduled,
        },
    )
    return _written(rows)


def notify_requester(
    *,
    session: Session,
    report: ReportView,
    event: NotificationEvent,
    at: datetime,
) -> list[Written]:
    """Notify who asked for the report (its audit entry's actor), else the physician.

    Delivered as for :func:`notify_holders`.
    """
    physician = (
        select(U.user_id)
        .where(U.provider_id == report.provider_id, U.role == UserRole.PHYSICIAN)
        .scalar_subquery()
    )
    if report.scheduled:
        who = U.user_id == physician
    else:
        asked = (
            select(audit_log.c.actor_user_id)
            .where(
                audit_log.c.resource_id == report.report_id,
                audit_log.c.provider_id == report.provider_id,
                audit_log.c.action.in_(
                    [AuditAction.REPORT_GENERATED, AuditAction.DATA_PORTABILITY_REQUESTED]
                ),
            )
            .order_by(audit_log.c.id)
            .limit(1)
            .scalar_subquery()
        )
        who = U.user_id == func.coalesce(asked, physician)
    return _insert_for(session=session, report=report, event=event, at=at, who=who)


#: Ready reports not downloaded whose link ends within their notice, joined to every
#: recipient allowed to see them; one statement, at most once per report and user.
#: A scheduled report is delivered as its subscription says, like its ready notice.
_EXPIRING = text(
    f"""
    INSERT INTO notifications (user_id, provider_id, event, report_id, delivery, created_at)
    SELECT u.user_id, r.provider_id, :event, r.report_id,
           CASE WHEN r.scheduled THEN {_SUBSCRIPTION_DELIVERY.format(report="r.report_id")}
                ELSE coalesce(p.delivery_method, '{DeliveryMethod.IN_APP.value}') END, :now
    FROM generated_reports r
    JOIN users u ON u.provider_id = r.provider_id
    LEFT JOIN notification_preferences p ON p.user_id = u.user_id
    WHERE r.status = '{ReportStatus.READY.value}'
      AND NOT r.downloaded
      AND r.download_link_expires_at > :now
      AND r.download_link_expires_at <= :now + CASE
            WHEN r.report_type = '{ReportType.DATA_PORTABILITY.value}' THEN :portability_notice
            ELSE :notice END
      AND (u.role = '{UserRole.PHYSICIAN.value}' OR CASE
            WHEN r.report_type = '{ReportType.DATA_PORTABILITY.value}'
            THEN '{Permission.DATA_EXPORT.value}' ELSE '{Permission.REPORT_VIEW.value}'
            END = ANY (u.permissions))
    ON CONFLICT (report_id, user_id, event) DO NOTHING
    RETURNING notification_id, delivery
    """
)


def notify_expiring(*, session: Session, now: datetime) -> list[Written]:
    """Write the REPORT_EXPIRING notices now due (each once per report and recipient)."""
    rows = session.execute(
        _EXPIRING,
        {
            "event": NotificationEvent.REPORT_EXPIRING.value,
            "now": now,
            "notice": EXPIRING_NOTICE,
            "portability_notice": PORTABILITY_EXPIRING_NOTICE,
        },
    )
    return _written(rows)


# --- the recipient's own notifications ------------------------------------------


def _mine(ctx: AuthContext) -> ColumnElement[bool]:
    if ctx.user_id is None:
        return literal(False)
    return (N.user_id == ctx.user_id) & (N.provider_id == ctx.provider_id)


def _mine_bound() -> ColumnElement[bool]:
    """:func:`_mine` with the ids as parameters, for a statement compiled once (:func:`_bound`)."""
    return (N.user_id == bindparam("user_id")) & (N.provider_id == bindparam("provider_id"))


def _bound(ctx: AuthContext) -> dict[str, uuid.UUID | None]:
    return {"user_id": ctx.user_id, "provider_id": ctx.provider_id}


def _views() -> Select[tuple[object, ...]]:
    return select(
        N.notification_id,
        N.event,
        N.report_id,
        R.report_type,
        R.period_start,
        R.period_end,
        N.created_at,
        N.read_at,
    ).join_from(notifications, generated_reports, R.report_id == N.report_id)


def _view(row: object) -> NotificationView:
    m = row._mapping  # type: ignore[attr-defined]
    return NotificationView(
        notification_id=m["notification_id"],
        event=NotificationEvent(m["event"]),
        report_id=m["report_id"],
        report_type=ReportType(m["report_type"]),
        period_start=m["period_start"],
        period_end=m["period_end"],
        created_at=m["created_at"],
        read_at=m["read_at"],
    )


def list_notifications(
    *, session: Session, ctx: AuthContext, unread_only: bool, limit: int, offset: int
) -> NotificationPage:
    """A page of the user's notifications, newest first, with the total and unread count."""
    where = _mine(ctx)
    if unread_only:
        where = where & N.read_at.is_(None)
    rows = session.execute(
        _views()
        .where(where)
        .order_by(N.created_at.desc(), N.notification_id.desc())
        .limit(limit)
        .offset(offset)
    ).all()
    counts = session.execute(
        select(
            func.count().filter(where),
            func.count().filter(N.read_at.is_(None)),
        ).where(_mine(ctx))
    ).one()
    return NotificationPage(
        items=[_view(r) for r in rows],
        total=int(counts[0]),
        unread_count=int(counts[1]),
        limit=limit,
        offset=offset,
    )


@functools.cache
def _unread_sql() -> str:
    """The unread count, compiled once: the header of every page asks it."""
    statement = (
        select(func.count()).select_from(notifications).where(_mine_bound(), N.read_at.is_(None))
    )
    return str(statement.compile(dialect=psycopg_dialect()))  # type: ignore[no-untyped-call]


def unread_count(*, session: Session, ctx: AuthContext) -> int:
    """How many of the user's notifications are unread (the partial index on unread rows)."""
    if ctx.user_id is None:
        return 0
    # On the driver's cursor: SQLAlchemy's execution layer costs more than the count.
    row = driver_connection(session).execute(_unread_sql(), _bound(ctx)).fetchone()
    assert row is not None
    return int(row[0])


def mark_read(
    *, session: Session, ctx: AuthContext, notification_id: uuid.UUID, at: datetime
) -> NotificationView | None:
    """Mark one of the user's notifications read (the first time stays); None if not theirs."""
    found = session.execute(
        update(notifications)
        .where(_mine(ctx), N.notification_id == notification_id)
        .values(read_at=func.coalesce(N.read_at, at))
        .returning(N.notification_id)
    ).one_or_none()
    if found is None:
        return None
    row = session.execute(_views().where(N.notification_id == notification_id)).one()
    return _view(row)


def mark_all_read(*, session: Session, ctx: AuthContext, at: datetime) -> int:
    """Mark every unread notification of the user read; how many were."""
    result = session.execute(
        update(notifications)
        .where(_mine(ctx), N.read_at.is_(None))
        .values(read_at=at)
        .returning(N.notification_id)
    )
    return len(result.all())


# --- delivery preferences ----------------------------------------------------------


def get_preference(*, session: Session, ctx: AuthContext) -> DeliveryMethod:
    """How the user hears about on-demand reports (in the app only unless they chose)."""
    if ctx.user_id is None:
        return DeliveryMethod.IN_APP
    value = session.execute(
        select(P.delivery_method).where(P.user_id == ctx.user_id)
    ).scalar_one_or_none()
    return DeliveryMethod.IN_APP if value is None else DeliveryMethod(value)


def set_preference(
    *, session: Session, ctx: AuthContext, delivery_method: DeliveryMethod, at: datetime
) -> None:
    """Record how the user hears about on-demand reports."""
    if ctx.user_id is None:
        raise ValueError("a delivery preference belongs to a signed-in user")
    statement = pg_insert(notification_preferences).values(
        user_id=ctx.user_id, delivery_method=delivery_method, updated_at=at
    )
    session.execute(
        statement.on_conflict_do_update(
            index_elements=["user_id"],
            set_={"delivery_method": delivery_method, "updated_at": at},
        )
    )


# --- the email outbox ------------------------------------------------------------------


def lock_email_due(*, session: Session, notification_id: uuid.UUID) -> EmailDue | None:
    """The notification's unsent email, its row locked until commit; None if nothing is due.

    The row lock is what keeps two attempts (a retry racing a stalled one)
    from both sending: the second waits, then finds ``email_sent_at`` set.
    """
    row = session.execute(
        select(
            N.notification_id,
            N.event,
            U.email,
            R.report_id,
            R.report_type,
            R.period_start,
            R.period_end,
            R.download_link_expires_at,
            R.scheduled,
        )
        .join_from(notifications, users, U.user_id == N.user_id)
        .join(generated_reports, R.report_id == N.report_id)
        .where(
            N.notification_id == notification_id,
            N.email_sent_at.is_(None),
            N.delivery != DeliveryMethod.IN_APP,
        )
        .with_for_update(of=notifications)
    ).one_or_none()
    if row is None:
        return None
    return EmailDue(
        notification_id=row.notification_id,
        event=NotificationEvent(row.event),
        recipient=row.email,
        report_id=row.report_id,
        report_type=ReportType(row.report_type),
        period_start=row.period_start,
        period_end=row.period_end,
        link_expires_at=row.download_link_expires_at,
        scheduled=row.scheduled,
    )


def mark_emailed(*, session: Session, notification_id: uuid.UUID, at: datetime) -> None:
    """Record that the notification's email has left."""
    session.execute(
        update(notifications)
        .where(N.notification_id == notification_id, N.email_sent_at.is_(None))
        .values(email_sent_at=at)
    )
