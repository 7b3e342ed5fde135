"""PostgreSQL itself refuses bad reports, with the right SQLSTATE, changing nothing."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, insert, select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from factories import add_provider, refusal, report_values
from meritum_shared.constants.analytics import ReportFormat, ReportStatus, ReportType
from meritum_shared.schemas.db import GeneratedReport, generated_reports


def _count(session: Session) -> int:
    return session.execute(select(func.count()).select_from(generated_reports)).scalar_one()


def test_insert_of_required_columns_gets_every_default(session: Session) -> None:
    provider_id = add_provider(session)
    before = session.execute(text("SELECT now()")).scalar_one()
    row = session.execute(
        insert(generated_reports).values(**report_values(provider_id)).returning(generated_reports)
    ).one()
    assert isinstance(row.report_id, uuid.UUID)
    assert row.downloaded is False
    assert row.scheduled is False
    assert row.status is ReportStatus.PENDING
    assert row.error_message is None
    assert row.created_at == before  # now() is the transaction's start
    assert row.created_at.tzinfo is not None


def test_orm_row_reads_back_as_enums_and_dates(session: Session) -> None:
    provider_id = add_provider(session)
    report_id = session.execute(
        insert(generated_reports)
        .values(**report_values(provider_id))
        .returning(generated_reports.c.report_id)
    ).scalar_one()
    report = session.get_one(GeneratedReport, report_id)
    assert report.report_type is ReportType.ACCOUNTANT_DETAIL
    assert report.format is ReportFormat.CSV
    assert report.period_start == date(2026, 1, 1)
    assert "file_path" not in repr(report)


PORTABILITY: dict[str, Any] = {
    "report_type": "DATA_PORTABILITY",
    "format": "ZIP",
    "period_start": None,
    "period_end": None,
}

# (case, overrides, SQLSTATE, constraint or column named by the refusal)
REFUSALS: list[tuple[str, dict[str, Any], str, str]] = [
    ("unknown report type", {"report_type": "NOT_A_TYPE"}, "23514", "report_type_valid"),
    ("lower-case report type", {"report_type": "weekly_summary"}, "23514", "report_type_valid"),
    ("unknown format", {"format": "DOCX"}, "23514", "format_valid"),
    ("unknown status", {"status": "done"}, "23514", "status_valid"),
    ("upper-case status", {"status": "READY"}, "23514", "status_valid"),
    ("negative size", {"file_size_bytes": -1}, "23514", "file_size_not_negative"),
    ("start without end", {"period_end": None}, "23514", "period_bounds_paired"),
    ("end without start", {"period_start": None}, "23514", "period_bounds_paired"),
    (
        "end before start",
        {"period_start": date(2026, 2, 1), "period_end": date(2026, 1, 31)},
        "23514",
        "period_order",
    ),
    (
        "period on data portability",
        {**PORTABILITY, "period_start": date(2026, 1, 1), "period_end": date(2026, 1, 31)},
        "23514",
        "period_matches_type",
    ),
    (
        "no period on another type",
        {"period_start": None, "period_end": None},
        "23514",
        "period_matches_type",
    ),
    ("data portability as CSV", {**PORTABILITY, "format": "CSV"}, "23514", "portability_is_zip"),
    ("unknown provider", {"provider_id": uuid.uuid4()}, "23503", "provider_id_providers"),
    ("missing file path", {"file_path": None}, "23502", "file_path"),
    ("missing size", {"file_size_bytes": None}, "23502", "file_size_bytes"),
    ("missing expiry", {"download_link_expires_at": None}, "23502", "download_link_expires_at"),
    ("null status", {"status": None}, "23502", "status"),
    ("null downloaded", {"downloaded": None}, "23502", "downloaded"),
]


@pytest.mark.parametrize(
    ("case", "overrides", "sqlstate", "named"), REFUSALS, ids=[r[0] for r in REFUSALS]
)
def test_database_refuses(
    session: Session, case: str, overrides: dict[str, Any], sqlstate: str, named: str
) -> None:
    provider_id = add_provider(session)
    session.execute(insert(generated_reports).values(**report_values(provider_id)))
    before = _count(session)
    values = {**report_values(provider_id), **overrides}
    # Bypass the Python enums: the database must refuse raw strings on its own.
    statement = text(
        "INSERT INTO generated_reports ("
        + ", ".join(values)
        + ") VALUES ("
        + ", ".join(f":{k}" for k in values)
        + ")"
    )
    savepoint = session.begin_nested()
    with pytest.raises(DBAPIError) as caught:
        session.execute(statement, values)
    savepoint.rollback()
    refused = refusal(caught.value)
    assert refused.sqlstate == sqlstate
    # The refusal names the rule (or, for a missing value, the column) it broke.
    assert named in (refused.diag.constraint_name or refused.diag.column_name or "")
    assert _count(session) == before


def test_reversed_period_is_refused_by_the_period_order_rule(session: Session) -> None:
    provider_id = add_provider(session)
    savepoint = session.begin_nested()
    with pytest.raises(DBAPIError) as caught:
        session.execute(
            insert(generated_reports).values(
                **report_values(
                    provider_id, period_start=date(2026, 3, 1), period_end=date(2026, 2, 1)
                )
            )
        )
    savepoint.rollback()
    refused = refusal(caught.value)
    assert refused.sqlstate == "23514"
    assert refused.diag.constraint_name == "ck_generated_reports_period_order"


def test_valid_data_portability_row_is_accepted(session: Session) -> None:
    provider_id = add_provider(session)
    session.execute(
        insert(generated_reports).values(
            **report_values(
                provider_id,
                **PORTABILITY,
                download_link_expires_at=datetime.now(UTC) + timedelta(days=3),
            )
        )
    )
    assert _count(session) == 1


def test_single_day_period_is_accepted(session: Session) -> None:
    provider_id = add_provider(session)
    day = date(2026, 6, 30)
    session.execute(
        insert(generated_reports).values(
            **report_values(provider_id, period_start=day, period_end=day)
        )
    )
    assert _count(session) == 1
