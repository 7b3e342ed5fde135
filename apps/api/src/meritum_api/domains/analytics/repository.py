"""The only place that touches SQL for generated reports.

Every read and write on behalf of a user is scoped by the provider of an
``AuthContext``. Status only moves by conditional UPDATE (``WHERE status =
expected``) so that a lost race is detected instead of overwritten; the
trigger installed by migration 0002 refuses illegal moves a second time.
"""

from __future__ import annotations

import functools
import uuid
from datetime import date, datetime, timedelta
from typing import Any, Final

import psycopg
from psycopg.rows import dict_row
from pydantic import TypeAdapter
from sqlalchemy import (
    Date,
    Select,
    Update,
    bindparam,
    case,
    cast,
    func,
    insert,
    literal_column,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.postgresql.psycopg import dialect as psycopg_dialect
from sqlalchemy.orm import Session, aliased

from meritum_api.context import AuthContext
from meritum_api.db.engine import driver_connection
from meritum_api.domains.analytics.exceptions import (
    IllegalTransition,
    ReportExpired,
    ReportNotFound,
    ReportNotReady,
    TransitionConflict,
)
from meritum_api.domains.analytics.keys import storage_key
from meritum_api.domains.analytics.schemas import ReportPage, ReportView, StoredReportRef
from meritum_shared.constants.analytics import (
    DOWNLOAD_LINK_EXPIRY_DAYS,
    LEGAL_TRANSITIONS,
    RETENTION_DAYS,
    AuditAction,
    ReportFormat,
    ReportStatus,
    ReportType,
    report_origin,
)
from meritum_shared.schemas.db import (
    GeneratedReport,
    audit_log,
    generated_report_contents,
    generated_reports,
    report_idempotency_keys,
)

R = GeneratedReport
C = generated_report_contents

#: Dates in list filters are calendar days where the physicians practise.
LOCAL_TIMEZONE = "America/Edmonton"


#: Every column but the storage key: what a ReportView is built from.
_VIEW_COLUMNS = [c for c in generated_reports.c if c.name != "file_path"]


def _view(row: GeneratedReport) -> ReportView:
    return ReportView.model_validate(row)


# --- user-scoped reads and writes -------------------------------------------------


def create_report(
    *,
    session: Session,
    ctx: AuthContext,
    report_type: ReportType,
    format: ReportFormat,
    period_start: date | None,
    period_end: date | None,
    scheduled: bool = False,
    report_id: uuid.UUID | None = None,
) -> ReportView:
    """Insert a pending report; its key and link expiry are fixed from ids and type.

    ``report_id`` is chosen here unless the caller has already referred to it
    (a subscription's run names its report before the report is inserted).
    """
    report_id = report_id or uuid.uuid4()
    days = RETENTION_DAYS[report_origin(report_type, scheduled=scheduled)]
    row = session.execute(
        insert(generated_reports)
        .values(
            report_id=report_id,
            provider_id=ctx.provider_id,
            report_type=report_type,
            format=format,
            period_start=period_start,
            period_end=period_end,
            file_path=storage_key(provider_id=ctx.provider_id, report_id=report_id),
            file_size_bytes=0,
            download_link_expires_at=func.now() + timedelta(days=days),
            scheduled=scheduled,
        )
        .returning(*_VIEW_COLUMNS)
    ).one()
    return ReportView.model_validate(row._mapping)


def get_report(*, session: Session, ctx: AuthContext, report_id: uuid.UUID) -> ReportView | None:
    """One of the provider's reports, or None (also for another provider's id)."""
    row = session.scalars(
        select(R).where(R.report_id == report_id, R.provider_id == ctx.provider_id)
    ).one_or_none()
    return None if row is None else _view(row)


#: The day a report was requested, in Edmonton: what a report without a
#: period (data portability) is listed by.
_REQUESTED_ON = cast(func.timezone(literal_column(f"'{LOCAL_TIMEZONE}'"), R.created_at), Date)


@functools.cache
def _page_statements(
    by_type: bool, from_date: bool, to_date: bool
) -> tuple[Select[Any], Select[Any]]:
    """The page and count statements for one combination of filters, built once.

    Every value is a bound parameter, so the eight variants are all there
    are: listing is the hottest read, and a prebuilt statement skips its
    construction and cache-key work on each request. The date filters
    select by the period a report covers; both stay residual filters on the
    provider's index scan (a provider has about a hundred reports a year).
    """
    conditions: list[Any] = [R.provider_id == bindparam("provider_id")]
    if by_type:
        conditions.append(R.report_type == bindparam("report_type"))
    if from_date:
        first_day = func.coalesce(R.period_start, _REQUESTED_ON)
        conditions.append(first_day >= bindparam("start_date", type_=Date))
    if to_date:
        last_day = func.coalesce(R.period_end, _REQUESTED_ON)
        conditions.append(last_day <= bindparam("end_date", type_=Date))
    # One statement: the page and, by a window over the same filter, the total.
    # The window is computed before LIMIT, so it counts every matching row.
    page = (
        select(*_VIEW_COLUMNS, func.count().over().label("total"))
        .where(*conditions)
        .order_by(R.created_at.desc(), R.report_id.desc())
        .limit(bindparam("limit"))
        .offset(bindparam("offset"))
    )
    count = select(func.count().label("total")).select_from(R).where(*conditions)
    return page, count


#: How many of a kind's latest reports an estimate of its generation time is drawn from.
ESTIMATE_SAMPLE = 10
_DOWNLOADED = (AuditAction.REPORT_DOWNLOADED.value, AuditAction.DATA_PORTABILITY_DOWNLOADED.value)
_IN_PROGRESS = (ReportStatus.PENDING, ReportStatus.GENERATING)


def _receipt_and_typical() -> list[Any]:
    """Two columns more for the web list, each a correlated subquery on its own index.

    ``first_downloaded_at``: the first completed download of a downloaded
    report, from the audit trail (``ix_audit_log_resource_id_action``).
    ``typical_seconds``: for a report in progress, the median request-to-ready
    time of the provider's latest reports of the same type and format (the
    (provider_id, report_type) index). Done in the page's one statement:
    each extra round trip costs more than these lookups.
    """
    first_download = (
        select(func.min(audit_log.c.occurred_at))
        .where(
            audit_log.c.resource_id == R.report_id,
            audit_log.c.action.in_(_DOWNLOADED),
            audit_log.c.provider_id == R.provider_id,
        )
        .scalar_subquery()
    )
    earlier = aliased(GeneratedReport, name="earlier")
    latest = (
        select(
            func.extract("epoch", C.c.recorded_at - earlier.created_at).label("seconds"),
        )
        .join_from(earlier, C, C.c.report_id == earlier.report_id)
        .where(
            earlier.provider_id == R.provider_id,
            earlier.report_type == R.report_type,
            earlier.format == R.format,
        )
        .order_by(earlier.created_at.desc())
        .limit(ESTIMATE_SAMPLE)
        .correlate(R)
        .subquery("latest")
    )
    typical = (
        select(func.percentile_cont(0.5).within_group(latest.c.seconds))
        .select_from(latest)
        .scalar_subquery()
    )
    return [
        case((R.downloaded, first_download)).label("first_downloaded_at"),
        case((R.status.in_(_IN_PROGRESS), typical)).label("typical_seconds"),
    ]


#: The parameters every page statement takes (``page_query``).
_PAGE_PARAMETERS: Final = (
    "provider_id",
    "report_type",
    "start_date",
    "end_date",
    "limit",
    "offset",
)


def _driver_sql(statement: Select[Any]) -> tuple[str, dict[str, Any]]:
    """``statement`` in the driver's SQL, and the values of the constants it binds.

    Constants (a subquery's LIMIT, an IN list) become parameters of their
    own; the caller adds the page parameters to them.
    """
    compiled = statement.compile(dialect=psycopg_dialect())  # type: ignore[no-untyped-call]
    expanded = compiled.construct_expanded_state(params=dict.fromkeys(_PAGE_PARAMETERS))
    constants = {
        name: value for name, value in expanded.parameters.items() if name not in _PAGE_PARAMETERS
    }
    return expanded.statement, constants


@functools.cache
def _page_sql(
    by_type: bool, from_date: bool, to_date: bool, receipts: bool
) -> tuple[tuple[str, dict[str, Any]], tuple[str, dict[str, Any]]]:
    """The page and count statements of these filters in the driver's SQL, compiled once.

    ``receipts`` adds the web list's receipt and estimate columns to the page.
    """
    page, count = _page_statements(by_type, from_date, to_date)
    if receipts:
        page = page.add_columns(*_receipt_and_typical())
    return _driver_sql(page), _driver_sql(count)


#: A statement in the driver's SQL and the parameters to send with it.
Sent = tuple[str, dict[str, Any]]


def page_query(
    *,
    ctx: AuthContext,
    limit: int,
    offset: int,
    report_type: ReportType | None,
    start_date: date | None,
    end_date: date | None,
    receipts: bool = False,
) -> tuple[Sent, Sent]:
    """The page and count statements a listing sends for these filters, with their parameters."""
    params: dict[str, Any] = {
        "provider_id": ctx.provider_id,
        "report_type": report_type,
        "start_date": start_date,
        "end_date": end_date,
        "limit": limit,
        "offset": offset,
    }
    (page_sql, page_constants), (count_sql, count_constants) = _page_sql(
        report_type is not None, start_date is not None, end_date is not None, receipts
    )
    return (page_sql, {**page_constants, **params}), (count_sql, {**count_constants, **params})


#: Validates a page of rows in one call (not one call per row).
_REPORT_ROWS: Final = TypeAdapter(list[ReportView])


async def list_reports(
    *,
    conn: psycopg.AsyncConnection[Any],
    ctx: AuthContext,
    limit: int,
    offset: int,
    report_type: ReportType | None = None,
    start_date: date | None = None,
    end_date: date | None = None,
) -> ReportPage:
    """A page of the provider's reports, newest first, and the filtered total.

    ``start_date`` and ``end_date`` keep the reports whose period lies
    within them (``period_start >= start_date``, ``period_end <= end_date``);
    a report without a period counts as covering the day it was requested,
    in Edmonton.
    """
    (page_sql, page_params), (count_sql, count_params) = page_query(
        ctx=ctx,
        limit=limit,
        offset=offset,
        report_type=report_type,
        start_date=start_date,
        end_date=end_date,
    )
    # The listing is the hottest read. Its SQL is compiled once and runs on
    # the driver's asynchronous connection (:mod:`meritum_api.db.reads`):
    # SQLAlchemy's execution layer (the statement's cache key, result
    # processing, Row objects) costs ~0.2 ms a page, and validating plain
    # dicts is three times faster than validating Row mappings (measured).
    # Every value is a bound parameter; the driver returns the enum columns
    # as text, which ReportView validates.
    async with conn.cursor(row_factory=dict_row) as cursor:
        await cursor.execute(page_sql, page_params)
        rows = await cursor.fetchall()
        # Past the last page (or with nothing at all) the window has no row to
        # ride on: count on its own.
        if rows:
            total = rows[0]["total"]
        else:
            await cursor.execute(count_sql, count_params)
            counted = await cursor.fetchone()
            assert counted is not None
            total = counted["total"]
    return ReportPage(
        items=_REPORT_ROWS.validate_python(rows), total=total, limit=limit, offset=offset
    )


def list_with_receipts(
    *,
    session: Session,
    ctx: AuthContext,
    limit: int,
    offset: int,
    report_type: ReportType | None = None,
    start_date: date | None = None,
    end_date: date | None = None,
) -> tuple[ReportPage, dict[uuid.UUID, datetime], dict[uuid.UUID, float | None]]:
    """:func:`list_reports` with receipts and, for reports in progress, typical durations.

    Also returned: the first download of each downloaded report, and for each
    one in progress the median seconds its kind took lately (None: this
    provider has finished none of that kind).
    """
    (page_sql, page_params), (count_sql, count_params) = page_query(
        ctx=ctx,
        limit=limit,
        offset=offset,
        report_type=report_type,
        start_date=start_date,
        end_date=end_date,
        receipts=True,
    )
    # The web list's every page view: on the driver's cursor, as list_reports.
    with driver_connection(session).cursor(row_factory=dict_row) as cursor:
        rows = cursor.execute(page_sql, page_params).fetchall()
        if rows:
            total = rows[0]["total"]
        else:
            counted = cursor.execute(count_sql, count_params).fetchone()
            assert counted is not None
            total = counted["total"]
    items = _REPORT_ROWS.validate_python(rows)
    firsts: dict[uuid.UUID, datetime] = {}
    typical: dict[uuid.UUID, float | None] = {}
    for report, row in zip(items, rows, strict=True):
        if row["first_downloaded_at"] is not None:
            firsts[report.report_id] = row["first_downloaded_at"]
        if report.status in _IN_PROGRESS:
            seconds = row["typical_seconds"]
            typical[report.report_id] = None if seconds is None else float(seconds)
    return ReportPage(items=items, total=total, limit=limit, offset=offset), firsts, typical


def get_download(
    *, session: Session, ctx: AuthContext, report_id: uuid.UUID
) -> tuple[StoredReportRef, bytes]:
    """The provider's downloadable report, its key and digest; expiry by the database clock.

    One query: PostgreSQL guarantees that a ready report has its digest (a
    deferred constraint trigger of migration 0006), so the inner join of a
    downloadable row always finds it.
    """
    found = session.execute(
        select(R, R.downloadable.label("downloadable"), C.c.sha256)
        .outerjoin(C, C.c.report_id == R.report_id)
        .where(R.report_id == report_id, R.provider_id == ctx.provider_id)
    ).one_or_none()
    if found is None:
        raise ReportNotFound
    row, downloadable, sha256 = found
    if downloadable and sha256 is not None:
        return StoredReportRef(report=_view(row), storage_key=row.file_path), sha256
    if row.status in (ReportStatus.READY, ReportStatus.EXPIRED):
        raise ReportExpired(_view(row))
    raise ReportNotReady


def mark_downloaded(*, session: Session, ctx: AuthContext, report_id: uuid.UUID) -> None:
    """Record that the physician has downloaded the report."""
    session.execute(
        update(R)
        .where(R.report_id == report_id, R.provider_id == ctx.provider_id)
        .values(downloaded=True)
    )


def count_requested_since(
    *, session: Session, ctx: AuthContext, report_type: ReportType, hours: int
) -> int:
    """How many reports of a type the provider requested in the last ``hours``."""
    return session.execute(
        select(func.count())
        .select_from(R)
        .where(
            R.provider_id == ctx.provider_id,
            R.report_type == report_type,
            R.created_at > func.now() - timedelta(hours=hours),
        )
    ).scalar_one()


def seconds_until_one_frees(
    *, session: Session, ctx: AuthContext, report_type: ReportType, hours: int
) -> int:
    """Seconds until the oldest of the provider's requests in the window leaves it."""
    seconds = session.execute(
        select(
            func.extract("epoch", func.min(R.created_at) + timedelta(hours=hours) - func.now())
        ).where(
            R.provider_id == ctx.provider_id,
            R.report_type == report_type,
            R.created_at > func.now() - timedelta(hours=hours),
        )
    ).scalar_one()
    return max(1, int(seconds or 0) + 1)


# --- idempotency keys of report requests ----------------------------------------

K = report_idempotency_keys

#: How long an Idempotency-Key keeps naming its report.
IDEMPOTENCY_WINDOW = timedelta(hours=24)


def find_idempotent(
    *, session: Session, ctx: AuthContext, key: str
) -> tuple[bytes, uuid.UUID] | None:
    """The fingerprint and report of a live key of this provider, if any."""
    found = session.execute(
        select(K.c.request_sha256, K.c.report_id).where(
            K.c.provider_id == ctx.provider_id,
            K.c.idempotency_key == key,
            K.c.created_at > func.now() - IDEMPOTENCY_WINDOW,
        )
    ).one_or_none()
    return None if found is None else (found.request_sha256, found.report_id)


def claim_idempotency_key(
    *, session: Session, ctx: AuthContext, key: str, fingerprint: bytes, report_id: uuid.UUID
) -> bool:
    """Bind a key to a new report; False if a live binding exists (another request won).

    A key older than the window is taken over in place. Two concurrent
    requests with one key serialise on the primary key: the second waits for
    the first to commit, then finds the binding live and gets False.
    """
    statement = (
        pg_insert(K)
        .values(
            provider_id=ctx.provider_id,
            idempotency_key=key,
            request_sha256=fingerprint,
            report_id=report_id,
        )
        .on_conflict_do_update(
            index_elements=[K.c.provider_id, K.c.idempotency_key],
            set_={"request_sha256": fingerprint, "report_id": report_id, "created_at": func.now()},
            where=K.c.created_at <= func.now() - IDEMPOTENCY_WINDOW,
        )
        .returning(K.c.report_id)
    )
    return session.execute(statement).scalar_one_or_none() is not None


# --- system operations of the worker and the cleanup job ------------------------


def move_status(
    *,
    session: Session,
    report_id: uuid.UUID,
    expected: ReportStatus,
    target: ReportStatus,
    **values: Any,
) -> ReportView:
    """Move one report from ``expected`` to ``target``; a lost race raises a conflict."""
    if (expected, target) not in LEGAL_TRANSITIONS:
        raise IllegalTransition(expected, target)
    # Conditional on the expected status: if another process moved the row
    # first, no row matches and the race is reported, never silently undone.
    row = session.scalars(
        update(R)
        .where(R.report_id == report_id, R.status == expected)
        .values(status=target, **values)
        .returning(R)
    ).one_or_none()
    if row is None:
        raise TransitionConflict(expected, target)
    return _view(row)


def begin_generation(*, session: Session, report_id: uuid.UUID) -> bool:
    """Claim a report for generation: pending → generating, or take over one left generating.

    A report still ``generating`` belongs to a worker that died or is still
    writing; :func:`lock_for_writing` tells the two apart. Returns False when
    there is nothing to generate (ready, failed, expired, gone).
    """
    status = session.scalars(
        select(R.status).where(R.report_id == report_id).with_for_update()
    ).one_or_none()
    if status is ReportStatus.PENDING:
        move_status(
            session=session,
            report_id=report_id,
            expected=ReportStatus.PENDING,
            target=ReportStatus.GENERATING,
        )
        return True
    return status is ReportStatus.GENERATING


def lock_for_writing(*, session: Session, report_id: uuid.UUID) -> StoredReportRef | None:
    """Lock a generating report for the rest of the transaction; None if it is not generating.

    The row lock is what makes one writer at a time: it lives exactly as long
    as the worker's connection, so a killed worker releases it at once, while
    a worker that is merely slow (and was presumed dead by the queue) keeps
    it. A second writer waits here, then finds the report ready and stops,
    instead of overwriting or deleting the file the first one published.
    """
    row = session.scalars(select(R).where(R.report_id == report_id).with_for_update()).one_or_none()
    if row is None or row.status is not ReportStatus.GENERATING:
        return None
    return StoredReportRef(report=_view(row), storage_key=row.file_path)


def finish_ready(*, session: Session, report: ReportView, size: int, sha256: bytes) -> ReportView:
    """generating → ready with the content's digest; the download link runs from now."""
    days = DOWNLOAD_LINK_EXPIRY_DAYS[report_origin(report.report_type, scheduled=report.scheduled)]
    ready = move_status(
        session=session,
        report_id=report.report_id,
        expected=ReportStatus.GENERATING,
        target=ReportStatus.READY,
        file_size_bytes=size,
        download_link_expires_at=func.now() + timedelta(days=days),
    )
    # A retried generation rewrites the file, so the digest is replaced too. The
    # wall clock, not now(): this transaction began before the file was written,
    # and recorded_at - created_at is how long the report took (see generation_seconds).
    written_at = func.clock_timestamp()
    session.execute(
        pg_insert(generated_report_contents)
        .values(report_id=report.report_id, sha256=sha256, recorded_at=written_at)
        .on_conflict_do_update(
            index_elements=["report_id"], set_={"sha256": sha256, "recorded_at": written_at}
        )
    )
    return ready


def get_report_with_digest(
    *, session: Session, ctx: AuthContext, report_id: uuid.UUID
) -> tuple[ReportView, bytes | None] | None:
    """One of the provider's reports and its content digest (ready ones), or None."""
    found = session.execute(
        select(R, C.c.sha256)
        .outerjoin(C, C.c.report_id == R.report_id)
        .where(R.report_id == report_id, R.provider_id == ctx.provider_id)
    ).one_or_none()
    if found is None:
        return None
    row, sha256 = found
    return _view(row), sha256


def expire_due_statement(*, limit: int) -> Update:
    """The UPDATE of one cleanup batch: settled reports past their link, oldest first."""
    # SKIP LOCKED: a row being downloaded-and-marked or moved by another
    # transaction is left for the next batch instead of blocking this one.
    due = (
        select(R.report_id)
        .where(R.settled, R.link_expired)
        .order_by(R.download_link_expires_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
        .cte("due")
    )
    return (
        update(R)
        .where(R.report_id == due.c.report_id)
        .values(status=ReportStatus.EXPIRED)
        .returning(R.file_path)
    )


def expire_due(*, session: Session, limit: int) -> list[str]:
    """Expire one batch of ready/failed reports past their link; return their storage keys."""
    return list(session.scalars(expire_due_statement(limit=limit)).all())


def live_report_ids(*, session: Session, report_ids: list[uuid.UUID]) -> set[uuid.UUID]:
    """Which of these reports still hold their file (the orphan sweep keeps those)."""
    if not report_ids:
        return set()
    rows = session.scalars(
        select(R.report_id).where(R.report_id.in_(report_ids), R.holds_file)
    ).all()
    return set(rows)
