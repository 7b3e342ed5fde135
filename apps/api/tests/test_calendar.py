"""The business calendar: Alberta holidays, business days, and every run instant of 2026-2027."""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime, time, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from meritum_api.calendar import (
    ALBERTA,
    EDMONTON,
    BusinessCalendar,
    Run,
    at_local,
    covered_period,
    is_quarter,
    local_date,
    local_span,
    previous_period,
    whole_months,
)
from meritum_api.settings import Settings
from meritum_shared.constants.analytics import ReportType, SubscriptionFrequency

F = SubscriptionFrequency
T = ReportType
YEARS_START = datetime(2026, 1, 1, tzinfo=EDMONTON)
YEARS_END = datetime(2028, 1, 1, tzinfo=EDMONTON)
WITH_OPTIONAL = BusinessCalendar(optional_holidays=True)


def _runs(frequency: F, report_type: T, calendar: BusinessCalendar = ALBERTA) -> list[Run]:
    # Everything in 2026 and 2027: from the instant before the first possible run.
    return list(
        calendar.runs_between(
            frequency, report_type, YEARS_START - timedelta(microseconds=1), YEARS_END
        )
    )


def _days(runs: list[Run]) -> list[str]:
    return [run.at.date().isoformat() for run in runs]


def test_alberta_general_holidays_with_observed_days() -> None:
    assert sorted(ALBERTA.holidays(2027)) == [
        date(2027, 1, 1),
        date(2027, 2, 15),  # Family Day
        date(2027, 3, 26),  # Good Friday
        date(2027, 5, 24),
        date(2027, 7, 1),
        date(2027, 9, 6),
        date(2027, 10, 11),
        date(2027, 11, 11),
        date(2027, 12, 25),
        date(2027, 12, 27),  # Christmas on a Saturday, observed on Monday
    ]
    assert len(ALBERTA.holidays(2026)) == 9


def test_optional_holidays_are_working_days_unless_a_setting_adds_them() -> None:
    for optional in (date(2026, 4, 6), date(2026, 8, 3), date(2026, 9, 30), date(2026, 12, 28)):
        assert ALBERTA.is_business_day(optional)
        assert not WITH_OPTIONAL.is_business_day(optional)
    assert BusinessCalendar.from_settings(Settings(optional_holidays=True)) == WITH_OPTIONAL
    assert BusinessCalendar.from_settings(Settings()) == ALBERTA
    # Easter Monday 2026 moves the 3rd business day of April.
    assert ALBERTA.nth_business_day(2026, 4, 3) == date(2026, 4, 6)
    assert WITH_OPTIONAL.nth_business_day(2026, 4, 3) == date(2026, 4, 7)


@pytest.mark.parametrize(
    ("year", "month", "third"),
    [
        (2026, 1, date(2026, 1, 6)),  # New Year's Day on a Thursday
        (2027, 1, date(2027, 1, 6)),  # on a Friday
        (2028, 1, date(2028, 1, 6)),  # on a Saturday: observed Monday the 3rd
        (2026, 2, date(2026, 2, 4)),
        (2026, 4, date(2026, 4, 6)),  # Good Friday the 3rd
        (2027, 7, date(2027, 7, 6)),  # Canada Day on a Thursday
        (2026, 12, date(2026, 12, 3)),
    ],
)
def test_third_business_day(year: int, month: int, third: date) -> None:
    assert ALBERTA.nth_business_day(year, month, 3) == third


def test_next_business_day_across_holidays() -> None:
    assert ALBERTA.next_business_day(date(2026, 2, 13)) == date(2026, 2, 17)  # Family Day
    assert ALBERTA.next_business_day(date(2026, 4, 2)) == date(2026, 4, 6)  # Good Friday
    assert ALBERTA.next_business_day(date(2026, 12, 24)) == date(2026, 12, 28)  # Christmas
    assert ALBERTA.next_business_day(date(2027, 12, 24)) == date(2027, 12, 28)  # observed Monday
    assert ALBERTA.next_business_day(date(2026, 12, 31)) == date(2027, 1, 4)  # New Year's
    assert ALBERTA.add_business_days(date(2026, 12, 23), 3) == date(2026, 12, 29)
    with pytest.raises(ValueError, match="at least 1"):
        ALBERTA.add_business_days(date(2026, 1, 1), 0)


def test_every_monthly_run_of_2026_and_2027() -> None:
    runs = _runs(F.MONTHLY, T.MONTHLY_PERFORMANCE)
    assert _days(runs) == [
        "2026-01-06", "2026-02-04", "2026-03-04", "2026-04-06", "2026-05-05", "2026-06-03",
        "2026-07-06", "2026-08-05", "2026-09-03", "2026-10-05", "2026-11-04", "2026-12-03",
        "2027-01-06", "2027-02-03", "2027-03-03", "2027-04-05", "2027-05-05", "2027-06-03",
        "2027-07-06", "2027-08-04", "2027-09-03", "2027-10-05", "2027-11-03", "2027-12-03",
    ]  # fmt: skip
    assert all(run.at.time() == time(6) and run.at.tzinfo is EDMONTON for run in runs)
    assert (runs[0].period_start, runs[0].period_end) == (date(2025, 12, 1), date(2025, 12, 31))
    assert (runs[2].period_start, runs[2].period_end) == (date(2026, 2, 1), date(2026, 2, 28))


def test_every_quarterly_run_of_2026_and_2027() -> None:
    runs = _runs(F.QUARTERLY, T.RRNP_QUARTERLY)
    described = [(r.at.date().isoformat(), str(r.period_start), str(r.period_end)) for r in runs]
    assert described == [
        ("2026-01-06", "2025-10-01", "2025-12-31"),
        ("2026-04-06", "2026-01-01", "2026-03-31"),
        ("2026-07-06", "2026-04-01", "2026-06-30"),
        ("2026-10-05", "2026-07-01", "2026-09-30"),
        ("2027-01-06", "2026-10-01", "2026-12-31"),
        ("2027-04-05", "2027-01-01", "2027-03-31"),
        ("2027-07-06", "2027-04-01", "2027-06-30"),
        ("2027-10-05", "2027-07-01", "2027-09-30"),
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("report_type", "weekday", "first", "last"),
    [
        (T.WEEKLY_SUMMARY, 0, date(2026, 1, 5), date(2027, 12, 27)),
        (T.WCB_TIMING, 2, date(2026, 1, 7), date(2027, 12, 29)),
    ],
)
def test_every_weekly_run_of_2026_and_2027(
    report_type: T, weekday: int, first: date, last: date
) -> None:
    runs = _runs(F.WEEKLY, report_type)
    days = [run.at.date() for run in runs]
    assert len(runs) == 104
    assert (days[0], days[-1]) == (first, last)
    assert all(b - a == timedelta(days=7) for a, b in itertools.pairwise(days))
    assert all(
        d.weekday() == weekday and r.at.time() == time(6) for d, r in zip(days, runs, strict=True)
    )
    if report_type is T.WCB_TIMING:
        assert all(
            (r.period_start, r.period_end) == (d, d + timedelta(days=7))
            for d, r in zip(days, runs, strict=True)
        )
    else:
        assert all(
            (r.period_start, r.period_end) == (d - timedelta(days=7), d - timedelta(days=1))
            and r.period_start.weekday() == 0
            for d, r in zip(days, runs, strict=True)
        )


def test_every_daily_run_of_2026_and_2027_through_both_clock_changes() -> None:
    runs = _runs(F.DAILY, T.REJECTION_DIGEST)
    days = [run.at.date() for run in runs]
    assert len(runs) == 730
    assert days == [date(2026, 1, 1) + timedelta(days=i) for i in range(730)]
    assert all(r.at.time() == time(6) for r in runs)
    assert all(
        (r.period_start, r.period_end) == (d - timedelta(days=1),) * 2
        for d, r in zip(days, runs, strict=True)
    )
    gaps = {
        runs[i + 1].at.date(): runs[i + 1].at.astimezone(UTC) - runs[i].at.astimezone(UTC)
        for i in range(len(runs) - 1)
    }
    short = {d for d, gap in gaps.items() if gap == timedelta(hours=23)}
    long = {d for d, gap in gaps.items() if gap == timedelta(hours=25)}
    assert short == {date(2026, 3, 8), date(2027, 3, 14)}  # spring forward
    assert long == {date(2026, 11, 1), date(2027, 11, 7)}  # fall back
    assert set(gaps.values()) == {timedelta(hours=h) for h in (23, 24, 25)}
    utc_hours = {r.at.astimezone(UTC).hour for r in runs}
    assert utc_hours == {12, 13}  # 06:00 MDT and 06:00 MST

    wcb = _runs(F.DAILY, T.WCB_TIMING)
    assert all(
        (r.period_start, r.period_end) == (r.at.date(), r.at.date() + timedelta(days=7))
        for r in wcb
    )


@pytest.mark.parametrize(
    "after",
    [
        datetime(2026, 11, 1, 1, 30, tzinfo=EDMONTON, fold=0),  # the first 01:30 (MDT)
        datetime(2026, 11, 1, 1, 30, tzinfo=EDMONTON, fold=1),  # the second 01:30 (MST)
        datetime(2026, 10, 31, 6, 0, tzinfo=EDMONTON),  # the previous run itself
    ],
)
def test_the_fall_back_night_has_one_six_oclock_run(after: datetime) -> None:
    run = ALBERTA.next_run(F.DAILY, T.REJECTION_DIGEST, after)
    assert run.at == datetime(2026, 11, 1, 13, 0, tzinfo=UTC)
    assert ALBERTA.next_run(F.DAILY, T.REJECTION_DIGEST, run.at).at == datetime(
        2026, 11, 2, 13, 0, tzinfo=UTC
    )


def test_the_spring_forward_night_keeps_its_six_oclock_run() -> None:
    after = datetime(2026, 3, 8, 1, 59, tzinfo=EDMONTON)
    runs = list(
        ALBERTA.runs_between(F.DAILY, T.REJECTION_DIGEST, after, after + timedelta(hours=6))
    )
    assert [r.at for r in runs] == [datetime(2026, 3, 8, 12, 0, tzinfo=UTC)]


def test_a_day_that_is_not_a_run_day_is_refused() -> None:
    with pytest.raises(ValueError, match="does not run"):
        ALBERTA.run_on(F.MONTHLY, T.MONTHLY_PERFORMANCE, date(2026, 4, 3))
    with pytest.raises(ValueError, match="naive"):
        local_date(datetime(2026, 1, 1))  # noqa: DTZ001 (the point of the test)


def test_covered_periods_at_year_and_quarter_boundaries() -> None:
    assert covered_period(F.WEEKLY, T.WEEKLY_SUMMARY, date(2026, 1, 5)) == (
        date(2025, 12, 29),
        date(2026, 1, 4),
    )
    assert covered_period(F.QUARTERLY, T.MONTHLY_PERFORMANCE, date(2026, 1, 6)) == (
        date(2025, 10, 1),
        date(2025, 12, 31),
    )
    assert covered_period(F.DAILY, T.REJECTION_DIGEST, date(2028, 3, 1)) == (
        date(2028, 2, 29),
        date(2028, 2, 29),
    )


instants = st.datetimes(
    min_value=datetime(2000, 1, 1),  # noqa: DTZ001 (hypothesis bounds are naive)
    max_value=datetime(2099, 12, 1),  # noqa: DTZ001
    timezones=st.just(UTC),
)


@settings(max_examples=300, deadline=None)
@given(after=instants, frequency=st.sampled_from([F.MONTHLY, F.QUARTERLY]))
def test_monthly_and_quarterly_runs_are_business_days_at_six(after: datetime, frequency: F) -> None:
    run = ALBERTA.next_run(frequency, T.MONTHLY_PERFORMANCE, after)
    local = run.at.astimezone(EDMONTON)
    assert run.at > after
    assert local.time() == time(6)
    assert ALBERTA.is_business_day(local.date())
    assert local.date() == ALBERTA.nth_business_day(local.year, local.month, 3)
    if frequency is F.QUARTERLY:
        assert local.month in (1, 4, 7, 10)
    # Nothing skipped: no run lies between ``after`` and this one.
    assert (
        ALBERTA.next_run(frequency, T.MONTHLY_PERFORMANCE, run.at - timedelta(microseconds=1))
        == run
    )
    assert run.period_end == local.date().replace(day=1) - timedelta(days=1)
    assert run.period_start.day == 1


@settings(max_examples=300, deadline=None)
@given(after=instants, frequency=st.sampled_from(list(F)), report_type=st.sampled_from(list(T)))
def test_every_run_is_at_six_local_and_advances(
    after: datetime, frequency: F, report_type: T
) -> None:
    run = ALBERTA.next_run(frequency, report_type, after)
    assert run.at > after
    assert run.at.astimezone(EDMONTON).time() == time(6)
    assert run.at - after <= timedelta(days=100)
    assert run.period_start <= run.period_end
    following = ALBERTA.next_run(frequency, report_type, run.at)
    assert following.at > run.at
    assert at_local(local_date(run.at)) == run.at


# --- the period a scheduled report is compared with ------------------------------------


@pytest.mark.parametrize(
    ("period", "before"),
    [
        # A Monday-to-Sunday week: the week before.
        ((date(2026, 11, 23), date(2026, 11, 29)), (date(2026, 11, 16), date(2026, 11, 22))),
        ((date(2026, 1, 5), date(2026, 1, 11)), (date(2025, 12, 29), date(2026, 1, 4))),
        # A month: the month before, whatever their lengths.
        ((date(2026, 3, 1), date(2026, 3, 31)), (date(2026, 2, 1), date(2026, 2, 28))),
        ((date(2028, 3, 1), date(2028, 3, 31)), (date(2028, 2, 1), date(2028, 2, 29))),
        ((date(2026, 1, 1), date(2026, 1, 31)), (date(2025, 12, 1), date(2025, 12, 31))),
        # A quarter: the quarter before, across a year too.
        ((date(2026, 7, 1), date(2026, 9, 30)), (date(2026, 4, 1), date(2026, 6, 30))),
        ((date(2026, 1, 1), date(2026, 3, 31)), (date(2025, 10, 1), date(2025, 12, 31))),
        # Any other span: the equally long span just before.
        ((date(2026, 3, 10), date(2026, 3, 19)), (date(2026, 2, 28), date(2026, 3, 9))),
        ((date(2026, 3, 1), date(2026, 3, 30)), (date(2026, 1, 30), date(2026, 2, 28))),
        ((date(2026, 5, 4), date(2026, 5, 4)), (date(2026, 5, 3), date(2026, 5, 3))),
    ],
)
def test_a_period_is_compared_with_the_one_just_before(
    period: tuple[date, date], before: tuple[date, date]
) -> None:
    assert previous_period(*period) == before


@settings(max_examples=300, deadline=None)
@given(
    start=st.dates(min_value=date(2000, 1, 1), max_value=date(2100, 1, 1)),
    length=st.integers(min_value=0, max_value=800),
)
def test_the_previous_period_ends_the_day_before_and_is_as_long(start: date, length: int) -> None:
    end = start + timedelta(days=length)
    first, last = previous_period(start, end)
    assert last == start - timedelta(days=1)
    months = whole_months(start, end)
    if months:  # as many whole months
        assert whole_months(first, last) == months
    else:  # as many days
        assert last - first == end - start


def test_months_and_quarters_are_recognised() -> None:
    assert whole_months(date(2026, 2, 1), date(2026, 2, 28)) == 1
    assert whole_months(date(2026, 2, 1), date(2026, 2, 27)) == 0
    assert whole_months(date(2026, 2, 2), date(2026, 3, 31)) == 0
    assert whole_months(date(2025, 11, 1), date(2026, 4, 30)) == 6
    assert is_quarter(date(2026, 10, 1), date(2026, 12, 31))
    assert not is_quarter(date(2026, 2, 1), date(2026, 4, 30))
    with pytest.raises(ValueError, match="cannot end before"):
        previous_period(date(2026, 2, 2), date(2026, 2, 1))


def test_a_local_span_is_the_edmonton_days_whatever_their_length() -> None:
    # 2026-11-01: the clocks go back at 02:00, the day lasts 25 hours.
    # (Aware datetimes of one zone subtract as wall clocks: compare the instants in UTC.)
    since, until = local_span(date(2026, 11, 1), date(2026, 11, 1))
    assert until.astimezone(UTC) - since.astimezone(UTC) == timedelta(hours=25)
    assert since == datetime(2026, 11, 1, 6, 0, tzinfo=UTC)
    # A week with the spring change (2026-03-08) lasts 167 hours.
    since, until = local_span(date(2026, 3, 2), date(2026, 3, 8))
    assert until.astimezone(UTC) - since.astimezone(UTC) == timedelta(hours=167)
    assert until == datetime(2026, 3, 9, 6, 0, tzinfo=UTC)
