"""Report generators: what each (report type, format) pair is produced by.

A generator reads on the connection it is given, scoped to the request's
provider, and yields the file's bytes in chunks; it never sees storage.
Only pairs that really exist are registered: asking for any other is
refused with :class:`UnsupportedReport`, never answered with a placeholder.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from types import MappingProxyType
from typing import Final, TypeAlias

import sqlalchemy
from pydantic import SecretStr

from meritum_api.calendar import ALBERTA, BusinessCalendar
from meritum_api.context import AuthContext
from meritum_api.domains.analytics.exceptions import UnsupportedReport
from meritum_api.domains.analytics.figures import Period
from meritum_api.domains.analytics.generators import (
    accountant_csv,
    accountant_detail_pdf,
    accountant_summary_pdf,
    data_portability,
    monthly_performance_pdf,
    rejection_digest_pdf,
    rrnp_quarterly_pdf,
    wcb_timing_pdf,
    weekly_summary_pdf,
)
from meritum_shared.constants.analytics import ReportFormat, ReportType

__all__ = [
    "LEGACY",
    "SCHEDULED",
    "GenerationRequest",
    "Generator",
    "UnsupportedReport",
    "generator_for",
    "is_supported",
    "supported",
]


@dataclass(frozen=True, slots=True)
class GenerationRequest:
    """What one report asks for; ``provider_id`` is the tenant every read is scoped to."""

    report_id: uuid.UUID
    provider_id: uuid.UUID
    report_type: ReportType
    format: ReportFormat
    period_start: date | None
    period_end: date | None
    #: When the report was requested: the generation timestamp a file shows,
    #: taken from the report row so that the same data gives the same bytes.
    created_at: datetime
    #: The archive password of a protected data export, unsealed by the worker for
    #: this run only; kept out of every repr (and SecretStr masks it again).
    password: SecretStr | None = field(default=None, repr=False, compare=False)
    #: The business days the WCB fee tiers count (Alberta's, optional holidays by a setting).
    calendar: BusinessCalendar = field(default=ALBERTA, compare=False)

    def scope(self) -> AuthContext:
        """The tenant every read of this generation is scoped to."""
        return AuthContext(provider_id=self.provider_id)

    def period(self) -> Period:
        """The period of a report that needs one; raises ValueError for one without."""
        if self.period_start is None or self.period_end is None:
            raise ValueError(f"{self.report_type.value} reports need a period")
        return Period(self.period_start, self.period_end)


Generator: TypeAlias = Callable[[sqlalchemy.Connection, GenerationRequest], Iterator[bytes]]

_REGISTRY: Final[Mapping[tuple[ReportType, ReportFormat], Generator]] = MappingProxyType(
    {
        (ReportType.ACCOUNTANT_SUMMARY, ReportFormat.CSV): accountant_csv.generate,
        (ReportType.ACCOUNTANT_SUMMARY, ReportFormat.PDF): accountant_summary_pdf.generate,
        (ReportType.ACCOUNTANT_DETAIL, ReportFormat.PDF): accountant_detail_pdf.generate,
        (ReportType.DATA_PORTABILITY, ReportFormat.ZIP): data_portability.generate,
    }
)

#: Pairs that are no longer requested but may still be waiting in the queue:
#: the accountant CSV was stored as ACCOUNTANT_DETAIL before it took the
#: specification's ACCOUNTANT_SUMMARY. Such rows keep their type (the report
#: state machine forbids changing it) and are still generated and served.
LEGACY: Final[Mapping[tuple[ReportType, ReportFormat], Generator]] = MappingProxyType(
    {
        (ReportType.ACCOUNTANT_DETAIL, ReportFormat.CSV): accountant_csv.generate,
    }
)


#: Pairs that only subscriptions produce: generated like the others, never
#: requested on demand (``is_supported`` leaves them out).
SCHEDULED: Final[Mapping[tuple[ReportType, ReportFormat], Generator]] = MappingProxyType(
    {
        (ReportType.REJECTION_DIGEST, ReportFormat.PDF): rejection_digest_pdf.generate,
        (ReportType.WCB_TIMING, ReportFormat.PDF): wcb_timing_pdf.generate,
        (ReportType.WEEKLY_SUMMARY, ReportFormat.PDF): weekly_summary_pdf.generate,
        (ReportType.MONTHLY_PERFORMANCE, ReportFormat.PDF): monthly_performance_pdf.generate,
        (ReportType.RRNP_QUARTERLY, ReportFormat.PDF): rrnp_quarterly_pdf.generate,
    }
)


def generator_for(report_type: ReportType, format: ReportFormat) -> Generator:
    """The generator of a pair; raises :class:`UnsupportedReport` when none exists."""
    pair = (report_type, format)
    generator = _REGISTRY.get(pair) or SCHEDULED.get(pair) or LEGACY.get(pair)
    if generator is None:
        raise UnsupportedReport.for_pair(report_type, format)
    return generator


def is_supported(report_type: ReportType, format: ReportFormat) -> bool:
    """Whether a report of this type can be requested in this format (legacy pairs cannot)."""
    return (report_type, format) in _REGISTRY


def supported() -> frozenset[tuple[ReportType, ReportFormat]]:
    """Every (report type, format) pair that can be requested."""
    return frozenset(_REGISTRY)
