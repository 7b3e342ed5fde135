"""What a notification says: its title, and the email that carries it (pure functions).

No message ever carries personal health information: only the report's
kind and period, what happened, when the link expires, and a link to the
report's page in the web app, where the physician signs in to see more.
"""

from __future__ import annotations

import calendar
import html
import uuid
from datetime import date, datetime
from email.message import EmailMessage
from email.utils import format_datetime
from types import MappingProxyType
from typing import Final

from meritum_api.calendar import EDMONTON
from meritum_api.domains.notifications.schemas import EmailDue
from meritum_shared.constants.analytics import ReportType
from meritum_shared.constants.notifications import NotificationEvent

#: How each report type is named in a sentence.
REPORT_NAMES: Final = MappingProxyType(
    {
        ReportType.ACCOUNTANT_SUMMARY: "accountant summary",
        ReportType.ACCOUNTANT_DETAIL: "accountant detail report",
        ReportType.WEEKLY_SUMMARY: "weekly summary",
        ReportType.MONTHLY_PERFORMANCE: "monthly performance report",
        ReportType.RRNP_QUARTERLY: "RRNP quarterly report",
        ReportType.WCB_TIMING: "WCB timing report",
        ReportType.REJECTION_DIGEST: "rejection digest",
        ReportType.DATA_PORTABILITY: "data export",
    }
)


def _day(d: date, *, year: bool = True) -> str:
    text = f"{calendar.month_name[d.month]} {d.day}"
    return f"{text}, {d.year}" if year else text


def describe_period(start: date | None, end: date | None) -> str | None:
    """A period as a reader says it: "March 2026", "Q1 2026", "2026", or its two days."""
    if start is None or end is None:
        return None
    last_of_end_month = calendar.monthrange(end.year, end.month)[1]
    whole_months = start.day == 1 and end.day == last_of_end_month
    months = (end.year - start.year) * 12 + end.month - start.month + 1
    if whole_months and months == 1:
        return f"{calendar.month_name[start.month]} {start.year}"
    if whole_months and months == 3 and start.month % 3 == 1:
        return f"Q{start.month // 3 + 1} {start.year}"
    if whole_months and months == 12 and start.month == 1:
        return str(start.year)
    if start == end:
        return _day(start)
    if start.year == end.year:
        return f"{_day(start, year=False)} to {_day(end)}"
    return f"{_day(start)} to {_day(end)}"


def report_phrase(report_type: ReportType, start: date | None, end: date | None) -> str:
    """ "accountant summary for March 2026", or just the kind when it has no period."""
    period = describe_period(start, end)
    name = REPORT_NAMES[report_type]
    return name if period is None else f"{name} for {period}"


def title(
    event: NotificationEvent, report_type: ReportType, start: date | None, end: date | None
) -> str:
    """The one-line title of a notification, also its email's subject."""
    phrase = report_phrase(report_type, start, end)
    match event:
        case NotificationEvent.REPORT_READY | NotificationEvent.DATA_EXPORT_READY:
            return f"Your {phrase} is ready"
        case NotificationEvent.REPORT_FAILED:
            return f"Your {phrase} could not be produced"
        case NotificationEvent.REPORT_EXPIRING:
            return f"Your {phrase} expires soon: download it before the link ends"


def local_time(instant: datetime) -> str:
    """An instant as Edmonton's wall clock says it: "March 5, 2026 at 10:15 MST"."""
    local = instant.astimezone(EDMONTON)
    return f"{_day(local.date())} at {local:%H:%M} {local.tzname()}"


def report_link(public_url: str, report_id: uuid.UUID) -> str:
    """The report's page in the web app."""
    return f"{public_url}/reports/{report_id}"


def _body_lines(due: EmailDue, link: str) -> list[str]:
    phrase = report_phrase(due.report_type, due.period_start, due.period_end)
    match due.event:
        case NotificationEvent.REPORT_READY | NotificationEvent.DATA_EXPORT_READY:
            lines = [
                f"Your {phrase} is ready.",
                f"Its download link expires on {local_time(due.link_expires_at)}.",
            ]
        case NotificationEvent.REPORT_FAILED:
            lines = [
                f"Your {phrase} could not be produced.",
                "You can request it again from the report's page.",
            ]
        case NotificationEvent.REPORT_EXPIRING:
            lines = [
                f"Your {phrase} has not been downloaded yet.",
                f"Its download link expires on {local_time(due.link_expires_at)}.",
            ]
    return [*lines, "", f"Open it in Meritum: {link}"]


def compose(due: EmailDue, *, sender: str, public_url: str, now: datetime) -> EmailMessage:
    """The email of one notification: plain text and HTML, no attachment, no PHI."""
    link = report_link(public_url, due.report_id)
    message = EmailMessage()
    message["Subject"] = title(due.event, due.report_type, due.period_start, due.period_end)
    message["From"] = sender
    message["To"] = due.recipient
    message["Date"] = format_datetime(now)
    # The same id on every attempt: a retried delivery is recognisably the same message.
    message["Message-ID"] = f"<notification.{due.notification_id}@meritum.reports>"
    message["Auto-Submitted"] = "auto-generated"
    if due.scheduled:
        message["List-Unsubscribe"] = f"<{public_url}/report-subscriptions>"
    lines = _body_lines(due, link)
    message.set_content("Hello,\n\n" + "\n".join(lines) + "\n\n— Meritum Reports\n")
    paragraphs = [html.escape(line) for line in lines[:-2]]
    anchor = f'<a href="{html.escape(link, quote=True)}">Open it in Meritum</a>'
    body = "".join(f"<p>{p}</p>" for p in ["Hello,", *paragraphs])
    message.add_alternative(
        f"<!DOCTYPE html><html><body>{body}<p>{anchor}</p><p>— Meritum Reports</p></body></html>",
        subtype="html",
    )
    return message
