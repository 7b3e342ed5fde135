"""The only place that touches SQL for generated reports.

Every read and write on behalf of a user is scoped by the provider of an
``AuthContext``. Status only moves by conditional UPDATE (``WHERE status =
expected``) so that a lost race is detected instead of overwritten; the
trigger installed by migration 0002 refuses illegal moves a second time.
"""

from __future__ import annotations

import uuid
from datetime import date, timedelta
from typing import Any

from sqlalchemy import Select, func, insert, select, update
from sqlalchemy.orm import Session

from meritum_api.auth.context import AuthContext
from meritum_api.domains.analytics.exceptions import (
    IllegalTransition,
    ReportExpired,
    ReportNotFound,
    ReportNotReady,
    TransitionConflict,
)
from meritum_api.domains.analytics.schemas import ReportPage, ReportView, StoredReportRef
from meritum_shared.constants.analytics import (
    DOWNLOAD_LINK_EXPIRY_DAYS,
    LEGAL_TRANSITIONS,
    RETENTION_DAYS,
    ReportFormat,
    ReportStatus,
    ReportType,
    report_origin,
)
from meritum_shared.schemas.db import GeneratedReport, generated_reports

R = GeneratedReport

#: Dates in list filters are calendar days where the physicians practise.
LOCAL_TIMEZONE = "America/Edmonton"


def storage_key(*, provider_id: uuid.UUID, report_id: uuid.UUID) -> str:
    """The opaque storage key of a report's file: built from ids only."""
    return f"reports/{provider_id}/{report_id}"


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
) -> ReportView:
    """Insert a pending report; its key and link expiry are fixed from ids and type."""
    report_id = uuid.uuid4()
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
        .returning(*[c for c in generated_reports.c if c.name != "file_path"])
    ).one()
    return ReportView.model_validate(row._mapping)


def get_report(*, session: Session, ctx: AuthContext, report_id: uuid.UUID) -> ReportView | None:
    """One of the provider's reports, or None (also for another provider's id)."""
    row = session.scalars(
        select(R).where(R.report_id == report_id, R.provider_id == ctx.provider_id)
    ).one_or_none()
    return None if row is None else _view(row)


def _filtered(
    ctx: AuthContext,
    report_type: ReportType | None,
    start_date: date | None,
    end_date: date | None,
) -> list[Any]:
    conditions: list[Any] = [R.provider_id == ctx.provider_id]
    if report_type is not None:
        conditions.append(R.report_type == report_type)
    if start_date is not None:
        conditions.append(R.created_at >= func.timezone(LOCAL_TIMEZONE, start_date))
    if end_date is not None:
        conditions.append(
            R.created_at < func.timezone(LOCAL_TIMEZONE, end_date + timedelta(days=1))
        )
    return conditions


def list_reports(
    *,
    session: Session,
    ctx: AuthContext,
    limit: int,
    offset: int,
    report_type: ReportType | None = None,
    start_date: date | None = None,
    end_date: date | None = None,
) -> ReportPage:
    """A page of the provider's reports, newest first, and the filtered total."""
    conditions = _filtered(ctx, report_type, start_date, end_date)
    rows = session.scalars(
        select(R)
        .where(*conditions)
        .order_by(R.created_at.desc(), R.report_id.desc())
        .limit(limit)
        .offset(offset)
    ).all()
    total = session.execute(select(func.count()).select_from(R).where(*conditions)).scalar_one()
    return ReportPage(items=[_view(r) for r in rows], total=total, limit=limit, offset=offset)


def get_download(*, session: Session, ctx: AuthContext, report_id: uuid.UUID) -> StoredReportRef:
    """The provider's ready report and its key; expiry judged by the database clock."""
    found = session.execute(
        select(R, R.link_expired.label("expired")).where(
            R.report_id == report_id, R.provider_id == ctx.provider_id
        )
    ).one_or_none()
    if found is None:
        raise ReportNotFound
    row, expired = found
    if row.status is ReportStatus.EXPIRED or (row.status is ReportStatus.READY and expired):
        raise ReportExpired(row.report_id)
    if row.status is not ReportStatus.READY:
        raise ReportNotReady
    return StoredReportRef(report=_view(row), storage_key=row.file_path)


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


# --- statements of the access paths (EXPLAINed by the tests) ---------------------


def newest_first(*, ctx: AuthContext, limit: int, offset: int = 0) -> Select[R]:
    """A provider's reports, newest first: walks ``(provider_id, created_at DESC)``."""
    return (
        select(R)
        .where(R.provider_id == ctx.provider_id)
        .order_by(R.created_at.desc(), R.report_id.desc())
        .limit(limit)
        .offset(offset)
    )


def of_type_newest_first(
    *, ctx: AuthContext, report_type: ReportType, limit: int, offset: int = 0
) -> Select[R]:
    """A provider's reports of one type: walks ``(provider_id, report_type)``."""
    return (
        select(R)
        .where(R.provider_id == ctx.provider_id, R.report_type == report_type)
        .order_by(R.created_at.desc(), R.report_id.desc())
        .limit(limit)
        .offset(offset)
    )


def expired_links(*, limit: int) -> Select[R]:
    """Rows whose download link has expired and still hold a file, oldest first."""
    return (
        select(R)
        .where(R.link_expired, R.status.in_([ReportStatus.READY, ReportStatus.FAILED]))
        .order_by(R.download_link_expires_at)
        .limit(limit)
    )


def oldest_pending(*, limit: int) -> Select[R]:
    """The processing queue: pending reports, oldest first."""
    return select(R).where(R.status == ReportStatus.PENDING).order_by(R.created_at).limit(limit)


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


def begin_generation(*, session: Session, report_id: uuid.UUID) -> StoredReportRef | None:
    """Claim a report for generation: pending → generating, or resume one left generating.

    A report still ``generating`` was being generated by a process that died
    (the queue only hands a job to one worker at a time): it is taken over.
    Returns None when there is nothing to generate (ready, failed, expired, gone).
    """
    row = session.scalars(select(R).where(R.report_id == report_id).with_for_update()).one_or_none()
    if row is None or row.status not in (ReportStatus.PENDING, ReportStatus.GENERATING):
        return None
    if row.status is ReportStatus.PENDING:
        move_status(
            session=session,
            report_id=report_id,
            expected=ReportStatus.PENDING,
            target=ReportStatus.GENERATING,
        )
        session.refresh(row)
    return StoredReportRef(report=_view(row), storage_key=row.file_path)


def finish_ready(*, session: Session, report: ReportView, size: int) -> ReportView:
    """generating → ready; the download link runs from this moment."""
    days = DOWNLOAD_LINK_EXPIRY_DAYS[report_origin(report.report_type, scheduled=report.scheduled)]
    return move_status(
        session=session,
        report_id=report.report_id,
        expected=ReportStatus.GENERATING,
        target=ReportStatus.READY,
        file_size_bytes=size,
        download_link_expires_at=func.now() + timedelta(days=days),
    )


def expire_due(*, session: Session, limit: int) -> list[str]:
    """Expire one batch of ready/failed reports past their link; return their storage keys."""
    # SKIP LOCKED: a row being downloaded-and-marked or moved by another
    # transaction is left for the next batch instead of blocking this one.
    due = (
        select(R.report_id)
        .where(R.link_expired, R.status.in_([ReportStatus.READY, ReportStatus.FAILED]))
        .order_by(R.download_link_expires_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
        .cte("due")
    )
    keys = session.scalars(
        update(R)
        .where(R.report_id == due.c.report_id)
        .values(status=ReportStatus.EXPIRED)
        .returning(R.file_path)
    ).all()
    return list(keys)


def live_report_ids(*, session: Session, report_ids: list[uuid.UUID]) -> set[uuid.UUID]:
    """Which of these reports still exist in a status that may own a file."""
    if not report_ids:
        return set()
    rows = session.scalars(
        select(R.report_id).where(R.report_id.in_(report_ids), R.status != ReportStatus.EXPIRED)
    ).all()
    return set(rows)
