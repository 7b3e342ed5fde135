"""``notifications`` and ``notification_preferences`` (subscriptions spec section 4).

A notification is written in the transaction that settles its report, so a
ready report always has its notifications and a rolled-back one has none.
When its delivery includes email, ``email_sent_at`` records the one time
the message left: the outbox job does nothing for a row that has it.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import cast

from sqlalchemy import (
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    Table,
    UniqueConstraint,
    Uuid,
    func,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from meritum_shared.constants.analytics import DeliveryMethod
from meritum_shared.constants.notifications import NotificationEvent
from meritum_shared.schemas.db.analytics import _in_list, _varchar_enum
from meritum_shared.schemas.db.base import Base

_IN_APP = f"'{DeliveryMethod.IN_APP.value}'"


class Notification(Base):
    __tablename__ = "notifications"
    __table_args__ = (
        CheckConstraint(_in_list("event", NotificationEvent), name="event_valid"),
        CheckConstraint(_in_list("delivery", DeliveryMethod), name="delivery_valid"),
        CheckConstraint(
            f"email_sent_at IS NULL OR delivery <> {_IN_APP}", name="email_only_when_asked"
        ),
        # One notice of each event per report and recipient: a settling retried
        # or a reminder task run twice cannot tell anyone twice.
        UniqueConstraint("report_id", "user_id", "event"),
        # The notifications list: a user's newest first.
        Index("ix_notifications_user_id_created_at", "user_id", text("created_at DESC")),
        # The unread count and the unread filter touch only unread rows.
        Index(
            "ix_notifications_user_id_unread",
            "user_id",
            text("created_at DESC"),
            postgresql_where=text("read_at IS NULL"),
        ),
    )

    notification_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, primary_key=True, server_default=text("gen_random_uuid()")
    )
    #: The recipient.
    user_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("users.user_id", ondelete="CASCADE"), nullable=False
    )
    #: Whose report it concerns (the tenant key).
    provider_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("providers.provider_id"), nullable=False
    )
    event: Mapped[NotificationEvent] = mapped_column(
        _varchar_enum(NotificationEvent, 30), nullable=False
    )
    report_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("generated_reports.report_id", ondelete="CASCADE"), nullable=False
    )
    #: How the recipient is told, fixed when the notification is written.
    delivery: Mapped[DeliveryMethod] = mapped_column(
        _varchar_enum(DeliveryMethod, 20),
        nullable=False,
        server_default=text(_IN_APP),
    )
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, server_default=func.now()
    )
    read_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    #: When the email left (EMAIL or BOTH deliveries); never set twice.
    email_sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)

    def __repr__(self) -> str:
        return f"Notification(notification_id={self.notification_id!s}, event={self.event!s})"


notifications: Table = cast(Table, Notification.__table__)


class NotificationPreference(Base):
    """How a user wants to hear about their on-demand reports (default: in the app only)."""

    __tablename__ = "notification_preferences"
    __table_args__ = (
        CheckConstraint(_in_list("delivery_method", DeliveryMethod), name="delivery_method_valid"),
    )

    user_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("users.user_id", ondelete="CASCADE"), primary_key=True
    )
    delivery_method: Mapped[DeliveryMethod] = mapped_column(
        _varchar_enum(DeliveryMethod, 20), nullable=False, server_default=text(_IN_APP)
    )
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, server_default=func.now()
    )


notification_preferences: Table = cast(Table, NotificationPreference.__table__)
