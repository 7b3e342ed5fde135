"""Request and response contracts of the reports API (spec section 3).

Shared by the API (validation, OpenAPI) and, later, the web app. Requests
forbid unknown fields; dates are accepted only as ``YYYY-MM-DD`` strings.
"""

from __future__ import annotations

import re
import uuid
from datetime import date
from enum import StrEnum
from typing import Annotated, Any, Final, Generic, TypeVar

from pydantic import (
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
)
from pydantic_core import PydanticCustomError

from meritum_shared.constants.analytics import ReportFormat, ReportStatus, ReportType
from meritum_shared.schemas.validation.text import SecretLength, SecretText

#: An accountant export's period ends before this many years after its start.
MAX_EXPORT_YEARS: Final = 2
PERIOD_ORDER_MESSAGE: Final = "Must not be before period_start"
PERIOD_LENGTH_MESSAGE: Final = (
    "Must be before the same day two years after period_start (a period covers at most two years)"
)
#: The shortest password that may protect a data portability archive.
MIN_ARCHIVE_PASSWORD: Final = 12
MAX_ARCHIVE_PASSWORD: Final = 128
ArchivePassword = Annotated[SecretText, SecretLength(MIN_ARCHIVE_PASSWORD, MAX_ARCHIVE_PASSWORD)]
MAX_PAGE_SIZE: Final = 100
DEFAULT_PAGE_SIZE: Final = 20
#: Offsets beyond this are refused rather than scanned.
MAX_OFFSET: Final = 100_000

_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def _iso_date(value: Any) -> Any:
    # Pydantic would also take timestamps and datetimes: the API takes a
    # calendar day, written one way only.
    if isinstance(value, date):
        return value
    if not isinstance(value, str) or not _ISO_DATE.fullmatch(value):
        raise PydanticCustomError("date_format", "Must be a date written YYYY-MM-DD")
    return value


IsoDate = Annotated[date, BeforeValidator(_iso_date)]


def years_after(day: date, years: int) -> date:
    """The same month and day ``years`` later; 29 February becomes 28 February.

    The same as PostgreSQL's ``date + interval 'N years'``, and the stricter
    of the two readings: a period from 29 February never exceeds two years.
    """
    try:
        return day.replace(year=day.year + years)
    except ValueError:  # 29 February into a common year
        return day.replace(year=day.year + years, day=28)


class AccountantFormat(StrEnum):
    """What the accountant export request calls its formats."""

    CSV = "csv"
    PDF_SUMMARY = "pdf_summary"
    PDF_DETAIL = "pdf_detail"


#: The report type and stored format each accountant format produces (the
#: CSV is the summary's type, as the report contents specification says).
ACCOUNTANT_OUTPUT: Final = {
    AccountantFormat.CSV: (ReportType.ACCOUNTANT_SUMMARY, ReportFormat.CSV),
    AccountantFormat.PDF_SUMMARY: (ReportType.ACCOUNTANT_SUMMARY, ReportFormat.PDF),
    AccountantFormat.PDF_DETAIL: (ReportType.ACCOUNTANT_DETAIL, ReportFormat.PDF),
}


class AccountantExportRequest(BaseModel):
    """POST /api/v1/reports/accountant."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    period_start: IsoDate
    period_end: IsoDate
    format: AccountantFormat

    @field_validator("period_end")
    @classmethod
    def _period(cls, period_end: date, info: ValidationInfo) -> date:
        # Reported on period_end; when period_start itself is invalid, that
        # error is the one to fix first.
        period_start = info.data.get("period_start")
        if period_start is None:
            return period_end
        if period_end < period_start:
            raise PydanticCustomError("period_order", PERIOD_ORDER_MESSAGE)
        if period_end >= years_after(period_start, MAX_EXPORT_YEARS):
            raise PydanticCustomError("period_too_long", PERIOD_LENGTH_MESSAGE)
        return period_end


class DataPortabilityRequest(BaseModel):
    """POST /api/v1/reports/data-portability."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    password: ArchivePassword | None = None


class ReportListQuery(BaseModel):
    """GET /api/v1/reports query parameters."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    report_type: ReportType | None = Field(
        default=None, description="Only reports of this type (e.g. ACCOUNTANT_DETAIL)."
    )
    start_date: IsoDate | None = Field(
        default=None,
        description="YYYY-MM-DD: only reports whose period starts on or after this day "
        "(period_start >= start_date). A report without a period (data portability) "
        "counts by the day it was requested, Edmonton time.",
    )
    end_date: IsoDate | None = Field(
        default=None,
        description="YYYY-MM-DD: only reports whose period ends on or before this day "
        "(period_end <= end_date). A report without a period (data portability) "
        "counts by the day it was requested, Edmonton time.",
    )
    limit: int = Field(
        default=DEFAULT_PAGE_SIZE,
        ge=1,
        le=MAX_PAGE_SIZE,
        description=f"Reports per page, 1 to {MAX_PAGE_SIZE} (default {DEFAULT_PAGE_SIZE}).",
    )
    offset: int = Field(
        default=0,
        ge=0,
        le=MAX_OFFSET,
        description=f"Reports to skip, newest first: 0 to {MAX_OFFSET:,}.",
    )

    @field_validator("end_date")
    @classmethod
    def _range(cls, end_date: date | None, info: ValidationInfo) -> date | None:
        start_date = info.data.get("start_date")
        if start_date is not None and end_date is not None and end_date < start_date:
            raise PydanticCustomError("range_order", "Must not be before start_date")
        return end_date


class ReportCreated(BaseModel):
    """The answer to a report request: it is queued."""

    report_id: uuid.UUID
    status: ReportStatus


class ReportOut(BaseModel):
    """A report as the API shows it: every column but the storage key."""

    report_id: uuid.UUID
    report_type: ReportType
    format: ReportFormat
    period_start: date | None
    period_end: date | None
    file_size_bytes: int
    download_link_expires_at: AwareDatetime
    downloaded: bool
    scheduled: bool
    status: ReportStatus
    error_message: str | None
    created_at: AwareDatetime


class ReportDetail(ReportOut):
    """One report, with what only a ready one has."""

    #: Hex SHA-256 of the file's content (ready reports).
    sha256: str | None = None
    #: From the audit trail: the first successful download and how many there were.
    first_downloaded_at: AwareDatetime | None = None
    download_count: int = 0
    #: A data portability export protected by a password (never the password itself).
    password_protected: bool = False


class Pagination(BaseModel):
    """Offset pagination, in the spec's field names."""

    model_config = ConfigDict(populate_by_name=True)

    total: int
    page: int
    page_size: int = Field(alias="pageSize")
    has_more: bool = Field(alias="hasMore")


T = TypeVar("T")


class DataEnvelope(BaseModel, Generic[T]):
    """``{ "data": ... }``."""

    data: T


class PageEnvelope(BaseModel, Generic[T]):
    """``{ "data": [...], "pagination": {...} }``."""

    data: list[T]
    pagination: Pagination
