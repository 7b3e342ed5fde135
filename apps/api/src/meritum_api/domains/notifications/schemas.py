"""Row types of the notifications domain, as services see them."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime

from meritum_shared.constants.analytics import DeliveryMethod, ReportType
from meritum_shared.constants.notifications import NotificationEvent


@dataclass(frozen=True, slots=True)
class NotificationView:
    """One notification with what its report says about itself (no storage key, no PHI)."""

    notification_id: uuid.UUID
    event: NotificationEvent
    report_id: uuid.UUID
    report_type: ReportType
    period_start: date | None
    period_end: date | None
    created_at: datetime
    read_at: datetime | None


@dataclass(frozen=True, slots=True)
class NotificationPage:
    """One page of a user's notifications, the filtered total and the unread count."""

    items: list[NotificationView]
    total: int
    unread_count: int
    limit: int
    offset: int


@dataclass(frozen=True, slots=True)
class Written:
    """A notification just written, and how its recipient is to be told."""

    notification_id: uuid.UUID
    delivery: DeliveryMethod

    @property
    def wants_email(self) -> bool:
        """Whether an email goes out for it."""
        return self.delivery is not DeliveryMethod.IN_APP


@dataclass(frozen=True, slots=True)
class EmailDue:
    """What the email of one notification says, and to whom; locked until sent."""

    notification_id: uuid.UUID
    event: NotificationEvent
    recipient: str
    report_id: uuid.UUID
    report_type: ReportType
    period_start: date | None
    period_end: date | None
    link_expires_at: datetime
    scheduled: bool

    def __repr__(self) -> str:
        # The address is personal information: it stays out of logs.
        return f"EmailDue(notification_id={self.notification_id!s}, event={self.event!s})"
