"""Constants of the analytics and reports domain (spec section 1).

Each group is a ``StrEnum`` (or an immutable mapping where values carry
data) so that one definition feeds type hints, Pydantic validation and the
database CHECK constraints.
"""

from __future__ import annotations

import calendar
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from enum import StrEnum
from types import MappingProxyType
from typing import Final


class ReportType(StrEnum):
    ACCOUNTANT_SUMMARY = "ACCOUNTANT_SUMMARY"
    ACCOUNTANT_DETAIL = "ACCOUNTANT_DETAIL"
    WEEKLY_SUMMARY = "WEEKLY_SUMMARY"
    MONTHLY_PERFORMANCE = "MONTHLY_PERFORMANCE"
    RRNP_QUARTERLY = "RRNP_QUARTERLY"
    WCB_TIMING = "WCB_TIMING"
    REJECTION_DIGEST = "REJECTION_DIGEST"
    DATA_PORTABILITY = "DATA_PORTABILITY"


class ReportFormat(StrEnum):
    PDF = "PDF"
    CSV = "CSV"
    ZIP = "ZIP"


class ReportStatus(StrEnum):
    PENDING = "pending"
    GENERATING = "generating"
    READY = "ready"
    FAILED = "failed"
    EXPIRED = "expired"


class SubscriptionFrequency(StrEnum):
    DAILY = "DAILY"
    WEEKLY = "WEEKLY"
    MONTHLY = "MONTHLY"
    QUARTERLY = "QUARTERLY"


class DeliveryMethod(StrEnum):
    IN_APP = "IN_APP"
    EMAIL = "EMAIL"
    BOTH = "BOTH"


class DashboardPeriod(StrEnum):
    THIS_WEEK = "THIS_WEEK"
    THIS_MONTH = "THIS_MONTH"
    LAST_MONTH = "LAST_MONTH"
    THIS_QUARTER = "THIS_QUARTER"
    THIS_YEAR = "THIS_YEAR"
    CUSTOM_RANGE = "CUSTOM_RANGE"
    TRAILING_12_MONTHS = "TRAILING_12_MONTHS"


class ClaimTypeFilter(StrEnum):
    AHCIP = "AHCIP"
    WCB = "WCB"
    BOTH = "BOTH"


class AuditAction(StrEnum):
    DASHBOARD_VIEWED = "analytics.dashboard_viewed"
    REPORT_GENERATED = "analytics.report_generated"
    REPORT_DOWNLOADED = "analytics.report_downloaded"
    DATA_PORTABILITY_REQUESTED = "analytics.data_portability_requested"
    DATA_PORTABILITY_DOWNLOADED = "analytics.data_portability_downloaded"
    SUBSCRIPTION_CREATED = "analytics.subscription_created"
    SUBSCRIPTION_UPDATED = "analytics.subscription_updated"
    SUBSCRIPTION_CANCELLED = "analytics.subscription_cancelled"


class ReportOrigin(StrEnum):
    """Which retention and link-expiry rule applies to a report."""

    SCHEDULED = "SCHEDULED"
    ON_DEMAND = "ON_DEMAND"
    DATA_PORTABILITY = "DATA_PORTABILITY"


class MetricKey(StrEnum):
    REVENUE_MONTHLY = "revenue_monthly"
    REVENUE_BY_BA = "revenue_by_ba"
    REVENUE_BY_LOCATION = "revenue_by_location"
    REVENUE_BY_HSC = "revenue_by_hsc"
    CLAIMS_SUBMITTED = "claims_submitted"
    CLAIMS_ASSESSED = "claims_assessed"
    CLAIMS_PAID = "claims_paid"
    CLAIMS_REJECTED = "claims_rejected"
    CLAIMS_ADJUSTED = "claims_adjusted"
    REJECTION_RATE_MONTHLY = "rejection_rate_monthly"
    REJECTION_BY_CODE = "rejection_by_code"
    REJECTION_BY_HSC = "rejection_by_hsc"
    REJECTION_RESOLUTION_FUNNEL = "rejection_resolution_funnel"
    AGING_BRACKETS = "aging_brackets"
    APPROACHING_DEADLINE = "approaching_deadline"
    EXPIRED_CLAIMS = "expired_claims"
    AVG_RESOLUTION_TIME = "avg_resolution_time"
    STALE_CLAIMS = "stale_claims"
    WCB_BY_FORM_TYPE = "wcb_by_form_type"
    WCB_TIMING_TIER_DIST = "wcb_timing_tier_dist"
    WCB_FEE_TIER_ANALYSIS = "wcb_fee_tier_analysis"
    WCB_REVENUE_TREND = "wcb_revenue_trend"
    WCB_REJECTION_RATE = "wcb_rejection_rate"
    AI_COACH_ACCEPTANCE_RATE = "ai_coach_acceptance_rate"
    AI_COACH_REVENUE_RECOVERED = "ai_coach_revenue_recovered"
    AI_COACH_BY_CATEGORY = "ai_coach_by_category"
    AI_COACH_TOP_ACCEPTED = "ai_coach_top_accepted"
    AI_COACH_SUPPRESSED = "ai_coach_suppressed"
    MULTISITE_REVENUE = "multisite_revenue"
    MULTISITE_CLAIMS = "multisite_claims"
    MULTISITE_RRNP = "multisite_rrnp"
    PENDING_PIPELINE = "pending_pipeline"
    AVG_FEE_PER_CLAIM = "avg_fee_per_claim"
    TOP_HSC_CODES = "top_hsc_codes"


#: Report types a subscription may produce; the others are on demand only.
SUBSCRIBABLE_REPORT_TYPES: Final[frozenset[ReportType]] = frozenset(ReportType) - {
    ReportType.DATA_PORTABILITY,
    ReportType.ACCOUNTANT_SUMMARY,
    ReportType.ACCOUNTANT_DETAIL,
}

#: The frequencies each subscribable type allows; the first is the default.
SUBSCRIPTION_FREQUENCIES: Final[Mapping[ReportType, tuple[SubscriptionFrequency, ...]]] = (
    MappingProxyType(
        {
            ReportType.WEEKLY_SUMMARY: (SubscriptionFrequency.WEEKLY,),
            ReportType.MONTHLY_PERFORMANCE: (
                SubscriptionFrequency.MONTHLY,
                SubscriptionFrequency.QUARTERLY,
            ),
            ReportType.RRNP_QUARTERLY: (SubscriptionFrequency.QUARTERLY,),
            ReportType.WCB_TIMING: (SubscriptionFrequency.WEEKLY, SubscriptionFrequency.DAILY),
            ReportType.REJECTION_DIGEST: (
                SubscriptionFrequency.DAILY,
                SubscriptionFrequency.WEEKLY,
            ),
        }
    )
)


class RunOutcome(StrEnum):
    """What one run of a subscription did (lower case, as stored)."""

    GENERATED = "generated"
    SKIPPED_EMPTY = "skipped_empty"


#: After downtime a subscription catches up at most this many missed runs (the newest).
MAX_CATCH_UP_RUNS: Final = 7

#: How long a generated report (and its file) is kept, in days.
RETENTION_DAYS: Final = MappingProxyType(
    {
        ReportOrigin.SCHEDULED: 90,
        ReportOrigin.ON_DEMAND: 30,
        ReportOrigin.DATA_PORTABILITY: 3,
    }
)

#: How long a download link stays valid after the report is ready, in days.
DOWNLOAD_LINK_EXPIRY_DAYS: Final = MappingProxyType(
    {
        ReportOrigin.SCHEDULED: 90,
        ReportOrigin.ON_DEMAND: 30,
        ReportOrigin.DATA_PORTABILITY: 3,
    }
)


def report_origin(report_type: ReportType, *, scheduled: bool) -> ReportOrigin:
    """Which retention rule governs a report of this type."""
    if report_type is ReportType.DATA_PORTABILITY:
        return ReportOrigin.DATA_PORTABILITY
    return ReportOrigin.SCHEDULED if scheduled else ReportOrigin.ON_DEMAND


@dataclass(frozen=True, slots=True)
class AgingBracket:
    """Days since the date of service; ``max_days`` None means open-ended."""

    label: str
    min_days: int
    max_days: int | None

    def contains(self, days: int) -> bool:
        """Whether a claim this many days old falls in the bracket."""
        return days >= self.min_days and (self.max_days is None or days <= self.max_days)


AGING_BRACKETS: Final[tuple[AgingBracket, ...]] = (
    AgingBracket("0-30", 0, 30),
    AgingBracket("31-60", 31, 60),
    AgingBracket("61-90", 61, 90),
    AgingBracket("90+", 91, None),
)

#: What each dashboard period is compared against.
PERIOD_COMPARISON: Final = MappingProxyType(
    {
        DashboardPeriod.THIS_WEEK: "same days last week",
        DashboardPeriod.THIS_MONTH: "same days of the prior month",
        DashboardPeriod.LAST_MONTH: "the month before it",
        DashboardPeriod.THIS_QUARTER: "same quarter of the prior year",
        DashboardPeriod.THIS_YEAR: "same span of the prior year",
        DashboardPeriod.CUSTOM_RANGE: "the equally long span just before",
        DashboardPeriod.TRAILING_12_MONTHS: "the 12 months before that",
    }
)


def _shift_months(day: date, months: int) -> date:
    index = day.year * 12 + (day.month - 1) + months
    year, month = divmod(index, 12)
    last = calendar.monthrange(year, month + 1)[1]
    return date(year, month + 1, min(day.day, last))


def comparison_range(period: DashboardPeriod, start: date, end: date) -> tuple[date, date]:
    """The range a dashboard period [start, end] (inclusive) is compared against."""
    if end < start:
        raise ValueError("end must not be before start")
    match period:
        case DashboardPeriod.THIS_WEEK:
            return start - timedelta(days=7), end - timedelta(days=7)
        case DashboardPeriod.THIS_MONTH | DashboardPeriod.LAST_MONTH:
            return _shift_months(start, -1), _shift_months(end, -1)
        case DashboardPeriod.THIS_QUARTER | DashboardPeriod.THIS_YEAR:
            return _shift_months(start, -12), _shift_months(end, -12)
        case DashboardPeriod.TRAILING_12_MONTHS:
            return _shift_months(start, -12), start - timedelta(days=1)
        case DashboardPeriod.CUSTOM_RANGE:
            length = end - start
            previous_end = start - timedelta(days=1)
            return previous_end - length, previous_end


#: The report lifecycle: every legal status move (PostgreSQL enforces the same set).
LEGAL_TRANSITIONS: Final[frozenset[tuple[ReportStatus, ReportStatus]]] = frozenset(
    {
        (ReportStatus.PENDING, ReportStatus.GENERATING),
        (ReportStatus.GENERATING, ReportStatus.READY),
        (ReportStatus.GENERATING, ReportStatus.FAILED),
        (ReportStatus.PENDING, ReportStatus.FAILED),
        (ReportStatus.GENERATING, ReportStatus.PENDING),  # retry after a crash
        (ReportStatus.READY, ReportStatus.EXPIRED),
        (ReportStatus.FAILED, ReportStatus.EXPIRED),
    }
)

#: What a failed generation tells the physician: generic, no internals, no PHI.
GENERATION_FAILED_MESSAGE: Final = "Report generation failed. Please try again or contact support."
