"""The pages: read the request, call one service function, render the answer.

Every page calls the same services as the API routes, in a transaction it
owns; templates only render what the handler hands them.
"""

from __future__ import annotations

import contextlib
import uuid
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Annotated, Any, Final

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError
from sqlalchemy.orm import Session

from meritum_api.auth import service as auth
from meritum_api.auth.resolver import forget_ended
from meritum_api.auth.router import secure_cookies
from meritum_api.auth.schemas import LoginRequest
from meritum_api.auth.sessions import SESSION_COOKIE, Principal
from meritum_api.db.engine import autocommit_session
from meritum_api.deps import Deps
from meritum_api.domains.analytics import service
from meritum_api.domains.analytics.exceptions import (
    ReportNotFound,
    RequestLimitReached,
    UnsupportedReport,
)
from meritum_api.domains.analytics.generators import is_supported
from meritum_api.domains.analytics.schemas import ReportView
from meritum_api.domains.notifications import messages
from meritum_api.domains.notifications import service as notices
from meritum_api.domains.notifications.exceptions import NotificationNotFound
from meritum_api.domains.subscriptions import service as subscriptions_service
from meritum_api.domains.subscriptions.exceptions import (
    FrequencyNotAllowed,
    NotSubscribable,
    SubscriptionExists,
    SubscriptionNotFound,
)
from meritum_shared.constants.analytics import (
    SUBSCRIPTION_FREQUENCIES,
    DeliveryMethod,
    ReportFormat,
    ReportStatus,
    ReportType,
    SubscriptionFrequency,
)
from meritum_shared.constants.auth import Permission
from meritum_shared.constants.notifications import NotificationEvent
from meritum_shared.schemas.validation.analytics import (
    ACCOUNTANT_OUTPUT,
    MIN_ARCHIVE_PASSWORD,
    AccountantExportRequest,
    AccountantFormat,
    DataPortabilityRequest,
    ReportListQuery,
)
from meritum_shared.schemas.validation.subscriptions import SubscriptionCreate, SubscriptionUpdate
from meritum_shared.schemas.validation.text import Text
from meritum_web import formatting
from meritum_web.periods import PRESET_LABELS, Preset, preset_range
from meritum_web.rendering import render, report_rows
from meritum_web.security import (
    CSRF_COOKIE,
    check_form,
    require_signed_in,
    safe_next,
    same_origin,
    signed_in,
)

router = APIRouter(include_in_schema=False)

PAGE_SIZE: Final = 20

FORMAT_LABELS: Final = {
    AccountantFormat.CSV: "CSV spreadsheet",
    AccountantFormat.PDF_SUMMARY: "PDF summary",
    AccountantFormat.PDF_DETAIL: "PDF detail",
}

#: Said when a sign-in fails, whatever the reason: never whether the account exists.
WRONG_CREDENTIALS: Final = "Wrong email or password. Check both and try again."


def _deps(request: Request) -> Deps:
    deps: Deps = request.app.state.deps
    return deps


def _today(deps: Deps) -> date:
    return formatting.local(deps.clock.now()).date()


def _forbidden(request: Request, principal: Principal, what: str) -> HTMLResponse:
    return render_page(
        request,
        principal,
        "message.html",
        status_code=403,
        title="Not allowed",
        message=f"Your account may not {what}. Ask the physician you work for if you need to.",
    )


def render_page(
    request: Request,
    principal: Principal,
    template: str,
    *,
    status_code: int = 200,
    session: Session | None = None,
    **context: Any,
) -> HTMLResponse:
    """Render a signed-in page with its header: whom a delegate acts for, the unread count.

    A handler that has a session open for its own reads passes it, so the
    header's reads ride the same connection.
    """
    deps = _deps(request)
    with contextlib.ExitStack() as stack:
        if session is None:
            session = stack.enter_context(autocommit_session(deps.session_factory))
        acting_for = _acting_for(session, principal)
        unread = notices.unread_count(session=session, ctx=principal.context)
    return render(
        request,
        template,
        principal=principal,
        acting_for=acting_for,
        unread=unread,
        now=deps.clock.now(),
        status_code=status_code,
        **context,
    )


def _acting_for(session: Session, principal: Principal) -> str | None:
    if principal.role == "physician":
        return None
    return auth.physician_name(session=session, ctx=principal.context)


# --- signing in and out ---------------------------------------------------------------------


@router.get("/sign-in")
def sign_in_page(
    request: Request, next: Annotated[Text | None, Query(max_length=2048)] = None
) -> Response:
    """The sign-in form (or straight on, when already signed in)."""
    if signed_in(request) is not None:
        return RedirectResponse(safe_next(next), status_code=303)
    return render(request, "sign_in.html", principal=None, next=safe_next(next), email="")


@router.post("/sign-in")
def sign_in(
    request: Request,
    email: Annotated[Text, Form(max_length=320)] = "",
    password: Annotated[Text, Form(max_length=1024)] = "",
    next: Annotated[Text, Form(max_length=2048)] = "/",
) -> Response:
    """Check the password, open a session, and go back to the page asked for."""
    deps = _deps(request)
    back_to = safe_next(next)

    def again(message: str, status_code: int) -> HTMLResponse:
        return render(
            request,
            "sign_in.html",
            principal=None,
            next=back_to,
            email=email,
            error=message,
            status_code=status_code,
        )

    if not same_origin(request):
        return again("This sign-in did not come from this site's page. Please try again.", 403)
    if not email.strip() or not password:
        return again("Enter your email and your password.", 400)
    try:
        # The API's contract: the same limits and the same refusal of unsafe text.
        credentials = LoginRequest.model_validate({"email": email, "password": password})
    except ValidationError:
        return again(WRONG_CREDENTIALS, 400)
    try:
        with deps.session_factory.begin() as session:
            result = auth.login(
                session=session,
                settings=deps.settings,
                email=credentials.email,
                password=credentials.password.get_secret_value(),
                throttle=request.app.state.login_throttle,
            )
    except auth.TooManyLoginFailures as exc:
        minutes = max(1, -(-exc.retry_after // 60))
        return again(
            f"Too many failed sign-ins for this email. Try again in {minutes} minutes.", 429
        )
    if isinstance(result, auth.InvalidCredentials):
        return again(WRONG_CREDENTIALS, 401)  # the refusal's audit entry is committed
    response = RedirectResponse(back_to, status_code=303)
    secure = secure_cookies(deps.settings)
    response.set_cookie(
        SESSION_COOKIE, result.token, path="/", secure=secure, httponly=True, samesite="lax"
    )
    response.set_cookie(
        CSRF_COOKIE, result.csrf_token, path="/", secure=secure, httponly=True, samesite="strict"
    )
    return response


@router.post("/sign-out")
def sign_out(request: Request, csrf_token: Annotated[Text, Form(max_length=256)] = "") -> Response:
    """End the session, forget both cookies, and show the sign-in page."""
    deps = _deps(request)
    principal = signed_in(request)
    if principal is not None:
        check_form(principal, csrf_token)
        with deps.session_factory.begin() as session:
            auth.logout(session=session, principal=principal)
        forget_ended(request.app, principal)
    response = RedirectResponse("/sign-in", status_code=303)
    secure = secure_cookies(deps.settings)
    response.delete_cookie(SESSION_COOKIE, path="/", secure=secure, httponly=True, samesite="lax")
    response.delete_cookie(CSRF_COOKIE, path="/", secure=secure, httponly=True, samesite="strict")
    return response


# --- the reports list -----------------------------------------------------------------------


def _parse_day(value: str | None) -> date | None:
    return date.fromisoformat(value) if value else None


@router.get("/")
def reports_page(
    request: Request,
    kind: Annotated[Text | None, Query(max_length=40)] = None,
    start: Annotated[Text | None, Query(alias="from", max_length=10)] = None,
    end: Annotated[Text | None, Query(alias="to", max_length=10)] = None,
    page: Annotated[Text | None, Query(max_length=6)] = None,
) -> Response:
    """The physician's reports, newest first, filtered and paged."""
    principal = require_signed_in(request)
    ctx = principal.context
    if not ctx.can(Permission.REPORT_VIEW):
        return _forbidden(request, principal, "see reports")
    deps = _deps(request)
    error = None
    number = 1
    try:
        number = max(1, int(page)) if page else 1
        query = ReportListQuery(
            report_type=ReportType(kind) if kind else None,
            start_date=_parse_day(start),
            end_date=_parse_day(end),
            limit=PAGE_SIZE,
            offset=(number - 1) * PAGE_SIZE,
        )
    except (ValueError, ValidationError):
        error = "Those filters are not valid: pick a kind from the list and dates as YYYY-MM-DD."
        number = 1
        query = ReportListQuery(limit=PAGE_SIZE)
    filters = {
        "kind": query.report_type.value if query.report_type else "",
        "from": query.start_date.isoformat() if query.start_date else "",
        "to": query.end_date.isoformat() if query.end_date else "",
    }
    # No transaction: the list is one statement, the header's reads need no consistency with it.
    now = deps.clock.now()
    with autocommit_session(deps.session_factory) as session:
        listing = service.report_listing(session=session, ctx=ctx, query=query, now=now)
        return render_page(
            request,
            principal,
            "reports.html",
            session=session,
            rows=report_rows(
                listing.page.items,
                first_downloaded_at=listing.first_downloaded_at,
                ready_in=listing.ready_in,
                now=now,
            ),
            total=listing.page.total,
            page_number=number,
            pages=max(1, -(-listing.page.total // PAGE_SIZE)),
            filters=filters,
            filter_error=error,
            kinds=formatting.REPORT_KINDS,
            created=request.query_params.get("created"),
        )


# --- requesting an accountant export --------------------------------------------------------


def accountant_formats() -> list[AccountantFormat]:
    """The accountant formats the server can produce today."""
    return [f for f in AccountantFormat if is_supported(*ACCOUNTANT_OUTPUT[f])]


@dataclass(frozen=True, slots=True)
class RequestForm:
    """What the request form shows: the values entered and an error beside each field."""

    preset: str = Preset.LAST_MONTH.value
    format: str = AccountantFormat.CSV.value
    period_start: str = ""
    period_end: str = ""
    errors: dict[str, str] | None = None


def _request_page(
    request: Request, principal: Principal, form: RequestForm, status_code: int = 200
) -> HTMLResponse:
    today = _today(_deps(request))
    ranges = {
        preset: preset_range(preset, today) for preset in Preset if preset is not Preset.CUSTOM
    }
    return render_page(
        request,
        principal,
        "request.html",
        status_code=status_code,
        form=form,
        errors=defaultdict(str, form.errors or {}),
        presets=PRESET_LABELS,
        ranges=ranges,
        formats=[(f.value, FORMAT_LABELS[f]) for f in accountant_formats()],
    )


@router.get("/reports/new")
def request_page(request: Request) -> Response:
    """The accountant export form."""
    principal = require_signed_in(request)
    if not principal.context.can(Permission.REPORT_EXPORT):
        return _forbidden(request, principal, "request reports")
    formats = accountant_formats()
    return _request_page(
        request, principal, RequestForm(format=formats[0].value if formats else "")
    )


#: What the form says for each of the request contract's refusals.
_FIELD_MESSAGES: Final = {
    "period_order": "The last day must not be before the first day.",
    "period_too_long": "A period may cover at most 2 years.",
    "date_format": "Enter a date, for example 2026-03-31.",
}


def _field_errors(exc: ValidationError) -> dict[str, str]:
    errors: dict[str, str] = {}
    for error in exc.errors():
        where = str(error["loc"][0]) if error["loc"] else "period_end"
        if where == "format":
            message = "Choose one of the formats offered."
        else:
            message = _FIELD_MESSAGES.get(error["type"], "Enter a valid date.")
        errors.setdefault(where, message)
    return errors


@router.post("/reports/new")
def request_export(
    request: Request,
    csrf_token: Annotated[Text, Form(max_length=256)] = "",
    preset: Annotated[Text, Form(max_length=20)] = "",
    format: Annotated[Text, Form(max_length=20)] = "",
    period_start: Annotated[Text, Form(max_length=20)] = "",
    period_end: Annotated[Text, Form(max_length=20)] = "",
) -> Response:
    """Queue the export and show it at the top of the list, pending."""
    principal = require_signed_in(request)
    check_form(principal, csrf_token)
    ctx = principal.context
    if not ctx.can(Permission.REPORT_EXPORT):
        return _forbidden(request, principal, "request reports")
    deps = _deps(request)
    form = RequestForm(
        preset=preset, format=format, period_start=period_start, period_end=period_end
    )
    errors: dict[str, str] = {}
    try:
        chosen = Preset(preset)
    except ValueError:
        chosen = Preset.CUSTOM
        errors["preset"] = "Choose a period."
    window = preset_range(chosen, _today(deps))
    if window is not None:
        start_value, end_value = window[0].isoformat(), window[1].isoformat()
    else:
        start_value, end_value = period_start, period_end
        if not period_start:
            errors["period_start"] = "Enter the first day of the period."
        if not period_end:
            errors["period_end"] = "Enter the last day of the period."
    if format not in {f.value for f in accountant_formats()}:
        errors["format"] = "Choose one of the formats offered."
    if errors:
        return _request_page(request, principal, _with(form, errors), status_code=400)
    try:
        body = AccountantExportRequest.model_validate(
            {"period_start": start_value, "period_end": end_value, "format": format}
        )
    except ValidationError as exc:
        return _request_page(request, principal, _with(form, _field_errors(exc)), status_code=400)
    try:
        with deps.session_factory.begin() as session:
            requested = service.request_accountant_export(
                session=session, ctx=ctx, queue=deps.queue, request=body
            )
    except UnsupportedReport:
        return _request_page(
            request,
            principal,
            _with(form, {"format": "This format is not available yet."}),
            status_code=400,
        )
    return RedirectResponse(f"/?created={requested.report.report_id}", status_code=303)


def _with(form: RequestForm, errors: dict[str, str]) -> RequestForm:
    return RequestForm(
        preset=form.preset,
        format=form.format,
        period_start=form.period_start,
        period_end=form.period_end,
        errors=errors,
    )


# --- one report -----------------------------------------------------------------------------


def link_expired(report: ReportView, now: datetime) -> bool:
    """Whether the report can no longer be downloaded because its time is up."""
    shown = formatting.shown_status(report.status, report.download_link_expires_at, now=now)
    return shown is ReportStatus.EXPIRED


def accountant_format_of(report: ReportView) -> AccountantFormat | None:
    """The accountant format that produced the report, if it is an accountant export."""
    for accountant_format, output in ACCOUNTANT_OUTPUT.items():
        if output == (report.report_type, report.format):
            return accountant_format
    return None


@router.get("/reports/{report_id}")
def report_page(request: Request, report_id: Text) -> Response:
    """Everything about one report, its digest and download history."""
    principal = require_signed_in(request)
    ctx = principal.context
    if not ctx.can(Permission.REPORT_VIEW):
        return _forbidden(request, principal, "see reports")
    deps = _deps(request)
    try:
        with deps.session_factory() as session:
            found = service.report_detail(session=session, ctx=ctx, report_id=uuid.UUID(report_id))
    except (ValueError, ReportNotFound):
        return render_page(
            request,
            principal,
            "message.html",
            status_code=404,
            title="Report not found",
            message="There is no such report among yours. It may have been deleted after its "
            "retention period.",
        )
    report = found.report
    now = deps.clock.now()
    return render_page(
        request,
        principal,
        "detail.html",
        report=report,
        sha256=found.sha256.hex() if found.sha256 is not None else None,
        first_downloaded_at=found.first_downloaded_at,
        download_count=found.download_count,
        expired=link_expired(report, now),
        again=accountant_format_of(report) is not None
        or report.report_type is ReportType.DATA_PORTABILITY,
    )


@router.post("/reports/{report_id}/again")
def make_again(
    request: Request, report_id: Text, csrf_token: Annotated[Text, Form(max_length=256)] = ""
) -> Response:
    """Request the same report again (an expired or failed one) and show the new one."""
    principal = require_signed_in(request)
    check_form(principal, csrf_token)
    ctx = principal.context
    if not ctx.can(Permission.REPORT_EXPORT):
        return _forbidden(request, principal, "request reports")
    deps = _deps(request)
    try:
        with deps.session_factory.begin() as session:
            old = service.report_detail(
                session=session, ctx=ctx, report_id=uuid.UUID(report_id)
            ).report
            if old.report_type is ReportType.DATA_PORTABILITY:
                # Its password, if it had one, was never stored: ask again.
                return RedirectResponse("/data-portability", status_code=303)
            accountant_format = accountant_format_of(old)
            if accountant_format is None or old.period_start is None or old.period_end is None:
                raise ReportNotFound
            requested = service.request_accountant_export(
                session=session,
                ctx=ctx,
                queue=deps.queue,
                request=AccountantExportRequest(
                    period_start=old.period_start,
                    period_end=old.period_end,
                    format=accountant_format,
                ),
            )
    except (ValueError, ReportNotFound):
        return render_page(
            request,
            principal,
            "message.html",
            status_code=404,
            title="Report not found",
            message="There is no such report among yours to make again.",
        )
    except UnsupportedReport:
        return render_page(
            request,
            principal,
            "message.html",
            status_code=400,
            title="Not available",
            message="This kind of report cannot be made at the moment.",
        )
    return RedirectResponse(f"/reports/{requested.report.report_id}", status_code=303)


# --- data portability -----------------------------------------------------------------------


def portability_available() -> bool:
    """Whether the server can produce the data portability archive today."""
    return is_supported(ReportType.DATA_PORTABILITY, ReportFormat.ZIP)


def _portability_page(
    request: Request,
    principal: Principal,
    *,
    errors: dict[str, str] | None = None,
    status_code: int = 200,
    notice: str | None = None,
) -> HTMLResponse:
    return render_page(
        request,
        principal,
        "portability.html",
        status_code=status_code,
        available=portability_available(),
        errors=defaultdict(str, errors or {}),
        notice=notice,
        min_password=MIN_ARCHIVE_PASSWORD,
    )


@router.get("/data-portability")
def portability_page(request: Request) -> Response:
    """What the export of all data contains, and the form to ask for it."""
    principal = require_signed_in(request)
    if not principal.context.can(Permission.DATA_EXPORT):
        return _forbidden(request, principal, "export all of the physician's data")
    return _portability_page(request, principal)


@router.post("/data-portability")
def request_portability(
    request: Request,
    csrf_token: Annotated[Text, Form(max_length=256)] = "",
    password: Annotated[Text, Form(max_length=1024)] = "",
    confirmation: Annotated[Text, Form(max_length=1024)] = "",
) -> Response:
    """Queue the export of all data, optionally protected by a password."""
    principal = require_signed_in(request)
    check_form(principal, csrf_token)
    ctx = principal.context
    if not ctx.can(Permission.DATA_EXPORT):
        return _forbidden(request, principal, "export all of the physician's data")
    if not portability_available():
        return _portability_page(request, principal, status_code=400)
    errors: dict[str, str] = {}
    if password and len(password) < MIN_ARCHIVE_PASSWORD:
        errors["password"] = f"Use at least {MIN_ARCHIVE_PASSWORD} characters, or none."
    elif password != confirmation:
        errors["confirmation"] = "The two passwords are not the same."
    if errors:
        return _portability_page(request, principal, errors=errors, status_code=400)
    deps = _deps(request)
    try:
        body = DataPortabilityRequest.model_validate({"password": password or None})
        with deps.session_factory.begin() as session:
            requested = service.request_data_portability(
                session=session, ctx=ctx, queue=deps.queue, keyring=deps.keyring, request=body
            )
    except ValidationError:
        return _portability_page(
            request,
            principal,
            status_code=400,
            errors={"password": "That password cannot be used; try another."},
        )
    except RequestLimitReached as exc:
        hours = max(1, -(-exc.retry_after // 3600))
        return _portability_page(
            request,
            principal,
            status_code=429,
            notice=f"You have asked for this export 3 times today. Try again in {hours} hours.",
        )
    return RedirectResponse(f"/reports/{requested.report.report_id}", status_code=303)


# --- notifications --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Notice:
    """One notification as its list shows it."""

    notification_id: uuid.UUID
    title: str
    report_id: uuid.UUID
    failed: bool
    created_at: datetime
    read_at: datetime | None


def _page_number(value: str | None) -> int:
    try:
        return max(1, int(value)) if value else 1
    except ValueError:
        return 1


def _notices_url(number: int) -> str:
    return "/notifications" if number <= 1 else f"/notifications?page={number}"


@router.get("/notifications")
def notifications_page(
    request: Request, page: Annotated[Text | None, Query(max_length=6)] = None
) -> Response:
    """The user's notifications, newest first, with buttons to mark them read."""
    principal = require_signed_in(request)
    deps = _deps(request)
    number = _page_number(page)
    with deps.session_factory() as session:
        listing = notices.list_notifications(
            session=session,
            ctx=principal.context,
            unread_only=False,
            limit=PAGE_SIZE,
            offset=(number - 1) * PAGE_SIZE,
        )
    items = [
        Notice(
            notification_id=item.notification_id,
            title=messages.title(item.event, item.report_type, item.period_start, item.period_end),
            report_id=item.report_id,
            failed=item.event is NotificationEvent.REPORT_FAILED,
            created_at=item.created_at,
            read_at=item.read_at,
        )
        for item in listing.items
    ]
    return render_page(
        request,
        principal,
        "notifications.html",
        notices=items,
        total=listing.total,
        unread_here=listing.unread_count,
        page_number=number,
        pages=max(1, -(-listing.total // PAGE_SIZE)),
    )


@router.post("/notifications/read-all")
def read_all_notifications(
    request: Request,
    csrf_token: Annotated[Text, Form(max_length=256)] = "",
    page: Annotated[Text, Form(max_length=6)] = "",
) -> Response:
    """Mark every notification of the user read, and show the list again."""
    principal = require_signed_in(request)
    check_form(principal, csrf_token)
    deps = _deps(request)
    with deps.session_factory.begin() as session:
        notices.mark_all_read(deps=deps, session=session, ctx=principal.context)
    return RedirectResponse(_notices_url(_page_number(page)), status_code=303)


@router.post("/notifications/{notification_id}/read")
def read_notification(
    request: Request,
    notification_id: Text,
    csrf_token: Annotated[Text, Form(max_length=256)] = "",
    page: Annotated[Text, Form(max_length=6)] = "",
) -> Response:
    """Mark one of the user's notifications read, and show the list again."""
    principal = require_signed_in(request)
    check_form(principal, csrf_token)
    deps = _deps(request)
    try:
        with deps.session_factory.begin() as session:
            notices.mark_read(
                deps=deps,
                session=session,
                ctx=principal.context,
                notification_id=uuid.UUID(notification_id),
            )
    except (ValueError, NotificationNotFound):
        return render_page(
            request,
            principal,
            "message.html",
            status_code=404,
            title="Notification not found",
            message="There is no such notification among yours.",
        )
    return RedirectResponse(_notices_url(_page_number(page)), status_code=303)


# --- scheduled reports ----------------------------------------------------------------------

FREQUENCY_LABELS: Final = {
    SubscriptionFrequency.DAILY: "Daily",
    SubscriptionFrequency.WEEKLY: "Weekly",
    SubscriptionFrequency.MONTHLY: "Monthly",
    SubscriptionFrequency.QUARTERLY: "Quarterly",
}
DELIVERY_LABELS: Final = {
    DeliveryMethod.IN_APP: "In the app",
    DeliveryMethod.EMAIL: "By email",
    DeliveryMethod.BOTH: "In the app and by email",
}
#: What the page says after each change.
_DONE: Final = {
    "created": "The subscription is set up. Its first report comes at its next run.",
    "changed": "The subscription is changed.",
    "paused": "The subscription is paused: no report is made until you resume it.",
    "resumed": "The subscription is running again from its next regular run.",
    "deleted": "The subscription is deleted. The reports it made stay until they expire.",
}


def _kind_name(report_type: ReportType) -> str:
    return formatting.REPORT_KINDS[report_type]


def _allowed_words(allowed: tuple[SubscriptionFrequency, ...]) -> str:
    words = [FREQUENCY_LABELS[f].lower() for f in allowed]
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " or " + words[-1]


@dataclass(frozen=True, slots=True)
class SubscriptionForm:
    """The create form's values and the error to show beside it."""

    report_type: str = ""
    frequency: str = ""
    delivery_method: str = DeliveryMethod.IN_APP.value
    error: str | None = None
    field: str | None = None


def _subscriptions_page(
    request: Request,
    principal: Principal,
    *,
    form: SubscriptionForm | None = None,
    row_error: tuple[uuid.UUID, str] | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    deps = _deps(request)
    with autocommit_session(deps.session_factory) as session:
        subscriptions = subscriptions_service.list_subscriptions(
            session=session, ctx=principal.context
        )
        taken = {s.report_type for s in subscriptions}
        return render_page(
            request,
            principal,
            "subscriptions.html",
            session=session,
            status_code=status_code,
            subscriptions=subscriptions,
            form=form or SubscriptionForm(),
            row_error=row_error,
            done=_DONE.get(request.query_params.get("done", "")),
            offered=[t for t in SUBSCRIPTION_FREQUENCIES if t not in taken],
            allowed=SUBSCRIPTION_FREQUENCIES,
            allowed_words={t: _allowed_words(f) for t, f in SUBSCRIPTION_FREQUENCIES.items()},
            frequency_labels=FREQUENCY_LABELS,
            delivery_labels=DELIVERY_LABELS,
        )


@router.get("/scheduled-reports")
def subscriptions_page(request: Request) -> Response:
    """The physician's subscriptions, and (with REPORT_EXPORT) the forms that change them."""
    principal = require_signed_in(request)
    if not principal.context.can(Permission.REPORT_VIEW):
        return _forbidden(request, principal, "see scheduled reports")
    return _subscriptions_page(request, principal)


@router.get("/subscriptions")
def subscriptions_alias() -> Response:
    """The page under the API's name for it (subscriptions): a permanent redirect."""
    return RedirectResponse("/scheduled-reports", status_code=308)


def _may_change(request: Request, csrf_token: str) -> tuple[Principal, HTMLResponse | None]:
    """The signed-in principal after the form's checks; a 403 page if they may not change."""
    principal = require_signed_in(request)
    check_form(principal, csrf_token)
    if not principal.context.can(Permission.REPORT_EXPORT):
        return principal, _forbidden(request, principal, "change scheduled reports")
    return principal, None


def _done(what: str) -> RedirectResponse:
    return RedirectResponse(f"/scheduled-reports?done={what}", status_code=303)


@router.post("/scheduled-reports")
def create_subscription(
    request: Request,
    csrf_token: Annotated[Text, Form(max_length=256)] = "",
    report_type: Annotated[Text, Form(max_length=40)] = "",
    frequency: Annotated[Text, Form(max_length=20)] = "",
    delivery_method: Annotated[Text, Form(max_length=20)] = "",
) -> Response:
    """Subscribe to a kind of scheduled report."""
    principal, refused = _may_change(request, csrf_token)
    if refused is not None:
        return refused

    def again(field: str, message: str, status_code: int) -> HTMLResponse:
        failed = SubscriptionForm(
            report_type=report_type,
            frequency=frequency,
            delivery_method=delivery_method,
            error=message,
            field=field,
        )
        return _subscriptions_page(request, principal, form=failed, status_code=status_code)

    try:
        body = SubscriptionCreate.model_validate(
            {
                "report_type": report_type,
                "frequency": frequency or None,
                "delivery_method": delivery_method or DeliveryMethod.IN_APP.value,
            }
        )
    except ValidationError:
        return again(
            "report_type", "Choose a kind, a frequency and a delivery from the lists.", 400
        )
    deps = _deps(request)
    try:
        with deps.session_factory.begin() as session:
            subscriptions_service.create_subscription(
                deps=deps, session=session, ctx=principal.context, request=body
            )
    except SubscriptionExists:
        return again(
            "report_type",
            f"You already have a {_kind_name(body.report_type)} subscription. "
            "Change it in the list instead.",
            409,
        )
    except NotSubscribable:
        return again(
            "report_type", f"{_kind_name(body.report_type)} reports cannot be scheduled.", 422
        )
    except FrequencyNotAllowed as exc:
        return again(
            "frequency",
            f"A {_kind_name(body.report_type)} can be made {_allowed_words(exc.allowed)} only.",
            422,
        )
    return _done("created")


def _update(
    request: Request, principal: Principal, subscription_id: str, change: Mapping[str, object]
) -> Response | None:
    """Apply one change; a page saying what went wrong, or None when it was made."""
    try:
        target = uuid.UUID(subscription_id)
        body = SubscriptionUpdate.model_validate(change)
    except (ValueError, ValidationError):
        return render_page(
            request,
            principal,
            "message.html",
            status_code=400,
            title="This change could not be read",
            message="Choose a frequency and a delivery from the lists, then save again.",
        )
    deps = _deps(request)
    try:
        with deps.session_factory.begin() as session:
            subscriptions_service.update_subscription(
                deps=deps,
                session=session,
                ctx=principal.context,
                subscription_id=target,
                request=body,
            )
    except SubscriptionNotFound:
        return _no_subscription(request, principal)
    except FrequencyNotAllowed as exc:
        message = f"A {_kind_name(exc.report_type)} can be made {_allowed_words(exc.allowed)} only."
        return _subscriptions_page(request, principal, row_error=(target, message), status_code=422)
    return None


def _no_subscription(request: Request, principal: Principal) -> HTMLResponse:
    return render_page(
        request,
        principal,
        "message.html",
        status_code=404,
        title="Subscription not found",
        message="There is no such subscription among yours. It may have been deleted.",
    )


@router.post("/scheduled-reports/{subscription_id}")
def change_subscription(
    request: Request,
    subscription_id: Text,
    csrf_token: Annotated[Text, Form(max_length=256)] = "",
    frequency: Annotated[Text, Form(max_length=20)] = "",
    delivery_method: Annotated[Text, Form(max_length=20)] = "",
) -> Response:
    """Change a subscription's frequency and delivery."""
    principal, refused = _may_change(request, csrf_token)
    if refused is not None:
        return refused
    change = {"frequency": frequency or None, "delivery_method": delivery_method or None}
    return _update(request, principal, subscription_id, change) or _done("changed")


@router.post("/scheduled-reports/{subscription_id}/pause")
def pause_subscription(
    request: Request, subscription_id: Text, csrf_token: Annotated[Text, Form(max_length=256)] = ""
) -> Response:
    """Stop a subscription's runs until it is resumed."""
    principal, refused = _may_change(request, csrf_token)
    if refused is not None:
        return refused
    return _update(request, principal, subscription_id, {"is_active": False}) or _done("paused")


@router.post("/scheduled-reports/{subscription_id}/resume")
def resume_subscription(
    request: Request, subscription_id: Text, csrf_token: Annotated[Text, Form(max_length=256)] = ""
) -> Response:
    """Run a paused subscription again from its next regular run."""
    principal, refused = _may_change(request, csrf_token)
    if refused is not None:
        return refused
    return _update(request, principal, subscription_id, {"is_active": True}) or _done("resumed")


@router.post("/scheduled-reports/{subscription_id}/delete")
def delete_subscription(
    request: Request, subscription_id: Text, csrf_token: Annotated[Text, Form(max_length=256)] = ""
) -> Response:
    """Delete a subscription (its reports stay until they expire)."""
    principal, refused = _may_change(request, csrf_token)
    if refused is not None:
        return refused
    deps = _deps(request)
    try:
        with deps.session_factory.begin() as session:
            subscriptions_service.cancel_subscription(
                session=session, ctx=principal.context, subscription_id=uuid.UUID(subscription_id)
            )
    except (ValueError, SubscriptionNotFound):
        return _no_subscription(request, principal)
    return _done("deleted")
