"""The constant groups of spec section 1."""

from __future__ import annotations

from datetime import date

import pytest

from meritum_shared.constants.analytics import (
    AGING_BRACKETS,
    DOWNLOAD_LINK_EXPIRY_DAYS,
    RETENTION_DAYS,
    SUBSCRIBABLE_REPORT_TYPES,
    SUBSCRIPTION_FREQUENCIES,
    AuditAction,
    DashboardPeriod,
    MetricKey,
    ReportOrigin,
    ReportStatus,
    ReportType,
    SubscriptionFrequency,
    comparison_range,
    report_origin,
)


def test_statuses_are_stored_lower_case() -> None:
    assert [s.value for s in ReportStatus] == [
        "pending",
        "generating",
        "ready",
        "failed",
        "expired",
    ]


def test_subscribable_types_exclude_the_on_demand_ones() -> None:
    assert ReportType.DATA_PORTABILITY not in SUBSCRIBABLE_REPORT_TYPES
    assert ReportType.ACCOUNTANT_SUMMARY not in SUBSCRIBABLE_REPORT_TYPES
    assert ReportType.ACCOUNTANT_DETAIL not in SUBSCRIBABLE_REPORT_TYPES
    assert len(SUBSCRIBABLE_REPORT_TYPES) == 5


def test_each_subscribable_type_allows_its_frequencies_default_first() -> None:
    assert set(SUBSCRIPTION_FREQUENCIES) == SUBSCRIBABLE_REPORT_TYPES
    f = SubscriptionFrequency
    assert dict(SUBSCRIPTION_FREQUENCIES) == {
        ReportType.WEEKLY_SUMMARY: (f.WEEKLY,),
        ReportType.MONTHLY_PERFORMANCE: (f.MONTHLY, f.QUARTERLY),
        ReportType.RRNP_QUARTERLY: (f.QUARTERLY,),
        ReportType.WCB_TIMING: (f.WEEKLY, f.DAILY),
        ReportType.REJECTION_DIGEST: (f.DAILY, f.WEEKLY),
    }


def test_retention_and_link_expiry() -> None:
    assert dict(RETENTION_DAYS) == {
        ReportOrigin.SCHEDULED: 90,
        ReportOrigin.ON_DEMAND: 30,
        ReportOrigin.DATA_PORTABILITY: 3,
    }
    assert dict(DOWNLOAD_LINK_EXPIRY_DAYS) == dict(RETENTION_DAYS)
    with pytest.raises(TypeError):
        RETENTION_DAYS[ReportOrigin.SCHEDULED] = 1  # type: ignore[index]


def test_report_origin() -> None:
    assert (
        report_origin(ReportType.DATA_PORTABILITY, scheduled=False) is ReportOrigin.DATA_PORTABILITY
    )
    assert report_origin(ReportType.WEEKLY_SUMMARY, scheduled=True) is ReportOrigin.SCHEDULED
    assert report_origin(ReportType.ACCOUNTANT_DETAIL, scheduled=False) is ReportOrigin.ON_DEMAND


def test_metric_keys_fit_their_column() -> None:
    assert len(MetricKey) == 34
    assert all(len(k.value) <= 50 for k in MetricKey)


def test_audit_actions_are_namespaced() -> None:
    assert len(AuditAction) == 8
    assert all(a.value.startswith("analytics.") for a in AuditAction)


@pytest.mark.parametrize(
    ("days", "label"), [(0, "0-30"), (30, "0-30"), (31, "31-60"), (90, "61-90"), (91, "90+")]
)
def test_aging_brackets_partition_the_days(days: int, label: str) -> None:
    assert [b.label for b in AGING_BRACKETS if b.contains(days)] == [label]


@pytest.mark.parametrize(
    ("period", "start", "end", "expected"),
    [
        (
            DashboardPeriod.THIS_WEEK,
            date(2026, 11, 23),
            date(2026, 11, 24),
            (date(2026, 11, 16), date(2026, 11, 17)),
        ),
        (
            DashboardPeriod.THIS_MONTH,
            date(2026, 3, 1),
            date(2026, 3, 31),
            (date(2026, 2, 1), date(2026, 2, 28)),
        ),
        (
            DashboardPeriod.LAST_MONTH,
            date(2026, 10, 1),
            date(2026, 10, 31),
            (date(2026, 9, 1), date(2026, 9, 30)),
        ),
        (
            DashboardPeriod.THIS_QUARTER,
            date(2026, 10, 1),
            date(2026, 11, 24),
            (date(2025, 10, 1), date(2025, 11, 24)),
        ),
        (
            DashboardPeriod.THIS_YEAR,
            date(2024, 1, 1),
            date(2024, 2, 29),
            (date(2023, 1, 1), date(2023, 2, 28)),
        ),
        (
            DashboardPeriod.CUSTOM_RANGE,
            date(2026, 1, 11),
            date(2026, 1, 20),
            (date(2026, 1, 1), date(2026, 1, 10)),
        ),
        (
            DashboardPeriod.TRAILING_12_MONTHS,
            date(2025, 12, 1),
            date(2026, 11, 30),
            (date(2024, 12, 1), date(2025, 11, 30)),
        ),
    ],
)
def test_comparison_ranges(
    period: DashboardPeriod, start: date, end: date, expected: tuple[date, date]
) -> None:
    assert comparison_range(period, start, end) == expected


def test_comparison_range_refuses_reversed_bounds() -> None:
    with pytest.raises(ValueError, match="end must not be before start"):
        comparison_range(DashboardPeriod.CUSTOM_RANGE, date(2026, 2, 1), date(2026, 1, 1))
