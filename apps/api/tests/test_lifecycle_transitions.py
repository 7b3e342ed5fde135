"""The report state machine, enforced by the repository and again by PostgreSQL."""

from __future__ import annotations

import itertools
import uuid

import pytest
from sqlalchemy import insert, select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from factories import add_provider, refusal, report_values
from meritum_api.domains.analytics import repository
from meritum_api.domains.analytics.exceptions import IllegalTransition, TransitionConflict
from meritum_shared.constants.analytics import LEGAL_TRANSITIONS, ReportStatus
from meritum_shared.schemas.db import GeneratedReport, generated_reports

PAIRS = [(a, b) for a, b in itertools.permutations(ReportStatus, 2)]


def _report_in(session: Session, status: ReportStatus) -> uuid.UUID:
    provider_id = add_provider(session)
    report_id: uuid.UUID = session.execute(
        insert(generated_reports)
        .values(**report_values(provider_id, status=status, file_size_bytes=10))
        .returning(generated_reports.c.report_id)
    ).scalar_one()
    return report_id


def _status(session: Session, report_id: uuid.UUID) -> ReportStatus:
    return session.execute(
        select(GeneratedReport.status).where(GeneratedReport.report_id == report_id)
    ).scalar_one()


@pytest.mark.parametrize(("current", "target"), PAIRS, ids=[f"{a}->{b}" for a, b in PAIRS])
def test_repository_moves_only_legal_transitions(
    session: Session, current: ReportStatus, target: ReportStatus
) -> None:
    report_id = _report_in(session, current)
    if (current, target) in LEGAL_TRANSITIONS:
        moved = repository.move_status(
            session=session, report_id=report_id, expected=current, target=target
        )
        assert moved.status is target
        assert _status(session, report_id) is target
    else:
        with pytest.raises(IllegalTransition):
            repository.move_status(
                session=session, report_id=report_id, expected=current, target=target
            )
        assert _status(session, report_id) is current


@pytest.mark.parametrize(("current", "target"), PAIRS, ids=[f"{a}->{b}" for a, b in PAIRS])
def test_trigger_refuses_illegal_transitions_even_in_raw_sql(
    session: Session, current: ReportStatus, target: ReportStatus
) -> None:
    report_id = _report_in(session, current)
    statement = text("UPDATE generated_reports SET status = :target WHERE report_id = :id")
    savepoint = session.begin_nested()
    if (current, target) in LEGAL_TRANSITIONS:
        session.execute(statement, {"target": target.value, "id": report_id})
        savepoint.commit()
        assert _status(session, report_id) is target
        return
    with pytest.raises(DBAPIError) as caught:
        session.execute(statement, {"target": target.value, "id": report_id})
    savepoint.rollback()
    refused = refusal(caught.value)
    assert refused.sqlstate == "23514"
    assert refused.diag.constraint_name == "tr_generated_reports_status_transition"
    assert _status(session, report_id) is current


def test_lost_race_is_a_conflict_not_an_overwrite(session: Session) -> None:
    report_id = _report_in(session, ReportStatus.PENDING)
    repository.move_status(
        session=session,
        report_id=report_id,
        expected=ReportStatus.PENDING,
        target=ReportStatus.GENERATING,
    )
    with pytest.raises(TransitionConflict):
        # A second worker believing the report still pending loses the race.
        repository.move_status(
            session=session,
            report_id=report_id,
            expected=ReportStatus.PENDING,
            target=ReportStatus.GENERATING,
        )
    assert _status(session, report_id) is ReportStatus.GENERATING


def test_ready_requires_a_positive_size(session: Session) -> None:
    provider_id = add_provider(session)
    report_id = session.execute(
        insert(generated_reports)
        .values(**report_values(provider_id, status=ReportStatus.GENERATING))
        .returning(generated_reports.c.report_id)
    ).scalar_one()
    savepoint = session.begin_nested()
    with pytest.raises(DBAPIError) as caught:
        session.execute(
            text("UPDATE generated_reports SET status = 'ready' WHERE report_id = :id"),
            {"id": report_id},
        )
    savepoint.rollback()
    refused = refusal(caught.value)
    assert refused.sqlstate is not None
    assert refused.sqlstate.startswith("23")
    assert refused.diag.constraint_name == "ck_generated_reports_ready_has_content"
    assert _status(session, report_id) is ReportStatus.GENERATING


@pytest.mark.parametrize(
    "assignment",
    [
        "file_path = 'reports/elsewhere'",
        "provider_id = gen_random_uuid()",
        "report_type = 'WEEKLY_SUMMARY'",
        "format = 'PDF'",
        "period_end = period_end + 1",
        "created_at = now() - interval '1 day'",
        "scheduled = true",
    ],
)
def test_identity_columns_cannot_be_rewritten(session: Session, assignment: str) -> None:
    report_id = _report_in(session, ReportStatus.READY)
    before = session.execute(
        select(generated_reports).where(generated_reports.c.report_id == report_id)
    ).one()
    savepoint = session.begin_nested()
    with pytest.raises(DBAPIError) as caught:
        session.execute(
            text(f"UPDATE generated_reports SET {assignment} WHERE report_id = :id"),
            {"id": report_id},
        )
    savepoint.rollback()
    assert getattr(caught.value.orig, "sqlstate", None) in {"23514", "23503"}
    after = session.execute(
        select(generated_reports).where(generated_reports.c.report_id == report_id)
    ).one()
    assert after == before


def test_mutable_columns_still_change(session: Session) -> None:
    report_id = _report_in(session, ReportStatus.READY)
    session.execute(
        text("UPDATE generated_reports SET downloaded = true WHERE report_id = :id"),
        {"id": report_id},
    )
    assert session.get_one(GeneratedReport, report_id, populate_existing=True).downloaded
