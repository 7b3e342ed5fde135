"""The business calendar: Edmonton time, Alberta's general holidays, business days, and
when each subscription frequency runs and what period it covers (subscriptions spec §2).

Pure functions of their arguments (the holiday tables are computed by the
``holidays`` package and cached per year). Every schedule, WCB tier deadline
and "business day" in the service comes from here.
"""

from __future__ import annotations

import calendar as _gregorian
import functools
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from types import MappingProxyType
from typing import Final
from zoneinfo import ZoneInfo

import holidays

from meritum_api.settings import Settings
from meritum_shared.constants.analytics import ReportType, SubscriptionFrequency

#: Where the physicians practise: every schedule and local date is read here.
EDMONTON: Final = ZoneInfo("America/Edmonton")
#: Runs start at 06:00 local, so the report is there at the start of the day.
RUN_TIME: Final = time(6, 0)
#: Monthly and quarterly runs happen on this business day of the month.
RUN_BUSINESS_DAY: Final = 3
#: WCB_TIMING covers today to today + 7 days, whatever its frequency.
LOOK_AHEAD_DAYS: Final = 7

_MONDAY, _WEDNESDAY = 0, 2
_QUARTER_MONTHS: Final = (1, 4, 7, 10)


@functools.cache
def _holidays(year: int, optional: bool) -> Mapping[date, str]:
    categories = ("public", "optional") if optional else ("public",)
    table = holidays.country_holidays(
        "CA", subdiv="AB", years=year, categories=categories, observed=True
    )
    return MappingProxyType(dict(table))


def local_date(instant: datetime) -> date:
    """The calendar day in Edmonton at ``instant`` (which must be timezone-aware)."""
    if instant.tzinfo is None or instant.utcoffset() is None:
        raise ValueError("a naive datetime has no place in time")
    return instant.astimezone(EDMONTON).date()


def at_local(day: date, at: time = RUN_TIME) -> datetime:
    """``day`` at the wall-clock time ``at`` in Edmonton, as an aware instant.

    06:00 exists exactly once on every day (the clocks change at 02:00), so
    a run is never skipped in spring nor doubled in autumn.
    """
    return datetime.combine(day, at, tzinfo=EDMONTON)


@dataclass(frozen=True, slots=True)
class Run:
    """One run of a subscription: when (Edmonton time) and the days it covers (inclusive)."""

    at: datetime
    period_start: date
    period_end: date


@dataclass(frozen=True, slots=True)
class BusinessCalendar:
    """Alberta's business days: Monday to Friday less its general holidays (observed days too).

    The optional holidays (Easter Monday, Heritage Day, National Day for
    Truth and Reconciliation, Boxing Day) are working days unless
    ``optional_holidays`` is set.
    """

    optional_holidays: bool = False

    @classmethod
    def from_settings(cls, settings: Settings) -> BusinessCalendar:
        """The calendar the settings ask for (``MERITUM_OPTIONAL_HOLIDAYS``)."""
        return cls(optional_holidays=settings.optional_holidays)

    def holidays(self, year: int) -> Mapping[date, str]:
        """The year's non-working holidays, by date."""
        return _holidays(year, self.optional_holidays)

    def is_holiday(self, day: date) -> bool:
        """Whether ``day`` is a holiday (or the observed day of one)."""
        return day in self.holidays(day.year)

    def is_business_day(self, day: date) -> bool:
        """Monday to Friday and not a holiday."""
        return day.weekday() < 5 and not self.is_holiday(day)

    def next_business_day(self, day: date) -> date:
        """The first business day strictly after ``day``."""
        return self.add_business_days(day, 1)

    def add_business_days(self, day: date, count: int) -> date:
        """The ``count``-th business day strictly after ``day`` (count ≥ 1)."""
        if count < 1:
            raise ValueError("count must be at least 1")
        current = day
        while count:
            current += timedelta(days=1)
            if self.is_business_day(current):
                count -= 1
        return current

    def nth_business_day(self, year: int, month: int, n: int) -> date:
        """The ``n``-th business day of a month (n ≥ 1; it may fall in the next month)."""
        return self.add_business_days(date(year, month, 1) - timedelta(days=1), n)

    # --- subscription schedules ------------------------------------------------------

    def is_run_day(
        self, frequency: SubscriptionFrequency, report_type: ReportType, day: date
    ) -> bool:
        """Whether a subscription of this frequency (and type) runs on ``day``."""
        match frequency:
            case SubscriptionFrequency.DAILY:
                return True
            case SubscriptionFrequency.WEEKLY:
                weekday = _WEDNESDAY if report_type is ReportType.WCB_TIMING else _MONDAY
                return day.weekday() == weekday
            case SubscriptionFrequency.MONTHLY:
                return day == self.nth_business_day(day.year, day.month, RUN_BUSINESS_DAY)
            case SubscriptionFrequency.QUARTERLY:
                return day.month in _QUARTER_MONTHS and day == self.nth_business_day(
                    day.year, day.month, RUN_BUSINESS_DAY
                )

    def run_on(self, frequency: SubscriptionFrequency, report_type: ReportType, day: date) -> Run:
        """The run on ``day`` and the period it covers; ValueError if it does not run then."""
        if not self.is_run_day(frequency, report_type, day):
            raise ValueError(f"a {frequency.value} {report_type.value} does not run on {day}")
        return Run(at_local(day), *covered_period(frequency, report_type, day))

    def next_run(
        self, frequency: SubscriptionFrequency, report_type: ReportType, after: datetime
    ) -> Run:
        """The first run strictly after the instant ``after``."""
        day = local_date(after)
        if at_local(day) <= after:
            day += timedelta(days=1)
        while not self.is_run_day(frequency, report_type, day):
            day = self._next_candidate(frequency, report_type, day)
        return self.run_on(frequency, report_type, day)

    def runs_between(
        self,
        frequency: SubscriptionFrequency,
        report_type: ReportType,
        after: datetime,
        until: datetime,
    ) -> Iterator[Run]:
        """Every run with ``after < at <= until``, oldest first."""
        run = self.next_run(frequency, report_type, after)
        while run.at <= until:
            yield run
            run = self.next_run(frequency, report_type, run.at)

    def _next_candidate(
        self, frequency: SubscriptionFrequency, report_type: ReportType, day: date
    ) -> date:
        # Jump straight to the next day that can be a run day, rather than
        # testing every day of a quarter.
        if frequency in (SubscriptionFrequency.MONTHLY, SubscriptionFrequency.QUARTERLY):
            candidate = self.nth_business_day(day.year, day.month, RUN_BUSINESS_DAY)
            if candidate > day:
                return candidate
            year, month = (day.year + 1, 1) if day.month == 12 else (day.year, day.month + 1)
            return self.nth_business_day(year, month, RUN_BUSINESS_DAY)
        return day + timedelta(days=1)


def _month_end(year: int, month: int) -> date:
    return date(year, month, _gregorian.monthrange(year, month)[1])


def covered_period(
    frequency: SubscriptionFrequency, report_type: ReportType, run_day: date
) -> tuple[date, date]:
    """The days (inclusive) a run on ``run_day`` covers.

    DAILY: the previous day; WEEKLY: the previous Monday to Sunday; MONTHLY:
    the previous calendar month; QUARTERLY: the previous quarter. WCB_TIMING
    always looks ahead instead: today to today + 7 days.
    """
    if report_type is ReportType.WCB_TIMING:
        return run_day, run_day + timedelta(days=LOOK_AHEAD_DAYS)
    match frequency:
        case SubscriptionFrequency.DAILY:
            yesterday = run_day - timedelta(days=1)
            return yesterday, yesterday
        case SubscriptionFrequency.WEEKLY:
            this_monday = run_day - timedelta(days=run_day.weekday())
            return this_monday - timedelta(days=7), this_monday - timedelta(days=1)
        case SubscriptionFrequency.MONTHLY:
            last = run_day.replace(day=1) - timedelta(days=1)
            return last.replace(day=1), last
        case SubscriptionFrequency.QUARTERLY:
            quarter_start_month = (run_day.month - 1) // 3 * 3 + 1
            end = date(run_day.year, quarter_start_month, 1) - timedelta(days=1)
            start_month = end.month - 2
            return date(end.year, start_month, 1), _month_end(end.year, end.month)


#: The calendar of the default settings (optional holidays are working days).
ALBERTA: Final = BusinessCalendar()


def local_span(start: date, end: date) -> tuple[datetime, datetime]:
    """The instants ``[from, until)`` of the Edmonton days ``start`` to ``end`` (inclusive).

    Midnight exists exactly once on every Edmonton day (the clocks change at
    02:00), so a day is 23, 24 or 25 hours long and no instant falls in two.
    """
    return at_local(start, time(0)), at_local(end + timedelta(days=1), time(0))


def whole_months(start: date, end: date) -> int:
    """How many whole calendar months ``start`` to ``end`` spans; 0 when it is not whole months."""
    if start.day != 1 or end != _month_end(end.year, end.month) or end < start:
        return 0
    return (end.year - start.year) * 12 + end.month - start.month + 1


def is_quarter(start: date, end: date) -> bool:
    """Whether ``start`` to ``end`` is one calendar quarter (January to March, …)."""
    return whole_months(start, end) == 3 and start.month in _QUARTER_MONTHS


def previous_period(start: date, end: date) -> tuple[date, date]:
    """The period a scheduled report sets beside ``start`` to ``end`` (inclusive).

    Whole calendar months (a month, a quarter) are compared with as many whole
    months just before (a month with the month before, a quarter with the
    quarter before); any other span (a Monday to Sunday week, a day) with the
    equally long span just before (the week before).
    """
    if end < start:
        raise ValueError("a period cannot end before it starts")
    months = whole_months(start, end)
    if months:
        previous_end = start - timedelta(days=1)
        index = previous_end.year * 12 + previous_end.month - months
        return date(index // 12, index % 12 + 1, 1), previous_end
    length = end - start
    previous_end = start - timedelta(days=1)
    return previous_end - length, previous_end
