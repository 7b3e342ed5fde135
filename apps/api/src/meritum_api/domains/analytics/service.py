"""The reports domain's use cases: the one way in for the API, the web pages and the scheduler.

Transactions: a service function never commits. It writes into the session
it is given, and the caller (a route, a page, a job) owns the transaction
with ``session_factory.begin()``; everything a use case writes (the report,
its job, its audit entry) therefore commits together or not at all. The
same rule holds in every domain.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import math
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Final

import procrastinate
import psycopg
from sqlalchemy.orm import Session

from meritum_api.audit import repository as audit
from meritum_api.context import AuthContext
from meritum_api.crypto.keys import Keyring
from meritum_api.domains.analytics import export_secrets, repository
from meritum_api.domains.analytics.downloads import Download
from meritum_api.domains.analytics.exceptions import (
    IdempotencyKeyReused,
    ReportNotFound,
    RequestLimitReached,
    UnsupportedReport,
)
from meritum_api.domains.analytics.generators import is_supported
from meritum_api.domains.analytics.jobs import defer_generation
from meritum_api.domains.analytics.schemas import ReportPage, ReportView
from meritum_shared.constants.analytics import (
    SUBSCRIBABLE_REPORT_TYPES,
    AuditAction,
    ReportFormat,
    ReportType,
)
from meritum_shared.schemas.validation.analytics import (
    ACCOUNTANT_OUTPUT,
    AccountantExportRequest,
    DataPortabilityRequest,
    ReportListQuery,
)


def request_report(
    *,
    session: Session,
    ctx: AuthContext,
    queue: procrastinate.App,
    report_type: ReportType,
    format: ReportFormat,
    period_start: date | None,
    period_end: date | None,
    scheduled: bool = False,
) -> ReportView:
    """Create a pending report and enqueue its generation in the same transaction."""
    # Refused here, when asked, rather than discovered later by a worker.
    if not is_supported(report_type, format):
        raise UnsupportedReport.for_pair(report_type, format)
    report = repository.create_report(
        session=session,
        ctx=ctx,
        report_type=report_type,
        format=format,
        period_start=period_start,
        period_end=period_end,
        scheduled=scheduled,
    )
    defer_generation(queue=queue, session=session, report_id=report.report_id)
    return report


#: Data portability exports a physician may request per day (they are heavy).
PORTABILITY_PER_DAY: Final = 3


@dataclass(frozen=True, slots=True)
class Requested:
    """A requested report; ``replayed`` when an Idempotency-Key named an earlier one."""

    report: ReportView
    replayed: bool


class _KeyTaken(Exception):
    """A concurrent request bound the Idempotency-Key first."""


def request_fingerprint(endpoint: str, body: Mapping[str, object]) -> bytes:
    """SHA-256 of an endpoint and its canonical JSON body: what a replay must match."""
    canonical = json.dumps(
        {"endpoint": endpoint, "body": body}, sort_keys=True, separators=(",", ":"), default=str
    )
    return hashlib.sha256(canonical.encode()).digest()


def _request_once(
    *,
    session: Session,
    ctx: AuthContext,
    queue: procrastinate.App,
    idempotency_key: str | None,
    fingerprint: bytes,
    report_type: ReportType,
    format: ReportFormat,
    period_start: date | None,
    period_end: date | None,
) -> Requested:
    """Request a report, at most once per Idempotency-Key of this provider within 24 hours."""

    def create() -> ReportView:
        if report_type is ReportType.DATA_PORTABILITY:
            _check_portability_limit(session=session, ctx=ctx)
        return request_report(
            session=session,
            ctx=ctx,
            queue=queue,
            report_type=report_type,
            format=format,
            period_start=period_start,
            period_end=period_end,
        )

    if idempotency_key is None:
        return Requested(create(), replayed=False)
    earlier = _replay(session=session, ctx=ctx, key=idempotency_key, fingerprint=fingerprint)
    if earlier is not None:
        return earlier
    try:
        # A savepoint: if another request bound the key meanwhile, this
        # report and its job vanish together and the winner's is answered.
        with session.begin_nested():
            report = create()
            if not repository.claim_idempotency_key(
                session=session,
                ctx=ctx,
                key=idempotency_key,
                fingerprint=fingerprint,
                report_id=report.report_id,
            ):
                raise _KeyTaken
    except _KeyTaken:
        winner = _replay(session=session, ctx=ctx, key=idempotency_key, fingerprint=fingerprint)
        if winner is None:  # the winner's report is already gone: nothing to replay
            raise IdempotencyKeyReused from None
        return winner
    return Requested(report, replayed=False)


def _replay(
    *, session: Session, ctx: AuthContext, key: str, fingerprint: bytes
) -> Requested | None:
    found = repository.find_idempotent(session=session, ctx=ctx, key=key)
    if found is None:
        return None
    stored_fingerprint, report_id = found
    if not hmac.compare_digest(stored_fingerprint, fingerprint):
        raise IdempotencyKeyReused
    report = repository.get_report(session=session, ctx=ctx, report_id=report_id)
    return None if report is None else Requested(report, replayed=True)


def _check_portability_limit(*, session: Session, ctx: AuthContext) -> None:
    recent = repository.count_requested_since(
        session=session, ctx=ctx, report_type=ReportType.DATA_PORTABILITY, hours=24
    )
    if recent >= PORTABILITY_PER_DAY:
        raise RequestLimitReached(
            f"At most {PORTABILITY_PER_DAY} data portability exports may be requested per day",
            retry_after=repository.seconds_until_one_frees(
                session=session, ctx=ctx, report_type=ReportType.DATA_PORTABILITY, hours=24
            ),
        )


def request_accountant_export(
    *,
    session: Session,
    ctx: AuthContext,
    queue: procrastinate.App,
    request: AccountantExportRequest,
    idempotency_key: str | None = None,
) -> Requested:
    """Queue an accountant export of a period (audited as report_generated)."""
    report_type, format = ACCOUNTANT_OUTPUT[request.format]
    requested = _request_once(
        session=session,
        ctx=ctx,
        queue=queue,
        idempotency_key=idempotency_key,
        fingerprint=request_fingerprint("accountant", request.model_dump(mode="json")),
        report_type=report_type,
        format=format,
        period_start=request.period_start,
        period_end=request.period_end,
    )
    if not requested.replayed:
        audit.record(
            session=session,
            ctx=ctx,
            action=AuditAction.REPORT_GENERATED,
            resource_id=requested.report.report_id,
            details={"report_type": report_type.value, "format": format.value},
        )
    return requested


def request_scheduled(
    *,
    session: Session,
    ctx: AuthContext,
    queue: procrastinate.App,
    report_type: ReportType,
    period_start: date,
    period_end: date,
    report_id: uuid.UUID | None = None,
) -> ReportView:
    """Queue a subscription's report of a period: scheduled, PDF, the 90-day link.

    The scheduler's way in, beside the on-demand requests: the same insert
    and the same job in the caller's transaction, so a committed run always
    has its report and its job. No audit entry: no user asked, and the
    subscription's run row records why the report exists.
    """
    if report_type not in SUBSCRIBABLE_REPORT_TYPES:
        raise UnsupportedReport.for_pair(report_type, ReportFormat.PDF)
    report = repository.create_report(
        session=session,
        ctx=ctx,
        report_type=report_type,
        format=ReportFormat.PDF,
        period_start=period_start,
        period_end=period_end,
        scheduled=True,
        report_id=report_id,
    )
    defer_generation(queue=queue, session=session, report_id=report.report_id)
    return report


def request_data_portability(
    *,
    session: Session,
    ctx: AuthContext,
    queue: procrastinate.App,
    keyring: Keyring,
    request: DataPortabilityRequest,
    idempotency_key: str | None = None,
) -> Requested:
    """Queue an export of all of the physician's data; at most 3 a day (audited, sensitive).

    A password is sealed under the master key in the same transaction as the
    report and its job, so the worker finds it before it can see the job.
    """
    protected = request.password is not None
    # The password itself never enters the fingerprint: only whether one was given.
    requested = _request_once(
        session=session,
        ctx=ctx,
        queue=queue,
        idempotency_key=idempotency_key,
        fingerprint=request_fingerprint("data-portability", {"password": protected}),
        report_type=ReportType.DATA_PORTABILITY,
        format=ReportFormat.ZIP,
        period_start=None,
        period_end=None,
    )
    if not requested.replayed:
        if request.password is not None:
            export_secrets.store(
                session=session,
                keyring=keyring,
                report_id=requested.report.report_id,
                password=request.password,
            )
        audit.record(
            session=session,
            ctx=ctx,
            action=AuditAction.DATA_PORTABILITY_REQUESTED,
            resource_id=requested.report.report_id,
            details={"password_protected": protected},
            sensitive=True,
        )
    return requested


async def list_reports(
    *, conn: psycopg.AsyncConnection[Any], ctx: AuthContext, query: ReportListQuery
) -> ReportPage:
    """A page of the physician's reports, newest first, with the filtered total.

    One statement, on a connection of the API's read pool
    (:mod:`meritum_api.db.reads`), in autocommit.
    """
    return await repository.list_reports(
        conn=conn,
        ctx=ctx,
        limit=query.limit,
        offset=query.offset,
        report_type=query.report_type,
        start_date=query.start_date,
        end_date=query.end_date,
    )


@dataclass(frozen=True, slots=True)
class ReportListing:
    """A page of reports with what the web list shows beside each row."""

    page: ReportPage
    #: The first completed download of each downloaded report on the page (the receipt).
    first_downloaded_at: Mapping[uuid.UUID, datetime]
    #: For each report still in progress: about how many seconds until it is ready, or
    #: None when there is nothing to go by (no finished report of its kind, or overdue).
    ready_in: Mapping[uuid.UUID, int | None]


def ready_in_seconds(*, typical: float | None, elapsed: float) -> int | None:
    """Whole seconds left of a typical generation time, or None when it cannot be said."""
    if typical is None:
        return None
    remaining = typical - elapsed
    return math.ceil(remaining) if remaining >= 1 else None


def report_listing(
    *, session: Session, ctx: AuthContext, query: ReportListQuery, now: datetime
) -> ReportListing:
    """The list page's reports, their download receipts and estimates of when they will be ready.

    An estimate is the median request-to-ready time of the physician's latest
    reports of the same type and format, less the time the report has waited.
    """
    page, firsts, typical = repository.list_with_receipts(
        session=session,
        ctx=ctx,
        limit=query.limit,
        offset=query.offset,
        report_type=query.report_type,
        start_date=query.start_date,
        end_date=query.end_date,
    )
    ready_in = {
        report.report_id: ready_in_seconds(
            typical=typical[report.report_id],
            elapsed=(now - report.created_at).total_seconds(),
        )
        for report in page.items
        if report.report_id in typical
    }
    return ReportListing(page=page, first_downloaded_at=firsts, ready_in=ready_in)


def _download_action(report: ReportView) -> AuditAction:
    if report.report_type is ReportType.DATA_PORTABILITY:
        return AuditAction.DATA_PORTABILITY_DOWNLOADED
    return AuditAction.REPORT_DOWNLOADED


@dataclass(frozen=True, slots=True)
class ReportDetails:
    """One report with what its detail page shows beyond the row."""

    report: ReportView
    #: The content's SHA-256 (ready reports only).
    sha256: bytes | None
    #: From the audit trail: the first completed download and how many there were.
    first_downloaded_at: datetime | None
    download_count: int
    #: A data export asked for with a password (from its request's audit entry).
    password_protected: bool = False


def report_detail(*, session: Session, ctx: AuthContext, report_id: uuid.UUID) -> ReportDetails:
    """The report, its digest when ready, and its download history; ReportNotFound if not theirs."""
    found = repository.get_report_with_digest(session=session, ctx=ctx, report_id=report_id)
    if found is None:
        raise ReportNotFound
    report, digest = found
    first, count = audit.first_and_count(
        session=session, ctx=ctx, resource_id=report_id, action=_download_action(report)
    )
    protected = report.report_type is ReportType.DATA_PORTABILITY and (
        export_secrets.was_protected(session=session, report=report)
    )
    return ReportDetails(
        report=report,
        sha256=digest,
        first_downloaded_at=first,
        download_count=count,
        password_protected=protected,
    )


def download_for(*, session: Session, ctx: AuthContext, report_id: uuid.UUID) -> Download:
    """The provider's downloadable report; ReportNotFound (not theirs, not ready), ReportExpired."""
    ref, digest = repository.get_download(session=session, ctx=ctx, report_id=report_id)
    return Download(report=ref.report, storage_key=ref.storage_key, sha256=digest)


def record_download(*, session: Session, ctx: AuthContext, report: ReportView) -> None:
    """Mark the report downloaded and audit it (sensitive for data portability), together."""
    repository.mark_downloaded(session=session, ctx=ctx, report_id=report.report_id)
    action = _download_action(report)
    audit.record(
        session=session,
        ctx=ctx,
        action=action,
        resource_id=report.report_id,
        details={"bytes": report.file_size_bytes},
        sensitive=action is AuditAction.DATA_PORTABILITY_DOWNLOADED,
    )
