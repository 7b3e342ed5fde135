"""Provider B reaches nothing of provider A's through any repository function."""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import Engine, update
from sqlalchemy.orm import Session

from factories import add_provider, listed
from meritum_api.context import AuthContext
from meritum_api.domains.analytics import repository
from meritum_api.domains.analytics.exceptions import (
    ReportExpired,
    ReportNotFound,
    ReportNotReady,
)
from meritum_shared.constants.analytics import ReportFormat, ReportStatus, ReportType
from meritum_shared.schemas.db import GeneratedReport


def _ctx(session: Session) -> AuthContext:
    return AuthContext(provider_id=add_provider(session))


def _create(session: Session, ctx: AuthContext, *, scheduled: bool = False) -> GeneratedReport:
    view = repository.create_report(
        session=session,
        ctx=ctx,
        report_type=ReportType.ACCOUNTANT_DETAIL,
        format=ReportFormat.CSV,
        period_start=date(2026, 1, 1),
        period_end=date(2026, 1, 31),
        scheduled=scheduled,
    )
    return session.get_one(GeneratedReport, view.report_id)


def test_created_report_has_opaque_key_and_retention_expiry(session: Session) -> None:
    ctx = _ctx(session)
    row = _create(session, ctx)
    assert row.status is ReportStatus.PENDING
    assert row.file_size_bytes == 0
    assert row.file_path == f"reports/{ctx.provider_id}/{row.report_id}"
    assert (row.download_link_expires_at - row.created_at).days == 30
    scheduled = _create(session, ctx, scheduled=True)
    assert (scheduled.download_link_expires_at - scheduled.created_at).days == 90
    portability = repository.create_report(
        session=session,
        ctx=ctx,
        report_type=ReportType.DATA_PORTABILITY,
        format=ReportFormat.ZIP,
        period_start=None,
        period_end=None,
    )
    assert (portability.download_link_expires_at - portability.created_at).days == 3


def test_views_never_carry_the_storage_key(session: Session) -> None:
    ctx = _ctx(session)
    row = _create(session, ctx)
    view = repository.get_report(session=session, ctx=ctx, report_id=row.report_id)
    assert view is not None
    assert "file_path" not in view.model_dump()
    assert row.file_path not in view.model_dump_json()


def test_other_provider_reaches_nothing(session: Session) -> None:
    owner, intruder = _ctx(session), _ctx(session)
    row = _create(session, owner)
    repository.move_status(
        session=session,
        report_id=row.report_id,
        expected=ReportStatus.PENDING,
        target=ReportStatus.GENERATING,
    )
    repository.finish_ready(
        session=session,
        report=repository.get_report(session=session, ctx=owner, report_id=row.report_id)
        or pytest.fail("owner cannot see own report"),
        size=42,
        sha256=bytes(range(32)),
    )
    assert repository.get_report(session=session, ctx=intruder, report_id=row.report_id) is None
    assert (
        repository.get_report_with_digest(session=session, ctx=intruder, report_id=row.report_id)
        is None
    )
    # An Idempotency-Key names a report only for the provider who sent it.
    fingerprint = bytes(32)
    assert repository.claim_idempotency_key(
        session=session, ctx=owner, key="k-1", fingerprint=fingerprint, report_id=row.report_id
    )
    assert repository.find_idempotent(session=session, ctx=intruder, key="k-1") is None
    with pytest.raises(ReportNotFound):
        repository.get_download(session=session, ctx=intruder, report_id=row.report_id)
    repository.mark_downloaded(session=session, ctx=intruder, report_id=row.report_id)
    assert not session.get_one(GeneratedReport, row.report_id, populate_existing=True).downloaded
    assert (
        repository.count_requested_since(
            session=session, ctx=intruder, report_type=ReportType.ACCOUNTANT_DETAIL, hours=24
        )
        == 0
    )
    # The owner, meanwhile, reaches all of it.
    assert repository.get_download(session=session, ctx=owner, report_id=row.report_id)
    found = repository.get_report_with_digest(session=session, ctx=owner, report_id=row.report_id)
    assert found is not None
    assert found[1] == bytes(range(32))
    assert repository.find_idempotent(session=session, ctx=owner, key="k-1") == (
        fingerprint,
        row.report_id,
    )
    repository.mark_downloaded(session=session, ctx=owner, report_id=row.report_id)
    assert session.get_one(GeneratedReport, row.report_id, populate_existing=True).downloaded


def test_download_rules(session: Session) -> None:
    ctx = _ctx(session)
    pending = _create(session, ctx)
    with pytest.raises(ReportNotReady):
        repository.get_download(session=session, ctx=ctx, report_id=pending.report_id)
    ready = _create(session, ctx)
    repository.move_status(
        session=session,
        report_id=ready.report_id,
        expected=ReportStatus.PENDING,
        target=ReportStatus.GENERATING,
    )
    view = repository.get_report(session=session, ctx=ctx, report_id=ready.report_id)
    assert view is not None
    repository.finish_ready(session=session, report=view, size=5, sha256=bytes(32))
    ref, digest = repository.get_download(session=session, ctx=ctx, report_id=ready.report_id)
    assert digest == bytes(32)
    assert ref.storage_key == ready.file_path
    assert ready.file_path not in repr(ref)
    # Expired by the database clock: the link's instant has passed.
    session.execute(
        update(GeneratedReport)
        .where(GeneratedReport.report_id == ready.report_id)
        .values(download_link_expires_at=GeneratedReport.created_at)
    )
    with pytest.raises(ReportExpired):
        repository.get_download(session=session, ctx=ctx, report_id=ready.report_id)


def test_another_provider_lists_none_of_the_reports(engine: Engine) -> None:
    # Committed, and read as the API reads the list (its own connection).
    with Session(engine) as session, session.begin():
        owner, intruder = _ctx(session), _ctx(session)
        _create(session, owner)
    assert listed(engine, owner, limit=100, offset=0).total == 1
    page = listed(engine, intruder, limit=100, offset=0)
    assert page.items == []
    assert page.total == 0


def test_list_filters_and_pagination(engine: Engine) -> None:
    with Session(engine) as session, session.begin():
        ctx = _ctx(session)
        rows = [_create(session, ctx) for _ in range(5)]
        repository.create_report(
            session=session,
            ctx=ctx,
            report_type=ReportType.DATA_PORTABILITY,
            format=ReportFormat.ZIP,
            period_start=None,
            period_end=None,
        )
        today = rows[0].created_at.date()
    page = listed(engine, ctx, limit=2, offset=0)
    assert page.total == 6
    assert len(page.items) == 2
    everything = listed(engine, ctx, limit=100, offset=0)
    assert [r.created_at for r in everything.items] == sorted(
        (r.created_at for r in everything.items), reverse=True
    )
    second = listed(engine, ctx, limit=2, offset=2)
    assert {r.report_id for r in page.items}.isdisjoint(r.report_id for r in second.items)
    only_csv = listed(engine, ctx, limit=100, offset=0, report_type=ReportType.ACCOUNTANT_DETAIL)
    assert only_csv.total == len(rows)
    future = listed(engine, ctx, limit=100, offset=0, start_date=date(today.year + 1, 1, 1))
    assert future.total == 0
    around = listed(
        engine,
        ctx,
        limit=100,
        offset=0,
        start_date=date(today.year - 1, 1, 1),
        end_date=date(today.year + 1, 12, 31),
    )
    assert around.total == 6
    past_the_end = listed(engine, ctx, limit=20, offset=6)
    assert past_the_end.items == []
    assert past_the_end.total == 6
