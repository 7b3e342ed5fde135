"""How pages write sizes, times, money and periods, and where a sign-in may lead back to."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest

from meritum_web import formatting
from meritum_web.periods import Preset, preset_range
from meritum_web.security import safe_next

NOW = datetime(2026, 3, 2, 21, 5, tzinfo=UTC)  # 14:05 in Edmonton (MST, UTC-7)


@pytest.mark.parametrize(
    ("n_bytes", "shown"),
    [
        (0, "0 bytes"),
        (1, "1 byte"),
        (999, "999 bytes"),
        (1000, "1.0 kB"),
        (71_800, "71.8 kB"),
        (999_949, "999.9 kB"),
        (999_950, "1.0 MB"),
        (12_345_678, "12.3 MB"),
        (5 * 10**12, "5.0 TB"),
    ],
)
def test_sizes_are_decimal_with_one_place(n_bytes: int, shown: str) -> None:
    assert formatting.size(n_bytes) == shown


def test_times_are_edmonton_times() -> None:
    assert formatting.when(NOW, now=NOW) == "2 Mar, 14:05"
    summer = datetime(2026, 7, 1, 18, 0, tzinfo=UTC)  # MDT, UTC-6
    assert formatting.when(summer, now=NOW) == "1 Jul, 12:00"
    assert (
        formatting.when(datetime(2025, 12, 31, 23, 0, tzinfo=UTC), now=NOW) == "31 Dec 2025, 16:00"
    )


def test_link_expiry_in_words() -> None:
    assert formatting.expiry(NOW + timedelta(days=12, hours=3), now=NOW) == "expires in 12 days"
    assert formatting.expiry(NOW + timedelta(hours=30), now=NOW) == "expires in 30 hours"
    assert formatting.expiry(NOW + timedelta(minutes=1), now=NOW) == "expires in 1 minute"
    assert formatting.expiry(NOW - timedelta(days=1), now=NOW) == "expired 1 Mar, 14:05"


def test_money_and_periods() -> None:
    assert formatting.money(Decimal("1234.56")) == "$1,234.56"
    assert formatting.money(Decimal("-5")) == "-$5.00"
    assert formatting.period(date(2026, 1, 1), date(2026, 3, 31)) == "1 Jan – 31 Mar 2026"
    assert formatting.period(date(2025, 12, 1), date(2026, 1, 31)) == "1 Dec 2025 – 31 Jan 2026"
    assert formatting.period(None, None) == "All data"


@pytest.mark.parametrize(
    ("today", "preset", "expected"),
    [
        (date(2026, 3, 15), Preset.LAST_MONTH, (date(2026, 2, 1), date(2026, 2, 28))),
        (date(2026, 1, 10), Preset.LAST_MONTH, (date(2025, 12, 1), date(2025, 12, 31))),
        (date(2026, 5, 20), Preset.LAST_QUARTER, (date(2026, 1, 1), date(2026, 3, 31))),
        (date(2026, 2, 1), Preset.LAST_QUARTER, (date(2025, 10, 1), date(2025, 12, 31))),
        (date(2026, 6, 30), Preset.LAST_YEAR, (date(2025, 1, 1), date(2025, 12, 31))),
        (date(2026, 6, 30), Preset.YEAR_TO_DATE, (date(2026, 1, 1), date(2026, 6, 30))),
        (date(2026, 6, 30), Preset.CUSTOM, None),
    ],
)
def test_period_presets(today: date, preset: Preset, expected: tuple[date, date] | None) -> None:
    assert preset_range(preset, today) == expected


@pytest.mark.parametrize(
    ("asked", "goes_to"),
    [
        ("/reports/new", "/reports/new"),
        ("/?kind=ACCOUNTANT_DETAIL&page=2", "/?kind=ACCOUNTANT_DETAIL&page=2"),
        ("https://evil.example/", "/"),
        ("//evil.example/", "/"),
        ("/\\evil.example", "/"),
        ("/api/v1/reports", "/"),
        ("", "/"),
        (None, "/"),
    ],
)
def test_sign_in_leads_back_only_to_our_pages(asked: str | None, goes_to: str) -> None:
    assert safe_next(asked) == goes_to


def test_a_run_time_says_its_weekday_on_edmontons_clock() -> None:
    # 06:00 in Edmonton on Monday 7 December 2026 (MST) is 13:00 UTC.
    monday = datetime(2026, 12, 7, 13, 0, tzinfo=UTC)
    assert formatting.run_time(monday, now=NOW) == "Mon 7 Dec, 06:00"
    # After the clocks go forward (MDT, UTC-6), 06:00 is 12:00 UTC; another year shows it.
    assert formatting.run_time(datetime(2027, 4, 5, 12, 0, tzinfo=UTC), now=NOW) == (
        "Mon 5 Apr 2027, 06:00"
    )
