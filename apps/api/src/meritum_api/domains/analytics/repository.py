"""The only place that touches SQL for generated reports."""

from __future__ import annotations

from sqlalchemy import Select, select

from meritum_api.auth.context import AuthContext
from meritum_shared.constants.analytics import ReportStatus, ReportType
from meritum_shared.schemas.db import GeneratedReport

R = GeneratedReport


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
