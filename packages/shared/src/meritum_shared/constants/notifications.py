"""Constants of notifications (subscriptions-and-notifications spec section 4)."""

from __future__ import annotations

from datetime import timedelta
from enum import StrEnum
from typing import Final

from meritum_shared.constants.analytics import ReportType
from meritum_shared.constants.auth import Permission


class NotificationEvent(StrEnum):
    REPORT_READY = "REPORT_READY"
    DATA_EXPORT_READY = "DATA_EXPORT_READY"
    REPORT_FAILED = "REPORT_FAILED"
    REPORT_EXPIRING = "REPORT_EXPIRING"


def viewing_permission(report_type: ReportType) -> Permission:
    """The permission a delegate needs to be told about a report of this type."""
    if report_type is ReportType.DATA_PORTABILITY:
        return Permission.DATA_EXPORT
    return Permission.REPORT_VIEW


def ready_event(report_type: ReportType) -> NotificationEvent:
    """What a report of this type becoming ready is called."""
    if report_type is ReportType.DATA_PORTABILITY:
        return NotificationEvent.DATA_EXPORT_READY
    return NotificationEvent.REPORT_READY


#: How long before its link expires an undownloaded ready report is recalled.
EXPIRING_NOTICE: Final = timedelta(days=3)
#: The same for a data portability export (its link lives only 3 days).
PORTABILITY_EXPIRING_NOTICE: Final = timedelta(hours=24)


def expiring_notice(report_type: ReportType) -> timedelta:
    """How long before expiry a reminder about a report of this type is due."""
    if report_type is ReportType.DATA_PORTABILITY:
        return PORTABILITY_EXPIRING_NOTICE
    return EXPIRING_NOTICE
