"""Row types handed to code outside the repository: never the storage key."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from pydantic import ConfigDict

from meritum_shared.schemas.validation.analytics import ReportOut


class ReportView(ReportOut):
    """A generated report as services see it: what the API shows, plus its owner.

    Built on the API's contract so the two cannot drift apart; like it, it
    has no ``file_path``.
    """

    model_config = ConfigDict(from_attributes=True, frozen=True)

    provider_id: uuid.UUID


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
