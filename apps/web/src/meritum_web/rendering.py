"""The template environment (autoescaping on) and the one function that renders a page."""

from __future__ import annotations

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
