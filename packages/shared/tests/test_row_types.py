"""The Pydantic row types are exactly the table's columns, typed by the enums.

This module is also checked by mypy (strict): the ``assert_type`` calls fail
type-checking if the enum types stop flowing into the mapped and row types.
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from typing import assert_type

import pytest
from pydantic import ValidationError

from meritum_shared.constants.analytics import ReportFormat, ReportStatus, ReportType
from meritum_shared.schemas.db import (
    GeneratedReport,
    InsertGeneratedReport,
    SafeGeneratedReport,
    SelectGeneratedReport,
    generated_reports,
)

COLUMNS = [column.name for column in generated_reports.columns]


def test_insert_fields_are_exactly_the_columns() -> None:
    assert list(InsertGeneratedReport.model_fields) == COLUMNS


def test_select_fields_are_exactly_the_columns() -> None:
    assert list(SelectGeneratedReport.model_fields) == COLUMNS


def test_insert_makes_exactly_the_defaulted_and_nullable_columns_optional() -> None:
    optional = {
        column.name
        for column in generated_reports.columns
        if column.server_default is not None or column.nullable
    }
    assert {
        name
        for name, field in InsertGeneratedReport.model_fields.items()
        if not field.is_required()
    } == optional


def test_select_requires_every_column() -> None:
    assert all(field.is_required() for field in SelectGeneratedReport.model_fields.values())


def _insert() -> InsertGeneratedReport:
    return InsertGeneratedReport(
        provider_id=uuid.uuid4(),
        report_type=ReportType.RRNP_QUARTERLY,
        format=ReportFormat.PDF,
        period_start=date(2026, 1, 1),
        period_end=date(2026, 3, 31),
        file_path="reports/x/y",
        file_size_bytes=0,
        download_link_expires_at=datetime(2026, 6, 1, tzinfo=UTC),
    )


def test_enum_types_flow_into_the_row_types() -> None:
    row = _insert()
    assert_type(row.report_type, ReportType)
    assert_type(row.format, ReportFormat)
    assert_type(row.status, ReportStatus | None)
    assert_type(row.period_start, date | None)
    assert_type(row.file_size_bytes, int)
    # What an INSERT carries: the defaulted columns left unset, to PostgreSQL.
    assert row.model_dump(exclude_unset=True).keys() == {
        "provider_id",
        "report_type",
        "format",
        "period_start",
        "period_end",
        "file_path",
        "file_size_bytes",
        "download_link_expires_at",
    }


def test_enum_types_flow_into_the_mapped_class() -> None:
    report = GeneratedReport(report_type=ReportType.WCB_TIMING, status=ReportStatus.READY)
    assert_type(report.report_type, ReportType)
    assert_type(report.format, ReportFormat)
    assert_type(report.status, ReportStatus)
    assert_type(report.period_start, date | None)
    assert_type(report.download_link_expires_at, datetime)
    assert_type(report.file_size_bytes, int)
    assert_type(report.report_id, uuid.UUID)


def test_select_row_from_attributes_keeps_enums_and_hides_the_key() -> None:
    report = GeneratedReport(
        report_id=uuid.uuid4(),
        provider_id=uuid.uuid4(),
        report_type=ReportType.DATA_PORTABILITY,
        format=ReportFormat.ZIP,
        period_start=None,
        period_end=None,
        file_path="reports/secret-key",
        file_size_bytes=10,
        download_link_expires_at=datetime(2026, 6, 1, tzinfo=UTC),
        downloaded=False,
        scheduled=False,
        status=ReportStatus.READY,
        error_message=None,
        created_at=datetime(2026, 5, 29, tzinfo=UTC),
    )
    row = SelectGeneratedReport.model_validate(report)
    assert_type(row.status, ReportStatus)
    assert row.status is ReportStatus.READY
    assert "secret-key" not in repr(row)


@pytest.mark.parametrize(
    "bad",
    [
        {"report_type": "NOPE"},
        {"format": "pdf"},
        {"status": "READY"},
        {"file_size_bytes": -1},
        {"file_path": "x" * 256},
        {"download_link_expires_at": datetime(2026, 6, 1)},  # noqa: DTZ001 - naive on purpose
        {"surprise": 1},
    ],
)
def test_insert_refuses_bad_values(bad: dict[str, object]) -> None:
    values = _insert().model_dump() | bad
    with pytest.raises(ValidationError):
        InsertGeneratedReport.model_validate(values)


def test_safe_row_type_is_the_full_row_without_its_storage_key() -> None:
    full = {
        name: field.annotation
        for name, field in SelectGeneratedReport.model_fields.items()
        if name != "file_path"
    }
    safe = {name: field.annotation for name, field in SafeGeneratedReport.model_fields.items()}
    assert list(safe.items()) == list(full.items())
