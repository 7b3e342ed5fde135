"""How the pages write times, sizes, money and the names of things (pure functions)."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Final
from zoneinfo import ZoneInfo

from meritum_shared.constants.analytics import ReportFormat, ReportStatus, ReportType

#: Every date and time on a page is Alberta's.
EDMONTON: Final = ZoneInfo("America/Edmonton")

REPORT_KINDS: Final = {
    ReportType.ACCOUNTANT_SUMMARY: "Accountant summary",
    ReportType.ACCOUNTANT_DETAIL: "Accountant detail",
    ReportType.WEEKLY_SUMMARY: "Weekly summary",
    ReportType.MONTHLY_PERFORMANCE: "Monthly performance",
    ReportType.RRNP_QUARTERLY: "RRNP quarterly",
    ReportType.WCB_TIMING: "WCB timing",
    ReportType.REJECTION_DIGEST: "Rejection digest",
    ReportType.DATA_PORTABILITY: "All my data",
}

FORMAT_NAMES: Final = {ReportFormat.CSV: "CSV", ReportFormat.PDF: "PDF", ReportFormat.ZIP: "ZIP"}

STATUS_LABELS: Final = {
    ReportStatus.PENDING: "Queued",
    ReportStatus.GENERATING: "Generating",
    ReportStatus.READY: "Ready",
    ReportStatus.FAILED: "Failed",
    ReportStatus.EXPIRED: "Expired",
}


def shown_status(status: ReportStatus, expires_at: datetime, *, now: datetime) -> ReportStatus:
    """The status a page shows: a ready report whose link has run out is shown expired."""
    if status is ReportStatus.READY and expires_at <= now:
        return ReportStatus.EXPIRED
    return status


def local(instant: datetime) -> datetime:
    """The instant on Edmonton's clock."""
    return instant.astimezone(EDMONTON)


#: English month abbreviations, whatever the process's locale (``%b`` follows it).
MONTHS: Final = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def when(instant: datetime, *, now: datetime) -> str:
    """``2 Mar, 14:05`` this year, ``2 Mar 2025, 14:05`` otherwise (Edmonton time)."""
    there = local(instant)
    year = "" if there.year == local(now).year else f" {there.year}"
    return f"{there.day} {MONTHS[there.month - 1]}{year}, {there.hour:02d}:{there.minute:02d}"


def run_time(instant: datetime, *, now: datetime) -> str:
    """``Mon 7 Dec, 06:00``: when a scheduled report runs, with its weekday (Edmonton time)."""
    return f"{local(instant):%a} {when(instant, now=now)}"


def day(value: date) -> str:
    """``2 Mar 2026``."""
    return f"{value.day} {MONTHS[value.month - 1]} {value.year}"


def period(start: date | None, end: date | None) -> str:
    """A report's period in words; ``All data`` when it has none."""
    if start is None or end is None:
        return "All data"
    if start == end:
        return day(start)
    if start.year == end.year:
        first = f"{start.day} {MONTHS[start.month - 1]}"
        return f"{first} – {day(end)}"
    return f"{day(start)} – {day(end)}"


_UNITS: Final = ("kB", "MB", "GB", "TB")


def size(n_bytes: int) -> str:
    """Decimal units, one decimal place: ``71.8 kB``; ``512 bytes`` below a kilobyte."""
    if n_bytes < 1000:
        return "1 byte" if n_bytes == 1 else f"{n_bytes} bytes"
    value = float(n_bytes)
    for unit in _UNITS:
        value /= 1000
        if value < 999.95 or unit == _UNITS[-1]:
            return f"{value:.1f} {unit}"
    raise AssertionError("unreachable")


def money(amount: Decimal) -> str:
    """``$1,234.56`` (a minus sign before the dollar sign when negative)."""
    sign = "-" if amount < 0 else ""
    return f"{sign}${abs(amount):,.2f}"


def _count(n: int, unit: str) -> str:
    return f"{n} {unit}" if n == 1 else f"{n} {unit}s"


def duration(delta: timedelta) -> str:
    """The larger unit of a span, rounded down: ``12 days``, ``5 hours``, ``3 minutes``."""
    seconds = int(delta.total_seconds())
    if seconds >= 2 * 86_400:
        return _count(seconds // 86_400, "day")
    if seconds >= 3600:
        return _count(seconds // 3600, "hour")
    if seconds >= 60:
        return _count(seconds // 60, "minute")
    return _count(max(seconds, 0), "second")


def expiry(expires_at: datetime, *, now: datetime) -> str:
    """``expires in 12 days`` or ``expired 2 Mar, 14:05``."""
    if expires_at <= now:
        return f"expired {when(expires_at, now=now)}"
    return f"expires in {duration(expires_at - now)}"
