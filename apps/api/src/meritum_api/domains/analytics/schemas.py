"""Row types handed to code outside the repository: never the storage key."""

from __future__ import annotations

from dataclasses import dataclass

from meritum_shared.schemas.db import SafeGeneratedReport


class ReportView(SafeGeneratedReport):
    """A generated report as services see it: the table's row type less ``file_path``."""


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
