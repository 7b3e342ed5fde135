"""Report generators: what each (report type, format) pair is produced by.

A generator reads on the connection it is given, scoped to the request's
provider, and yields the file's bytes in chunks; it never sees storage.
Only pairs that really exist are registered: asking for any other is
refused with :class:`UnsupportedReport`, never answered with a placeholder.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import date
from types import MappingProxyType
from typing import Final, TypeAlias

import sqlalchemy

from meritum_api.domains.analytics.exceptions import UnsupportedReport
from meritum_api.domains.analytics.generators import accountant_csv
from meritum_shared.constants.analytics import ReportFormat, ReportType

__all__ = [
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


Generator: TypeAlias = Callable[[sqlalchemy.Connection, GenerationRequest], Iterator[bytes]]

_REGISTRY: Final[Mapping[tuple[ReportType, ReportFormat], Generator]] = MappingProxyType(
    {
        (ReportType.ACCOUNTANT_DETAIL, ReportFormat.CSV): accountant_csv.generate,
    }
)


def generator_for(report_type: ReportType, format: ReportFormat) -> Generator:
    """The generator of a pair; raises :class:`UnsupportedReport` when none exists."""
    try:
        return _REGISTRY[report_type, format]
    except KeyError:
        raise UnsupportedReport.for_pair(report_type, format) from None


def is_supported(report_type: ReportType, format: ReportFormat) -> bool:
    """Whether a report of this type can be produced in this format."""
    return (report_type, format) in _REGISTRY


def supported() -> frozenset[tuple[ReportType, ReportFormat]]:
    """Every (report type, format) pair that has a generator."""
    return frozenset(_REGISTRY)
