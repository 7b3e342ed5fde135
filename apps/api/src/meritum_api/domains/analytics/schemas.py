"""Row types handed to code outside the repository: never the storage key."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date

from pydantic import AwareDatetime, BaseModel, ConfigDict

from meritum_shared.constants.analytics import ReportFormat, ReportStatus, ReportType


class ReportView(BaseModel):
    """A generated report as the API and services see it (no ``file_path``)."""

    model_config = ConfigDict(from_attributes=True, frozen=True)

    report_id: uuid.UUID
    provider_id: uuid.UUID
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


@dataclass(frozen=True, slots=True)
class ReportPage:
    """One page of a provider's reports and the total matching the filters."""

    items: list[ReportView]
    total: int
    limit: int
    offset: int


@dataclass(frozen=True, slots=True)
class StoredReportRef:
    """Where a report's file lives: for the storage glue only, never for responses or logs."""

    report: ReportView
    storage_key: str

    def __repr__(self) -> str:
        return f"StoredReportRef(report_id={self.report.report_id})"
