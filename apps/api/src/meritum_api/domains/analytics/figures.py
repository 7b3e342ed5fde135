"""The figures of every report: one module, so the CSV and the PDFs cannot disagree.

The accountant reports come first; the scheduled ones (rejection digest, WCB
timing, weekly summary, monthly performance, RRNP quarterly) each have a
section of their own below, with its basis.

Accountant basis: a claim belongs to a period by its **payment date** (cash basis, what
an accountant reconciles against deposits); paid means state ``PAID`` or
``ADJUSTED``. The one exception is the written-off total, whose claims have
no payment date: they count by date of service.

Every amount is a ``NUMERIC`` summed by PostgreSQL and read as ``Decimal``;
nothing here or in a generator adds money up in Python. Each reader is one
SQL statement, so the figures it returns come from one snapshot and agree
with each other (the AHCIP and WCB revenue add up to the total even while
claims are being paid). Every statement is scoped by the provider of an
``AuthContext``.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, Final, NamedTuple, cast

import psycopg
from sqlalchemy import (
    ARRAY,
    ColumnElement,
    Connection,
    Date,
    DateTime,
    Integer,
    Select,
    String,
    and_,
    bindparam,
    case,
    exists,
    func,
    literal,
    select,
    true,
    tuple_,
    type_coerce,
)
from sqlalchemy import cast as sql_cast
from sqlalchemy.orm import InstrumentedAttribute, aliased

from meritum_api.calendar import (
    BusinessCalendar,
    at_local,
    local_date,
    local_span,
    previous_period,
)
from meritum_api.context import AuthContext
from meritum_shared.constants.analytics import AGING_BRACKETS, AgingBracket
from meritum_shared.constants.claims import (
    ClaimState,
    ClaimType,
    SuggestionStatus,
    WcbFeeTier,
)
from meritum_shared.schemas.db import (
    AiCoachSuggestion,
    Claim,
    ClaimHistoryEvent,
    Provider,
    RejectionCode,
    WcbTimingTier,
)

#: Claim states that mean "paid" for the accountant.
PAID_STATES: Final[tuple[ClaimState, ...]] = (ClaimState.PAID, ClaimState.ADJUSTED)

#: Rows fetched per round trip from a server-side cursor.
FETCH_ROWS: Final = 2_000

_ZERO: Final = Decimal("0.00")


@dataclass(frozen=True, slots=True)
class Period:
    """The calendar days a report covers, both ends included."""

    start: date
    end: date

    def __post_init__(self) -> None:
        if self.end < self.start:
            raise ValueError("a period cannot end before it starts")

    def months(self) -> list[date]:
        """The first day of every calendar month the period touches, in order."""
        months = []
        month = self.start.replace(day=1)
        while month <= self.end:
            months.append(month)
            month = (month.replace(day=28) + _FOUR_DAYS).replace(day=1)
        return months


class PaidClaim(NamedTuple):
    """One paid claim, in the columns (and order) of the accountant export."""

    date_of_service: date
    hsc_code: str
    modifiers: str
    submitted_fee: Decimal
    assessed_fee: Decimal
    payment_date: date
    ba_number: str
    location: str
    claim_type: ClaimType


class DetailLine(NamedTuple):
    """A paid claim with the totals of its payment month."""

    claim: PaidClaim
    #: First day of the claim's payment month.
    month: date
    month_submitted: Decimal
    month_assessed: Decimal
    month_claims: int


@dataclass(frozen=True, slots=True)
class DetailTotals:
    """What the PDF detail says of the whole period: its BA numbers and grand total."""

    ba_numbers: tuple[str, ...]
    submitted: Decimal
    assessed: Decimal
    claims: int


@dataclass(frozen=True, slots=True)
class Share:
    """One line of a breakdown: a BA number, a location or a month, and what it earned."""

    key: str
    claims: int
    revenue: Decimal


@dataclass(frozen=True, slots=True)
class MonthShare:
    """A calendar month of the period (``month`` is its first day) and what it earned."""

    month: date
    claims: int
    revenue: Decimal


@dataclass(frozen=True, slots=True)
class AccountantFigures:
    """Every figure of the accountant summary for one physician and period."""

    period: Period
    #: Number of paid claims, Σ assessed fee (the revenue) and Σ submitted fee.
    claims: int
    revenue: Decimal
    submitted: Decimal
    ahcip_revenue: Decimal
    wcb_revenue: Decimal
    #: Largest first (ties by key), as are the locations.
    by_ba: tuple[Share, ...]
    by_location: tuple[Share, ...]
    #: Every calendar month of the period, with zeros where nothing was paid.
    by_month: tuple[MonthShare, ...]
    rrnp_premium: Decimal
    #: How many paid claims carry an RRNP premium: none means "not applicable".
    rrnp_claims: int
    #: Σ (assessed − submitted) over ADJUSTED claims: negative when paid less.
    adjustments: Decimal
    adjusted_claims: int
    #: Σ submitted fee of WRITTEN_OFF claims served in the period.
    written_off: Decimal
    written_off_claims: int

    @property
    def ba_numbers(self) -> tuple[str, ...]:
        """The BA numbers the period's paid claims were billed under, in order."""
        return tuple(sorted(share.key for share in self.by_ba))


@dataclass(frozen=True, slots=True)
class Physician:
    """Who a report is for, as its header names them."""

    first_name: str
    last_name: str

    @property
    def legal_name(self) -> str:
        """Given name and family name, as registered."""
        return f"{self.first_name} {self.last_name}"


_FOUR_DAYS: Final = date(2000, 1, 5) - date(2000, 1, 1)
_ONE_DAY: Final = timedelta(days=1)
_MIDNIGHT: Final = time(0)


def _month_of(day: InstrumentedAttribute[date | None]) -> ColumnElement[date]:
    # date_trunc has no DATE variant: without the cast to a plain timestamp
    # PostgreSQL would pick the timestamptz one and depend on the session's zone.
    return sql_cast(func.date_trunc("month", sql_cast(day, DateTime(timezone=False))), Date)


# Index: ix_claims_provider_id_payment_date serves this filter (EXPLAIN over the
# seed's 33,000 claims and over 15 million: a bitmap index scan on provider and
# payment date, the state a residual filter that drops almost nothing, since
# only paid claims carry a payment date). The written-off total is a bitmap
# scan of ix_claims_provider_id_date_of_service (EXPLAIN over the seed). No
# further index is needed.
def _is_paid_in(
    ctx: AuthContext, period: Period, claim: type[Claim] = Claim
) -> ColumnElement[bool]:
    return and_(
        # The tenant filter: another provider's claims never reach a report.
        claim.provider_id == ctx.provider_id,
        claim.state.in_(PAID_STATES),
        claim.payment_date.between(period.start, period.end),
    )


_ORDER: Final = (Claim.payment_date, Claim.date_of_service, Claim.claim_id)


def paid_claims_query(
    *, ctx: AuthContext, period: Period
) -> Select[date, str, str, Decimal, Decimal | None, date | None, str, str, ClaimType]:
    """The export's rows: paid claims of the period by payment date, then service date, then id."""
    return (
        select(
            Claim.date_of_service,
            Claim.hsc_code,
            Claim.modifiers,
            Claim.submitted_fee,
            Claim.assessed_fee,
            Claim.payment_date,
            Claim.ba_number,
            Claim.location,
            Claim.claim_type,
        )
        .where(_is_paid_in(ctx, period))
        .order_by(*_ORDER)
    )


def _paid_claim(row: Any) -> PaidClaim:
    served, hsc, modifiers, submitted, assessed, paid, ba, location, kind = row[:9]
    # The CHECK ck_claims_paid_has_payment guarantees both for paid claims.
    if assessed is None or paid is None:
        raise ValueError("a paid claim without an assessed fee or a payment date")
    return PaidClaim(
        served, hsc, modifiers, submitted, assessed, paid, ba, location, ClaimType(kind)
    )


@contextmanager
def paid_claims(
    *, conn: Connection, ctx: AuthContext, period: Period
) -> Iterator[Iterator[PaidClaim]]:
    """The period's paid claims, streamed through a server-side cursor closed on exit."""
    # stream_results opens a named (server-side) cursor: rows arrive FETCH_ROWS
    # at a time, so memory stays flat whatever the period holds.
    result = conn.execute(
        paid_claims_query(ctx=ctx, period=period),
        execution_options={"stream_results": True, "yield_per": FETCH_ROWS},
    )
    try:
        yield (_paid_claim(row) for row in result)
    finally:
        # Also when the consumer stops early: release the cursor at once.
        result.close()


def detail_query(*, ctx: AuthContext, period: Period) -> Select[Any]:
    """The export's rows, each with its month's and the period's totals (window sums)."""
    month = _month_of(Claim.payment_date)
    other = aliased(Claim)
    # Evaluated once (it refers to no column of the outer row), in the rows' snapshot.
    ba_numbers = (
        select(func.array_agg(other.ba_number.distinct()))
        .where(_is_paid_in(ctx, period, other))
        .scalar_subquery()
    )
    return (
        select(
            *paid_claims_query(ctx=ctx, period=period).selected_columns,
            month.label("month"),
            func.sum(Claim.submitted_fee).over(partition_by=month),
            func.sum(Claim.assessed_fee).over(partition_by=month),
            func.count().over(partition_by=month),
            func.sum(Claim.submitted_fee).over(),
            func.sum(Claim.assessed_fee).over(),
            func.count().over(),
            ba_numbers,
        )
        .where(_is_paid_in(ctx, period))
        .order_by(*_ORDER)
    )


class DetailReader:
    """The detail's lines from one scrollable cursor: read as often as needed, one snapshot."""

    def __init__(self, cursor: psycopg.ServerCursor[Any]) -> None:
        self._cursor = cursor

    def totals(self) -> DetailTotals:
        """The period's BA numbers and grand total (carried by every row; read from the first)."""
        self._cursor.scroll(0, mode="absolute")
        first = self._cursor.fetchone()
        if first is None:
            return DetailTotals(ba_numbers=(), submitted=_ZERO, assessed=_ZERO, claims=0)
        submitted, assessed, claims, ba_numbers = first[13:17]
        return DetailTotals(tuple(sorted(ba_numbers)), submitted, assessed, claims)

    def lines(self) -> Iterator[DetailLine]:
        """Every line from the first, in the export's order."""
        self._cursor.scroll(0, mode="absolute")
        while batch := self._cursor.fetchmany(FETCH_ROWS):
            for row in batch:
                yield DetailLine(_paid_claim(row), *row[9:13])


@contextmanager
def detail_lines(*, conn: Connection, ctx: AuthContext, period: Period) -> Iterator[DetailReader]:
    """The PDF detail's lines, readable twice (layout, then drawing) from the same snapshot."""
    statement = detail_query(ctx=ctx, period=period).compile(
        dialect=conn.dialect, compile_kwargs={"render_postcompile": True}
    )
    if not conn.in_transaction():
        conn.begin()  # a cursor lives in a transaction; the caller's connection ends it
    raw = cast(psycopg.Connection[Any], conn.connection.driver_connection)
    # A SCROLL cursor keeps its result on the server (spilling to disk past
    # work_mem): the client reads it twice in batches and never holds it whole.
    cursor = raw.cursor(name=f"detail_{uuid.uuid4().hex}", scrollable=True)
    try:
        cursor.execute(str(statement), statement.params)
        yield DetailReader(cursor)
    finally:
        cursor.close()


def physician(*, conn: Connection, ctx: AuthContext) -> Physician:
    """The physician a report is for."""
    row = conn.execute(
        select(Provider.first_name, Provider.last_name).where(
            Provider.provider_id == ctx.provider_id
        )
    ).one()
    return Physician(first_name=row.first_name, last_name=row.last_name)


def accountant_figures(*, conn: Connection, ctx: AuthContext, period: Period) -> AccountantFigures:
    """Every figure of the summary, from one statement over the period's paid claims."""
    paid = (
        select(
            Claim.claim_type,
            Claim.state,
            Claim.ba_number,
            Claim.location,
            _month_of(Claim.payment_date).label("month"),
            Claim.submitted_fee,
            Claim.assessed_fee,
            Claim.rrnp_premium,
        )
        .where(_is_paid_in(ctx, period))
        .subquery("paid")
    )
    written_off = (
        Claim.provider_id == ctx.provider_id,
        Claim.state == ClaimState.WRITTEN_OFF,
        Claim.date_of_service.between(period.start, period.end),
    )
    dimensions = (paid.c.claim_type, paid.c.ba_number, paid.c.location, paid.c.month)
    # One pass of GROUPING SETS: the grand total and each breakdown in one
    # statement, so they are sums over exactly the same rows.
    statement = select(
        *(func.grouping(d).label(f"by_{d.name}") for d in dimensions),
        *dimensions,
        func.count().label("claims"),
        func.coalesce(func.sum(paid.c.assessed_fee), _ZERO).label("revenue"),
        func.coalesce(func.sum(paid.c.submitted_fee), _ZERO).label("submitted"),
        func.coalesce(func.sum(paid.c.rrnp_premium), _ZERO).label("rrnp"),
        func.count().filter(paid.c.rrnp_premium > 0).label("rrnp_claims"),
        func.coalesce(
            func.sum(paid.c.assessed_fee - paid.c.submitted_fee).filter(
                paid.c.state == ClaimState.ADJUSTED
            ),
            _ZERO,
        ).label("adjustments"),
        func.count().filter(paid.c.state == ClaimState.ADJUSTED).label("adjusted"),
        # Uncorrelated scalar subqueries: evaluated once, in the same snapshot.
        select(func.coalesce(func.sum(Claim.submitted_fee), _ZERO))
        .where(*written_off)
        .scalar_subquery()
        .label("written_off"),
        select(func.count()).where(*written_off).scalar_subquery().label("written_off_claims"),
    ).group_by(func.grouping_sets(tuple_(), *dimensions))
    total: Any = None
    by_type: dict[ClaimType, Decimal] = {}
    by_ba: list[Share] = []
    by_location: list[Share] = []
    by_month: dict[date, MonthShare] = {}
    for row in conn.execute(statement):
        if row.by_claim_type == 0:
            by_type[ClaimType(row.claim_type)] = row.revenue
        elif row.by_ba_number == 0:
            by_ba.append(Share(row.ba_number, row.claims, row.revenue))
        elif row.by_location == 0:
            by_location.append(Share(row.location, row.claims, row.revenue))
        elif row.by_month == 0:
            by_month[row.month] = MonthShare(row.month, row.claims, row.revenue)
        else:
            total = row
    if total is None:  # the empty grouping set always yields its row, even over no claims
        raise RuntimeError("the summary statement returned no total")
    return AccountantFigures(
        period=period,
        claims=total.claims,
        revenue=total.revenue,
        submitted=total.submitted,
        ahcip_revenue=by_type.get(ClaimType.AHCIP, _ZERO),
        wcb_revenue=by_type.get(ClaimType.WCB, _ZERO),
        by_ba=_largest_first(by_ba),
        by_location=_largest_first(by_location),
        by_month=tuple(by_month.get(m, MonthShare(m, 0, _ZERO)) for m in period.months()),
        rrnp_premium=total.rrnp,
        rrnp_claims=total.rrnp_claims,
        adjustments=total.adjustments,
        adjusted_claims=total.adjusted,
        written_off=total.written_off,
        written_off_claims=total.written_off_claims,
    )


def _largest_first(shares: list[Share]) -> tuple[Share, ...]:
    return tuple(sorted(shares, key=lambda s: (-s.revenue, s.key)))


@contextmanager
def _scrollable(conn: Connection, statement: Select[Any], prefix: str) -> Iterator[Any]:
    """A SCROLL server-side cursor over ``statement``, closed on exit (see detail_lines)."""
    compiled = statement.compile(dialect=conn.dialect, compile_kwargs={"render_postcompile": True})
    if not conn.in_transaction():
        conn.begin()  # a cursor lives in a transaction; the caller's connection ends it
    raw = cast(psycopg.Connection[Any], conn.connection.driver_connection)
    cursor = raw.cursor(name=f"{prefix}_{uuid.uuid4().hex}", scrollable=True)
    try:
        cursor.execute(str(compiled), compiled.params)
        yield cursor
    finally:
        cursor.close()


def _scroll(cursor: psycopg.ServerCursor[Any]) -> Iterator[Any]:
    """Every row of a scrollable cursor from the first, FETCH_ROWS at a time."""
    cursor.scroll(0, mode="absolute")
    while batch := cursor.fetchmany(FETCH_ROWS):
        yield from batch


# --- REJECTION_DIGEST: the claims rejected in the period ---------------------------
#
# Basis: the rejection date. A claim was rejected on day D when its history has
# a change to REJECTED whose occurred_at, in America/Edmonton, falls on D. The
# digest has one line per such change (a claim rejected, resubmitted and
# rejected again within the period has two), with the claim's explanatory
# code and what the reference table says of it.


def edmonton_days(period: Period) -> tuple[datetime, datetime]:
    """The instants the period's days span in Edmonton: its first midnight, the one after it."""
    return local_span(period.start, period.end)


def _rejected_in(ctx: AuthContext, period: Period) -> ColumnElement[bool]:
    opens, closes = edmonton_days(period)
    event = ClaimHistoryEvent
    return and_(
        event.provider_id == ctx.provider_id,
        event.to_state == ClaimState.REJECTED,
        # A range of instants rather than a date taken of occurred_at, so that
        # ix_claim_audit_history_provider_id_occurred_at serves it.
        event.occurred_at >= opens,
        event.occurred_at < closes,
    )


def has_rejections(*, conn: Connection, ctx: AuthContext, period: Period) -> bool:
    """Whether any claim of the provider was rejected on a day of the period."""
    return bool(conn.execute(select(exists().where(_rejected_in(ctx, period)))).scalar_one())


class Rejection(NamedTuple):
    """One rejection of the period: when, the claim (no patient data) and its code."""

    rejected_at: datetime
    claim_id: uuid.UUID
    claim_type: ClaimType
    date_of_service: date
    hsc_code: str
    modifiers: str
    submitted_fee: Decimal
    location: str
    wcb_claim_number: str | None
    #: The claim's explanatory code, and what ``rejection_codes`` says of it
    #: (None when the code is missing there).
    code: str | None
    description: str | None
    corrective_guidance: str | None


@dataclass(frozen=True, slots=True)
class CodeShare:
    """How many of the period's rejections carry one code, and their submitted fees."""

    code: str | None
    description: str | None
    rejections: int
    submitted: Decimal


@dataclass(frozen=True, slots=True)
class RejectionTotals:
    """The digest's summary: rejections, Σ submitted fee of their claims, and per code."""

    rejections: int
    submitted: Decimal
    #: Most rejections first, then by code.
    by_code: tuple[CodeShare, ...]


def rejections_query(*, ctx: AuthContext, period: Period) -> Select[Any]:
    """The digest's lines in order of rejection, each with its code's and the period's totals."""
    event = ClaimHistoryEvent
    columns: tuple[Any, ...] = (
        event.occurred_at,
        Claim.claim_id,
        Claim.claim_type,
        Claim.date_of_service,
        Claim.hsc_code,
        Claim.modifiers,
        Claim.submitted_fee,
        Claim.location,
        Claim.wcb_claim_number,
        Claim.rejection_code,
        RejectionCode.description,
        RejectionCode.corrective_guidance,
        func.count().over(partition_by=Claim.rejection_code),
        func.sum(Claim.submitted_fee).over(partition_by=Claim.rejection_code),
        func.count().over(),
        func.sum(Claim.submitted_fee).over(),
    )
    return (
        select(*columns)
        .select_from(event)
        .join(
            Claim,
            and_(
                Claim.claim_id == event.claim_id,
                Claim.provider_id == event.provider_id,
                Claim.provider_id == ctx.provider_id,
            ),
        )
        .outerjoin(RejectionCode, RejectionCode.code == Claim.rejection_code)
        .where(_rejected_in(ctx, period))
        .order_by(event.occurred_at, event.event_id)
    )


class RejectionReader:
    """The digest's lines from one scrollable cursor: read as often as needed, one snapshot."""

    def __init__(self, cursor: psycopg.ServerCursor[Any]) -> None:
        self._cursor = cursor

    def totals(self) -> RejectionTotals:
        """The period's totals and the per-code shares, carried by the rows (one per code kept)."""
        first: Any = None
        codes: dict[str | None, CodeShare] = {}
        for row in _scroll(self._cursor):
            if first is None:
                first = row
            if row[9] not in codes:
                codes[row[9]] = CodeShare(row[9], row[10], row[12], row[13])
        if first is None:
            return RejectionTotals(rejections=0, submitted=_ZERO, by_code=())
        by_code = sorted(codes.values(), key=lambda c: (-c.rejections, c.code or ""))
        return RejectionTotals(first[14], first[15], tuple(by_code))

    def lines(self) -> Iterator[Rejection]:
        """Every line, in order of rejection."""
        for row in _scroll(self._cursor):
            at, claim_id, kind, served, hsc, modifiers, fee, location, wcb, code = row[:10]
            yield Rejection(
                at, claim_id, ClaimType(kind), served, hsc, modifiers, fee, location, wcb, code,
                row[10], row[11],
            )  # fmt: skip


@contextmanager
def rejections(*, conn: Connection, ctx: AuthContext, period: Period) -> Iterator[RejectionReader]:
    """The digest's lines, readable several times from the same snapshot."""
    statement = rejections_query(ctx=ctx, period=period)
    with _scrollable(conn, statement, "rejections") as cursor:
        yield RejectionReader(cursor)


# --- WCB_TIMING: WCB reports whose fee tier ends in the window ----------------------
#
# A WCB report's fee depends on when WCB receives it: each form's tiers end at
# a local time on the N-th business day after the exam (wcb_timing_tiers). A
# claim is in its *current* tier at the moment the report looks (``as_of``);
# the report lists the claims whose current tier ends within its window, with
# what that tier pays and how much less the next one does ("at stake").
#
# Only claims WCB has not received count: DRAFT (not sent) and QUEUED
# (waiting for the next batch). From SUBMITTED on, the tier was fixed by the
# submission, and an EXPIRED claim will not be sent.

#: Claim states whose WCB fee tier still depends on when they are sent.
UNSUBMITTED_STATES: Final[tuple[ClaimState, ...]] = (ClaimState.DRAFT, ClaimState.QUEUED)


@dataclass(frozen=True, slots=True)
class TierRule:
    """When one WCB form's paying tiers end (a row of ``wcb_timing_tiers``)."""

    form_type: str
    same_day_business_days: int
    on_time_business_days: int | None
    deadline_local_time: time

    def deadlines(
        self, date_of_service: date, calendar: BusinessCalendar
    ) -> tuple[tuple[WcbFeeTier, datetime], ...]:
        """When each paying tier ends for an exam on ``date_of_service``, same-day first."""
        tiers = [(WcbFeeTier.SAME_DAY, self.same_day_business_days)]
        if self.on_time_business_days is not None:
            tiers.append((WcbFeeTier.ON_TIME, self.on_time_business_days))
        return tuple(
            (
                tier,
                at_local(calendar.add_business_days(date_of_service, n), self.deadline_local_time),
            )
            for tier, n in tiers
        )

    def current_tier(
        self, date_of_service: date, as_of: datetime, calendar: BusinessCalendar
    ) -> tuple[WcbFeeTier, datetime | None]:
        """The tier a report received at ``as_of`` is paid at, and when it ends (None: late)."""
        for tier, deadline in self.deadlines(date_of_service, calendar):
            if as_of < deadline:
                return tier, deadline
        return WcbFeeTier.LATE, None


def tier_rules(*, conn: Connection) -> tuple[TierRule, ...]:
    """Every WCB form's tier rule, by form type."""
    rows = conn.execute(
        select(
            WcbTimingTier.form_type,
            WcbTimingTier.same_day_business_days,
            WcbTimingTier.on_time_business_days,
            WcbTimingTier.deadline_local_time,
        ).order_by(WcbTimingTier.form_type)
    )
    return tuple(TierRule(*row) for row in rows)


class DueTier(NamedTuple):
    """Exams of one form on one day whose current tier ends at ``deadline``."""

    form_type: str
    date_of_service: date
    tier: WcbFeeTier
    deadline: datetime


def tiers_ending(
    rules: tuple[TierRule, ...], *, as_of: datetime, until: date, calendar: BusinessCalendar
) -> list[DueTier]:
    """Every (form, exam day) whose tier current at ``as_of`` ends by the end of ``until``."""
    if not rules:
        return []
    longest = max(max(r.same_day_business_days, r.on_time_business_days or 0) for r in rules)
    # The earliest exam day whose last tier can still be open at as_of: walk back
    # until even the longest rule's deadline falls before as_of's day.
    first = local_date(as_of)
    while calendar.add_business_days(first - _ONE_DAY, longest) >= local_date(as_of):
        first -= _ONE_DAY
    due: list[DueTier] = []
    day = first
    while day <= until:
        for rule in rules:
            tier, deadline = rule.current_tier(day, as_of, calendar)
            if deadline is not None and local_date(deadline) <= until:
                due.append(DueTier(rule.form_type, day, tier, deadline))
        day += _ONE_DAY
    return due


class WcbDue(NamedTuple):
    """A WCB claim not yet sent whose current fee tier ends in the window."""

    deadline: datetime
    tier: WcbFeeTier
    claim_id: uuid.UUID
    wcb_claim_number: str
    form_type: str
    date_of_service: date
    state: ClaimState
    #: What the current tier pays, what the next one does, and the difference
    #: (None when the form's fees are not configured).
    tier_fee: Decimal | None
    next_fee: Decimal | None
    at_stake: Decimal | None


@dataclass(frozen=True, slots=True)
class WcbTimingTotals:
    """The window's claims, Σ fee at stake, and how many have no fees configured."""

    claims: int
    at_stake: Decimal
    unpriced: int


def wcb_due_query(*, ctx: AuthContext, due: list[DueTier]) -> Select[Any]:
    """The window's claims, most urgent first, each with the window's totals."""
    tiers = WcbTimingTier
    # The (form, day, tier, deadline) list comes from the business calendar in
    # Python; it is bounded (forms × about two weeks of exam days) and joined as
    # a table, so that PostgreSQL selects, prices and orders the claims.
    listed = (
        func.unnest(
            sql_cast(bindparam("due_forms", [d.form_type for d in due]), ARRAY(String)),
            sql_cast(bindparam("due_days", [d.date_of_service for d in due]), ARRAY(Date)),
            sql_cast(bindparam("due_tiers", [d.tier.value for d in due]), ARRAY(String)),
            sql_cast(
                bindparam("due_deadlines", [d.deadline for d in due]),
                ARRAY(DateTime(timezone=True)),
            ),
        )
        .table_valued("form_type", "date_of_service", "tier", "deadline")
        .render_derived("due")
    )
    same_day = listed.c.tier == WcbFeeTier.SAME_DAY.value
    tier_fee = case((same_day, tiers.same_day_fee), else_=tiers.on_time_fee)
    next_fee = case(
        (same_day, func.coalesce(tiers.on_time_fee, tiers.late_fee)), else_=tiers.late_fee
    )
    at_stake = tier_fee - next_fee
    return (
        select(
            listed.c.deadline,
            listed.c.tier,
            Claim.claim_id,
            Claim.wcb_claim_number,
            Claim.wcb_form_type,
            Claim.date_of_service,
            Claim.state,
            tier_fee,
            next_fee,
            at_stake,
            func.count().over(),
            func.coalesce(func.sum(at_stake).over(), _ZERO),
            func.count().filter(tier_fee.is_(None)).over(),
        )
        .select_from(Claim)
        .join(
            listed,
            and_(
                listed.c.form_type == Claim.wcb_form_type,
                listed.c.date_of_service == Claim.date_of_service,
            ),
        )
        .join(tiers, tiers.form_type == Claim.wcb_form_type)
        .where(
            Claim.provider_id == ctx.provider_id,
            Claim.claim_type == ClaimType.WCB,
            Claim.state.in_(UNSUBMITTED_STATES),
        )
        .order_by(listed.c.deadline, Claim.date_of_service, Claim.wcb_claim_number, Claim.claim_id)
    )


class WcbDueReader:
    """The window's claims from one scrollable cursor: read as often as needed, one snapshot."""

    def __init__(self, cursor: psycopg.ServerCursor[Any]) -> None:
        self._cursor = cursor

    def totals(self) -> WcbTimingTotals:
        """The window's totals (carried by every row; read from the first)."""
        self._cursor.scroll(0, mode="absolute")
        first = self._cursor.fetchone()
        if first is None:
            return WcbTimingTotals(claims=0, at_stake=_ZERO, unpriced=0)
        return WcbTimingTotals(*first[10:13])

    def lines(self) -> Iterator[WcbDue]:
        """Every claim, most urgent first."""
        for row in _scroll(self._cursor):
            deadline, tier, claim_id, number, form, served, state, fee, after, stake = row[:10]
            yield WcbDue(
                deadline, WcbFeeTier(tier), claim_id, number, form, served, ClaimState(state),
                fee, after, stake,
            )  # fmt: skip


def wcb_as_of(period: Period, requested_at: datetime) -> datetime:
    """The moment a WCB timing report looks at: when it was asked for, or its window's opening."""
    return max(requested_at, at_local(period.start, _MIDNIGHT))


@contextmanager
def wcb_due(
    *,
    conn: Connection,
    ctx: AuthContext,
    period: Period,
    as_of: datetime,
    calendar: BusinessCalendar,
) -> Iterator[WcbDueReader]:
    """The WCB claims whose current tier (at ``as_of``) ends within the period's days."""
    if as_of < at_local(period.start, _MIDNIGHT):
        raise ValueError("a WCB timing report looks from its window's opening on")
    due = tiers_ending(tier_rules(conn=conn), as_of=as_of, until=period.end, calendar=calendar)
    with _scrollable(conn, wcb_due_query(ctx=ctx, due=due), "wcb_due") as cursor:
        yield WcbDueReader(cursor)


# --- Scheduled operational reports: what the weekly summary and the monthly performance share
#
# They count a claim by the date of the event they describe, read as an
# Edmonton day: created (``claims.created_at``), or a row of the claim's
# history entering a state (``claim_audit_history.to_state``). Revenue keeps
# the accountant's basis, the payment date, so that a week's or a month's
# revenue is the accountant summary's revenue for the same days.


def previous(period: Period) -> Period:
    """The period a scheduled report sets beside ``period`` (``calendar.previous_period``)."""
    return Period(*previous_period(period.start, period.end))


def rate(part: int, whole: int) -> Decimal | None:
    """``part`` as a percentage of ``whole`` to one decimal, None when ``whole`` is zero."""
    if whole == 0:
        return None
    return (Decimal(100 * part) / Decimal(whole)).quantize(_TENTH, rounding=ROUND_HALF_UP)


_TENTH: Final = Decimal("0.1")


@dataclass(frozen=True, slots=True)
class ClaimActivity:
    """What happened to a physician's claims over a period, counted by the day of each event."""

    period: Period
    created: int
    submitted: int
    assessed: int
    #: Entered PAID or ADJUSTED (``adjusted`` counts the latter alone).
    paid: int
    adjusted: int
    rejected: int
    #: Σ assessed fee of the claims paid in the period, by payment date, and their number.
    revenue: Decimal
    paid_claims: int

    @property
    def outcomes(self) -> int:
        """Assessed outcomes: assessed + paid + adjusted + rejected."""
        return self.assessed + self.paid + self.rejected

    @property
    def rejection_rate(self) -> Decimal | None:
        """Rejected ÷ assessed outcomes, in percent; None when nothing was assessed."""
        return rate(self.rejected, self.outcomes)


def _entered(state: ClaimState | tuple[ClaimState, ...], since: datetime, until: datetime) -> Any:
    states = (state,) if isinstance(state, ClaimState) else state
    h = ClaimHistoryEvent
    return func.count().filter(
        h.to_state.in_(states), h.occurred_at >= since, h.occurred_at < until
    )


# Index: ix_claim_audit_history_provider_id_occurred_at serves the history
# range, ix_claims_provider_id_payment_date the revenue; claims created in
# the period are filtered from the provider's claims, with no index on
# created_at: the whole weekly summary takes 0.15 s at 60,000 claims
# (benchmarks/bench_weekly_monthly_rrnp), so none is added.
def claim_activity(*, conn: Connection, ctx: AuthContext, period: Period) -> ClaimActivity:
    """The period's counts of claims created, submitted, assessed, paid, rejected, and revenue."""
    since, until = local_span(period.start, period.end)
    h = ClaimHistoryEvent
    events = (
        select(
            _entered(ClaimState.SUBMITTED, since, until).label("submitted"),
            _entered(ClaimState.ASSESSED, since, until).label("assessed"),
            _entered(PAID_STATES, since, until).label("paid"),
            _entered(ClaimState.ADJUSTED, since, until).label("adjusted"),
            _entered(ClaimState.REJECTED, since, until).label("rejected"),
        )
        .where(
            # The tenant filter, as everywhere.
            h.provider_id == ctx.provider_id,
            h.occurred_at >= since,
            h.occurred_at < until,
        )
        .subquery("events")
    )
    created = (
        select(func.count())
        .where(
            Claim.provider_id == ctx.provider_id,
            Claim.created_at >= since,
            Claim.created_at < until,
        )
        .scalar_subquery()
    )
    paid = (
        select(
            func.coalesce(func.sum(Claim.assessed_fee), _ZERO).label("revenue"),
            func.count().label("claims"),
        )
        .where(_is_paid_in(ctx, period))
        .subquery("paid")
    )
    # Two one-row aggregates side by side: one statement, so one snapshot.
    row = conn.execute(
        select(created.label("created"), *events.c, paid.c.revenue, paid.c.claims)
        .select_from(events)
        .join(paid, true())
    ).one()
    return ClaimActivity(
        period=period,
        created=row.created,
        submitted=row.submitted,
        assessed=row.assessed,
        paid=row.paid,
        adjusted=row.adjusted,
        rejected=row.rejected,
        revenue=row.revenue,
        paid_claims=row.claims,
    )


def _state_at(instant: datetime) -> ColumnElement[Any]:
    """A claim's state at ``instant``: the last state its history entered before it."""
    h = ClaimHistoryEvent
    # Correlated to the outer claims row, by the claim alone: its history rows
    # belong to its provider (composite foreign key), and with no provider
    # condition the planner reads them by ix_claim_audit_history_claim_id
    # (with one it walked the provider's whole history backwards for every
    # claim: 10.9 s instead of 0.05 s over two years, 7,200 claims). A claim
    # with no history before the instant has no state then (it did not exist).
    from_history = (
        select(h.to_state)
        .where(
            h.claim_id == Claim.claim_id,
            h.to_state.is_not(None),
            h.occurred_at < instant,
        )
        .order_by(h.occurred_at.desc(), h.event_id.desc())
        .limit(1)
        .correlate(Claim)
        .scalar_subquery()
    )
    # A claim last changed before the instant is in the same state now as then
    # (every change of a claim moves its updated_at), so only the claims
    # changed since are looked up: CASE runs the lookup for those rows alone.
    # Aging at 72,000 claims: 2.2 s with a lookup for every claim.
    return case((Claim.updated_at < instant, Claim.state), else_=from_history)


# --- Weekly summary (WEEKLY_SUMMARY) -----------------------------------------------

#: AHCIP accepts a claim up to this many days after its date of service.
AHCIP_SUBMISSION_DAYS: Final = 90
#: The weekly summary lists the deadlines of the days just after its week.
DEADLINE_LOOKAHEAD_DAYS: Final = 14
#: A claim still to be submitted is in one of the UNSUBMITTED_STATES (DRAFT, QUEUED).
#: The most urgent claims a summary lists; the rest are counted.
DEADLINE_ROWS: Final = 100


@dataclass(frozen=True, slots=True)
class DeadlineClaim:
    """An AHCIP claim not yet submitted whose deadline falls soon after the period."""

    claim_id: uuid.UUID
    date_of_service: date
    deadline: date
    #: Days from the period's last day to the deadline (1 is the day after).
    days_left: int
    hsc_code: str
    location: str
    state: ClaimState
    submitted_fee: Decimal


@dataclass(frozen=True, slots=True)
class Deadlines:
    """Claims approaching their AHCIP deadline: how many, the fees at stake, the most urgent."""

    total: int
    at_stake: Decimal
    claims: tuple[DeadlineClaim, ...]


def approaching_deadlines(
    *, conn: Connection, ctx: AuthContext, period: Period, limit: int = DEADLINE_ROWS
) -> Deadlines:
    """AHCIP claims still unsubmitted when the period ends, due in the 14 days after it.

    A claim is unsubmitted when the last state its history entered before the
    end of the period's last Edmonton day is DRAFT or QUEUED. Most urgent
    first (earliest deadline, then earliest created, then id).
    """
    _, until = local_span(period.start, period.end)
    window = timedelta(days=AHCIP_SUBMISSION_DAYS)
    first = period.end + timedelta(days=1) - window
    last = period.end + timedelta(days=DEADLINE_LOOKAHEAD_DAYS) - window
    state = _state_at(until).label("state_at")
    candidates = (
        select(
            Claim.claim_id,
            Claim.date_of_service,
            Claim.hsc_code,
            Claim.location,
            Claim.submitted_fee,
            Claim.created_at,
            state,
        )
        .where(
            Claim.provider_id == ctx.provider_id,
            Claim.claim_type == ClaimType.AHCIP,
            # Served 90 days before a deadline in the window: the index on
            # (provider_id, date_of_service) reads two weeks of claims.
            Claim.date_of_service.between(first, last),
        )
        .subquery("candidates")
    )
    c = candidates.c
    rows = conn.execute(
        select(
            c.claim_id,
            c.date_of_service,
            c.hsc_code,
            c.location,
            c.submitted_fee,
            c.state_at,
            func.count().over().label("total"),
            func.sum(c.submitted_fee).over().label("at_stake"),
        )
        .where(c.state_at.in_(UNSUBMITTED_STATES))
        .order_by(c.date_of_service, c.created_at, c.claim_id)
        .limit(max(limit, 1))
    ).all()
    if not rows:
        return Deadlines(total=0, at_stake=_ZERO, claims=())
    claims = tuple(
        DeadlineClaim(
            claim_id=row.claim_id,
            date_of_service=row.date_of_service,
            deadline=row.date_of_service + window,
            days_left=(row.date_of_service + window - period.end).days,
            hsc_code=row.hsc_code,
            location=row.location,
            state=ClaimState(row.state_at),
            submitted_fee=row.submitted_fee,
        )
        for row in rows[:limit]
    )
    return Deadlines(total=rows[0].total, at_stake=rows[0].at_stake, claims=claims)


@dataclass(frozen=True, slots=True)
class WeeklyFigures:
    """Every figure of the weekly summary, for its week and the week before."""

    period: Period
    previous: Period
    activity: ClaimActivity
    activity_before: ClaimActivity
    deadlines: Deadlines
    deadlines_before: Deadlines


def weekly_figures(*, conn: Connection, ctx: AuthContext, period: Period) -> WeeklyFigures:
    """The weekly summary's figures, each with the week before's."""
    before = previous(period)
    return WeeklyFigures(
        period=period,
        previous=before,
        activity=claim_activity(conn=conn, ctx=ctx, period=period),
        activity_before=claim_activity(conn=conn, ctx=ctx, period=before),
        deadlines=approaching_deadlines(conn=conn, ctx=ctx, period=period),
        deadlines_before=approaching_deadlines(conn=conn, ctx=ctx, period=before, limit=0),
    )


# --- Monthly performance (MONTHLY_PERFORMANCE) -------------------------------------

#: How many HSC codes and rejection codes the report ranks.
TOP_CODES: Final = 10
#: Claims that are owed money: submitted and neither paid nor refused yet.
UNPAID_STATES: Final[tuple[ClaimState, ...]] = (ClaimState.SUBMITTED, ClaimState.ASSESSED)


@dataclass(frozen=True, slots=True)
class Compared:
    """One key (a BA number, a location, a claim type) in the period and the one before."""

    key: str
    revenue: Decimal
    revenue_before: Decimal


def compare(current: tuple[Share, ...], before: tuple[Share, ...]) -> tuple[Compared, ...]:
    """Each key of either period with its revenue in both: the period's order, then the others."""
    earlier = {share.key: share.revenue for share in before}
    seen = {share.key for share in current}
    rows = [Compared(s.key, s.revenue, earlier.get(s.key, _ZERO)) for s in current]
    rows += [Compared(s.key, _ZERO, s.revenue) for s in before if s.key not in seen]
    return tuple(rows)


@dataclass(frozen=True, slots=True)
class HscShare:
    """An HSC code's paid claims and revenue in the period and the one before."""

    code: str
    claims: int
    revenue: Decimal
    claims_before: int
    revenue_before: Decimal


def top_hsc_codes(
    *, conn: Connection, ctx: AuthContext, period: Period, before: Period
) -> tuple[HscShare, ...]:
    """The period's ten HSC codes that earned most (Σ assessed fee, by payment date)."""
    now = Claim.payment_date.between(period.start, period.end)
    then = Claim.payment_date.between(before.start, before.end)
    revenue = func.coalesce(func.sum(Claim.assessed_fee).filter(now), _ZERO)
    rows = conn.execute(
        select(
            Claim.hsc_code,
            func.count().filter(now).label("claims"),
            revenue.label("revenue"),
            func.count().filter(then).label("claims_before"),
            func.coalesce(func.sum(Claim.assessed_fee).filter(then), _ZERO).label("before"),
        )
        .where(
            Claim.provider_id == ctx.provider_id,
            Claim.state.in_(PAID_STATES),
            Claim.payment_date.between(
                min(before.start, period.start), max(before.end, period.end)
            ),
        )
        .group_by(Claim.hsc_code)
        .having(func.count().filter(now) > 0)
        .order_by(revenue.desc(), Claim.hsc_code)
        .limit(TOP_CODES)
    ).all()
    return tuple(
        HscShare(row.hsc_code, row.claims, row.revenue, row.claims_before, row.before)
        for row in rows
    )


@dataclass(frozen=True, slots=True)
class RejectionCodeShare:
    """An explanatory code: how many rejections gave it in the period and the one before."""

    code: str | None
    description: str | None
    rejections: int
    rejections_before: int


def top_rejection_codes(
    *, conn: Connection, ctx: AuthContext, period: Period, before: Period
) -> tuple[RejectionCodeShare, ...]:
    """The codes of the period's rejections, most frequent first, with their description.

    A rejection is a history row entering REJECTED (counted on its Edmonton
    day); its code is the claim's explanatory code.
    """
    since, until = local_span(period.start, period.end)
    since_before, until_before = local_span(before.start, before.end)
    h = ClaimHistoryEvent
    now = and_(h.occurred_at >= since, h.occurred_at < until)
    then = and_(h.occurred_at >= since_before, h.occurred_at < until_before)
    count_now = func.count().filter(now)
    statement = (
        select(
            Claim.rejection_code,
            # One description per code (the code is the reference table's key).
            func.min(RejectionCode.description).label("description"),
            count_now.label("rejections"),
            func.count().filter(then).label("before"),
        )
        .select_from(h)
        .join(Claim, and_(Claim.claim_id == h.claim_id, Claim.provider_id == h.provider_id))
        # A code missing from the reference table is still counted, undescribed.
        .outerjoin(RejectionCode, RejectionCode.code == Claim.rejection_code)
        .where(
            h.provider_id == ctx.provider_id,
            h.to_state == ClaimState.REJECTED,
            h.occurred_at >= min(since, since_before),
            h.occurred_at < max(until, until_before),
        )
        .group_by(Claim.rejection_code)
        .having(count_now > 0)
        .order_by(count_now.desc(), Claim.rejection_code)
        .limit(TOP_CODES)
    )
    rows = conn.execute(statement).all()
    return tuple(
        RejectionCodeShare(row.rejection_code, row.description, row.rejections, row.before)
        for row in rows
    )


@dataclass(frozen=True, slots=True)
class CoachSummary:
    """AI Coach suggestions made in a period and what became of them."""

    made: int
    accepted: int
    dismissed: int
    pending: int
    #: Σ revenue impact of the accepted ones.
    recovered: Decimal


def coach_summary(*, conn: Connection, ctx: AuthContext, period: Period) -> CoachSummary:
    """The AI Coach suggestions made in the period's Edmonton days, by status."""
    since, until = local_span(period.start, period.end)
    s = AiCoachSuggestion
    accepted = s.status == SuggestionStatus.ACCEPTED
    row = conn.execute(
        select(
            func.count().label("made"),
            func.count().filter(accepted).label("accepted"),
            func.count().filter(s.status == SuggestionStatus.DISMISSED).label("dismissed"),
            func.count().filter(s.status == SuggestionStatus.PENDING).label("pending"),
            func.coalesce(func.sum(s.revenue_impact).filter(accepted), _ZERO).label("recovered"),
        ).where(
            s.provider_id == ctx.provider_id,
            s.created_at >= since,
            s.created_at < until,
        )
    ).one()
    return CoachSummary(row.made, row.accepted, row.dismissed, row.pending, row.recovered)


@dataclass(frozen=True, slots=True)
class AgingShare:
    """Unpaid claims of one aging bracket: how many and Σ submitted fee."""

    bracket: AgingBracket
    claims: int
    amount: Decimal


@dataclass(frozen=True, slots=True)
class Aging:
    """The unpaid claims at the end of a period, by days since their date of service."""

    as_of: date
    brackets: tuple[AgingShare, ...]
    claims: int
    amount: Decimal


def _bracket_of(age: ColumnElement[int]) -> ColumnElement[str]:
    whens = [
        (age <= bracket.max_days, bracket.label)
        for bracket in AGING_BRACKETS
        if bracket.max_days is not None
    ]
    open_ended = next(b.label for b in AGING_BRACKETS if b.max_days is None)
    return case(*whens, else_=literal(open_ended))


def claim_aging(*, conn: Connection, ctx: AuthContext, as_of: date) -> Aging:
    """Claims unpaid at the end of the Edmonton day ``as_of`` (SUBMITTED or ASSESSED then).

    Their age is the days from their date of service to ``as_of``.
    """
    _, until = local_span(as_of, as_of)
    state = _state_at(until)
    unpaid = (
        select(
            # date − date is a number of days in PostgreSQL.
            _bracket_of(type_coerce(literal(as_of, Date) - Claim.date_of_service, Integer)).label(
                "bracket"
            ),
            Claim.submitted_fee,
        )
        .where(
            Claim.provider_id == ctx.provider_id,
            Claim.date_of_service <= as_of,
            state.in_(UNPAID_STATES),
        )
        .subquery("unpaid")
    )
    rows = conn.execute(
        select(
            func.grouping(unpaid.c.bracket).label("total"),
            unpaid.c.bracket,
            func.count().label("claims"),
            func.coalesce(func.sum(unpaid.c.submitted_fee), _ZERO).label("amount"),
        ).group_by(func.grouping_sets(tuple_(), tuple_(unpaid.c.bracket)))
    ).all()
    by_label = {row.bracket: row for row in rows if row.total == 0}
    total = next(row for row in rows if row.total == 1)
    brackets = tuple(
        AgingShare(
            bracket,
            by_label[bracket.label].claims if bracket.label in by_label else 0,
            by_label[bracket.label].amount if bracket.label in by_label else _ZERO,
        )
        for bracket in AGING_BRACKETS
    )
    return Aging(as_of=as_of, brackets=brackets, claims=total.claims, amount=total.amount)


@dataclass(frozen=True, slots=True)
class PerformanceFigures:
    """Every figure of the monthly performance report, for its period and the one before."""

    period: Period
    previous: Period
    revenue: AccountantFigures
    revenue_before: AccountantFigures
    top_hsc: tuple[HscShare, ...]
    activity: ClaimActivity
    activity_before: ClaimActivity
    rejection_codes: tuple[RejectionCodeShare, ...]
    coach: CoachSummary
    coach_before: CoachSummary
    aging: Aging
    aging_before: Aging


def performance_figures(
    *, conn: Connection, ctx: AuthContext, period: Period
) -> PerformanceFigures:
    """The monthly (or quarterly) performance figures, each with the previous period's."""
    before = previous(period)
    return PerformanceFigures(
        period=period,
        previous=before,
        revenue=accountant_figures(conn=conn, ctx=ctx, period=period),
        revenue_before=accountant_figures(conn=conn, ctx=ctx, period=before),
        top_hsc=top_hsc_codes(conn=conn, ctx=ctx, period=period, before=before),
        activity=claim_activity(conn=conn, ctx=ctx, period=period),
        activity_before=claim_activity(conn=conn, ctx=ctx, period=before),
        rejection_codes=top_rejection_codes(conn=conn, ctx=ctx, period=period, before=before),
        coach=coach_summary(conn=conn, ctx=ctx, period=period),
        coach_before=coach_summary(conn=conn, ctx=ctx, period=before),
        aging=claim_aging(conn=conn, ctx=ctx, as_of=period.end),
        aging_before=claim_aging(conn=conn, ctx=ctx, as_of=before.end),
    )


# --- RRNP quarterly (RRNP_QUARTERLY) -----------------------------------------------


@dataclass(frozen=True, slots=True)
class LocationMonth:
    """The RRNP premium one location earned in one month."""

    location: str
    month: date
    claims: int
    premium: Decimal


@dataclass(frozen=True, slots=True)
class RrnpFigures:
    """The rural premium (RRNP) of the period's paid claims, by payment date."""

    period: Period
    premium: Decimal
    #: Paid claims that carry a premium.
    claims: int
    #: Largest first (ties by name); ``Share.revenue`` is the premium.
    by_location: tuple[Share, ...]
    #: Every calendar month of the period, with zeros where nothing was earned.
    by_month: tuple[MonthShare, ...]
    by_location_month: tuple[LocationMonth, ...]


def rrnp_figures(*, conn: Connection, ctx: AuthContext, period: Period) -> RrnpFigures:
    """Σ RRNP premium of the period's paid claims, per location, per month and in total."""
    earned = (
        select(
            Claim.location,
            _month_of(Claim.payment_date).label("month"),
            Claim.rrnp_premium,
        )
        .where(_is_paid_in(ctx, period), Claim.rrnp_premium > 0)
        .subquery("earned")
    )
    e = earned.c
    rows = conn.execute(
        select(
            func.grouping(e.location).label("by_location"),
            func.grouping(e.month).label("by_month"),
            e.location,
            e.month,
            func.count().label("claims"),
            func.coalesce(func.sum(e.rrnp_premium), _ZERO).label("premium"),
        ).group_by(
            func.grouping_sets(
                tuple_(), tuple_(e.location), tuple_(e.month), tuple_(e.location, e.month)
            )
        )
    ).all()
    total: Any = None
    by_location: list[Share] = []
    by_month: dict[date, MonthShare] = {}
    cells: list[LocationMonth] = []
    for row in rows:
        if row.by_location == 0 and row.by_month == 0:
            cells.append(LocationMonth(row.location, row.month, row.claims, row.premium))
        elif row.by_location == 0:
            by_location.append(Share(row.location, row.claims, row.premium))
        elif row.by_month == 0:
            by_month[row.month] = MonthShare(row.month, row.claims, row.premium)
        else:
            total = row
    if total is None:  # the empty grouping set always yields its row
        raise RuntimeError("the RRNP statement returned no total")
    return RrnpFigures(
        period=period,
        premium=total.premium,
        claims=total.claims,
        by_location=_largest_first(by_location),
        by_month=tuple(by_month.get(m, MonthShare(m, 0, _ZERO)) for m in period.months()),
        by_location_month=tuple(sorted(cells, key=lambda c: (c.location, c.month))),
    )


__all__ = [
    "AHCIP_SUBMISSION_DAYS",
    "DEADLINE_LOOKAHEAD_DAYS",
    "DEADLINE_ROWS",
    "FETCH_ROWS",
    "PAID_STATES",
    "TOP_CODES",
    "UNPAID_STATES",
    "UNSUBMITTED_STATES",
    "AccountantFigures",
    "Aging",
    "AgingShare",
    "ClaimActivity",
    "CoachSummary",
    "CodeShare",
    "Compared",
    "DeadlineClaim",
    "Deadlines",
    "DetailLine",
    "DetailReader",
    "DetailTotals",
    "DueTier",
    "HscShare",
    "LocationMonth",
    "MonthShare",
    "PaidClaim",
    "PerformanceFigures",
    "Period",
    "Physician",
    "Rejection",
    "RejectionCodeShare",
    "RejectionReader",
    "RejectionTotals",
    "RrnpFigures",
    "Share",
    "TierRule",
    "WcbDue",
    "WcbDueReader",
    "WcbTimingTotals",
    "WeeklyFigures",
    "accountant_figures",
    "approaching_deadlines",
    "claim_activity",
    "claim_aging",
    "coach_summary",
    "compare",
    "detail_lines",
    "detail_query",
    "edmonton_days",
    "has_rejections",
    "paid_claims",
    "paid_claims_query",
    "performance_figures",
    "physician",
    "previous",
    "rate",
    "rejections",
    "rejections_query",
    "rrnp_figures",
    "tier_rules",
    "tiers_ending",
    "top_hsc_codes",
    "top_rejection_codes",
    "wcb_as_of",
    "wcb_due",
    "wcb_due_query",
    "weekly_figures",
]
