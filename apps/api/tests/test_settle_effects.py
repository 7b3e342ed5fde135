"""What is written when a report settles commits with its status, or vanishes with it."""

from __future__ import annotations

import tempfile
import uuid
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session

from factories import add_paid_claims, add_provider
from meritum_api.context import AuthContext
from meritum_api.db.cluster import fast_root
from meritum_api.deps import Deps, Role, build_deps
from meritum_api.domains.analytics import service
from meritum_api.domains.analytics.generation import Outcome, generate_report
from meritum_api.domains.analytics.schemas import ReportView
from meritum_shared.constants.analytics import ReportFormat, ReportStatus, ReportType
from workers import worker_settings

PERIOD = (date(2026, 1, 1), date(2026, 1, 31))


class EffectRefused(Exception):
    """The effect of this test refusing a ready report, after it wrote its row."""


@pytest.fixture(scope="module")
def deps(db_url: str, engine: Engine) -> Iterator[Deps]:
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE settle_marks (report_id uuid, status text)"))
    with tempfile.TemporaryDirectory(prefix="meritum-effects-", dir=fast_root()) as path:
        built = build_deps(
            worker_settings(db_url, Path(path) / "reports"), db_url, role=Role.COMMAND
        )
        yield built
        built.close()


def _mark(deps: Deps, session: Session, report: ReportView) -> None:
    session.execute(
        text("INSERT INTO settle_marks VALUES (:id, :status)"),
        {"id": report.report_id, "status": report.status.value},
    )


def _mark_then_refuse_ready(deps: Deps, session: Session, report: ReportView) -> None:
    _mark(deps, session, report)
    if report.status is ReportStatus.READY:
        raise EffectRefused


def _requested(deps: Deps) -> uuid.UUID:
    with deps.session_factory.begin() as session:
        provider_id = add_provider(session)
        add_paid_claims(session, provider_id=provider_id, count=3, first_payment=PERIOD[0], days=20)
        report = service.request_report(
            session=session,
            ctx=AuthContext(provider_id=provider_id),
            queue=deps.queue,
            report_type=ReportType.ACCOUNTANT_SUMMARY,
            format=ReportFormat.CSV,
            period_start=PERIOD[0],
            period_end=PERIOD[1],
        )
    return report.report_id


def _marks(engine: Engine, report_id: uuid.UUID) -> list[str]:
    with engine.connect() as conn:
        rows = conn.execute(
            text("SELECT status FROM settle_marks WHERE report_id = :id ORDER BY status"),
            {"id": report_id},
        ).scalars()
        return list(rows)


def _status(engine: Engine, report_id: uuid.UUID) -> str:
    with engine.connect() as conn:
        return str(
            conn.execute(
                text("SELECT status FROM generated_reports WHERE report_id = :id"),
                {"id": report_id},
            ).scalar_one()
        )


def test_effects_of_a_ready_report_commit_with_it(deps: Deps, engine: Engine) -> None:
    report_id = _requested(deps)
    outcome = generate_report(
        deps=deps.replace(settle_effects=(_mark,)),
        report_id=report_id,
        is_final_attempt=lambda exc: True,
    )
    assert outcome is Outcome.READY
    assert _status(engine, report_id) == "ready"
    assert _marks(engine, report_id) == ["ready"]


def test_effects_roll_back_with_a_status_change_that_does_not_commit(
    deps: Deps, engine: Engine
) -> None:
    report_id = _requested(deps)
    outcome = generate_report(
        deps=deps.replace(settle_effects=(_mark_then_refuse_ready,)),
        report_id=report_id,
        is_final_attempt=lambda exc: isinstance(exc, EffectRefused),
    )
    # The ready transaction rolled back, its mark with it; the failure that
    # followed committed with its own mark.
    assert outcome is Outcome.FAILED
    assert _status(engine, report_id) == "failed"
    assert _marks(engine, report_id) == ["failed"]
