"""Request and response contracts of the notifications API (subscriptions spec section 4)."""

from __future__ import annotations

import uuid
from datetime import date

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from meritum_shared.constants.analytics import DeliveryMethod, ReportType
from meritum_shared.constants.notifications import NotificationEvent
from meritum_shared.schemas.validation.analytics import (
    DEFAULT_PAGE_SIZE,
    MAX_OFFSET,
    MAX_PAGE_SIZE,
    Pagination,
)


class NotificationListQuery(BaseModel):
    """GET /api/v1/notifications query parameters."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    #: Only notifications not yet read.
    unread: bool = False
    limit: int = Field(default=DEFAULT_PAGE_SIZE, ge=1, le=MAX_PAGE_SIZE)
    offset: int = Field(default=0, ge=0, le=MAX_OFFSET)


class NotificationOut(BaseModel):
    """One notification: what happened to which report, and whether it was read."""

    notification_id: uuid.UUID
    event: NotificationEvent
    #: One line saying it, e.g. "Your accountant summary for March 2026 is ready".
    title: str
    report_id: uuid.UUID
    report_type: ReportType
    period_start: date | None
    period_end: date | None
    created_at: AwareDatetime
    read_at: AwareDatetime | None


class NotificationPageEnvelope(BaseModel):
    """``{ "data": [...], "pagination": {...}, "unread_count": n }``."""

    data: list[NotificationOut]
    pagination: Pagination
    #: Unread notifications of the user, whatever the filter.
    unread_count: int


class MarkedRead(BaseModel):
    """How many notifications ``read-all`` marked."""

    updated: int


class DeliveryPreference(BaseModel):
    """How the user hears about their on-demand reports."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    delivery_method: DeliveryMethod
