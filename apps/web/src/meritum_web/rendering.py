"""The template environment (autoescaping on) and the one function that renders a page."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from starlette.requests import Request
from starlette.responses import HTMLResponse

from meritum_api.auth.sessions import Principal
from meritum_api.domains.analytics.schemas import ReportView
from meritum_shared.constants.analytics import ReportStatus
from meritum_shared.constants.auth import Permission
from meritum_web import assets, formatting
from meritum_web.security import CSRF_COOKIE, CSRF_FIELD


def _environment() -> Environment:
    env = Environment(
        loader=PackageLoader("meritum_web", "templates"),
        autoescape=select_autoescape(["html"], default_for_string=True, default=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        # The templates are package files: never re-read them while serving.
        auto_reload=False,
    )
    env.globals["asset"] = assets.asset
    env.filters.update(
        day=formatting.day,
        period_of=formatting.period,
        size=formatting.size,
        money=formatting.money,
        kind=lambda value: formatting.REPORT_KINDS[value],
        fmt=lambda value: formatting.FORMAT_NAMES[value],
        status_label=lambda value: formatting.STATUS_LABELS[ReportStatus(value)],
    )
    return env


ENVIRONMENT: Final = _environment()


@dataclass(frozen=True, slots=True)
class ReportRow:
    """One row of the reports list, every cell already in words.

    Formatted here rather than in the template: a function called from a
    template goes through Jinja's call machinery, which for a page of twenty
    rows cost more than the formatting itself.
    """

    report_id: str
    kind: str
    scheduled: bool
    period: str
    format: str
    requested_at: str
    requested: str
    #: The status shown (an expired link shows ``expired``) and its words.
    shown: str
    status: str
    #: ``ready in about N s`` or ``ready shortly`` for a report in progress, else None.
    eta: str | None
    size: str
    link: str
    #: The first download's instant and words, when the audit trail has it.
    downloaded_at: str | None
    downloaded_when: str | None
    downloaded: bool


_READY_OR_EXPIRED: Final = (ReportStatus.READY, ReportStatus.EXPIRED)


def report_rows(
    reports: Iterable[ReportView],
    *,
    first_downloaded_at: Mapping[uuid.UUID, datetime],
    ready_in: Mapping[uuid.UUID, int | None],
    now: datetime,
) -> list[ReportRow]:
    """The reports list's rows, as of ``now``."""
    rows = []
    for report in reports:
        shown = formatting.shown_status(report.status, report.download_link_expires_at, now=now)
        eta = None
        if report.report_id in ready_in:
            seconds = ready_in[report.report_id]
            eta = "ready shortly" if seconds is None else f"ready in about {seconds} s"
        first = first_downloaded_at.get(report.report_id)
        rows.append(
            ReportRow(
                report_id=str(report.report_id),
                kind=formatting.REPORT_KINDS[report.report_type],
                scheduled=report.scheduled,
                period=formatting.period(report.period_start, report.period_end),
                format=formatting.FORMAT_NAMES[report.format],
                requested_at=report.created_at.isoformat(),
                requested=formatting.when(report.created_at, now=now),
                shown=shown.value,
                status=formatting.STATUS_LABELS[shown],
                eta=eta,
                size=formatting.size(report.file_size_bytes)
                if report.status is ReportStatus.READY
                else "—",
                link=formatting.expiry(report.download_link_expires_at, now=now)
                if report.status in _READY_OR_EXPIRED
                else "—",
                downloaded_at=first.isoformat() if first else None,
                downloaded_when=formatting.when(first, now=now) if first else None,
                downloaded=report.downloaded,
            )
        )
    return rows


def render(
    request: Request,
    template: str,
    *,
    principal: Principal | None,
    status_code: int = 200,
    now: datetime | None = None,
    acting_for: str | None = None,
    unread: int | None = None,
    **context: Any,
) -> HTMLResponse:
    """Render ``template`` with what every page shows (who, whom for, the form token)."""
    moment = now

    def when(instant: datetime) -> str:
        return formatting.when(instant, now=moment or instant)

    def run_time(instant: datetime) -> str:
        return formatting.run_time(instant, now=moment or instant)

    def expiry(instant: datetime) -> str:
        return formatting.expiry(instant, now=moment or instant)

    def status_of(report: ReportView) -> str:
        shown = formatting.shown_status(
            report.status, report.download_link_expires_at, now=moment or report.created_at
        )
        return shown.value

    can = {p.value: principal is not None and p in principal.permissions for p in Permission}
    html = ENVIRONMENT.get_template(template).render(
        request=request,
        path=request.url.path,
        principal=principal,
        acting_for=acting_for,
        unread=unread,
        can=can,
        csrf_field=CSRF_FIELD,
        csrf_token=request.cookies.get(CSRF_COOKIE, ""),
        when=when,
        expiry=expiry,
        run_time=run_time,
        status_of=status_of,
        **context,
    )
    return HTMLResponse(html, status_code=status_code)
