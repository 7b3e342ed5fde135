"""The figures of the accountant reports: one module, so the CSV and both PDFs cannot disagree.

Basis: a claim belongs to a period by its **payment date** (cash basis, what
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
from datetime import date
from decimal import Decimal
from typing import Any, Final, NamedTuple, cast

import psycopg
from sqlalchemy import (
    ColumnElement,
    Connection,
    Date,
    DateTime,
    Select,
    and_,
    func,
    select,
    tuple_,
)
from sqlalchemy import cast as sql_cast
from sqlalchemy.orm import InstrumentedAttribute, aliased

from meritum_api.context import AuthContext
from meritum_shared.constants.claims import ClaimState, ClaimType
from meritum_shared.schemas.db import Claim, Provider

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


__all__ = [
    "FETCH_ROWS",
    "PAID_STATES",
    "AccountantFigures",
    "DetailLine",
    "DetailReader",
    "DetailTotals",
    "MonthShare",
    "PaidClaim",
    "Period",
    "Physician",
    "Share",
    "accountant_figures",
    "detail_lines",
    "detail_query",
    "paid_claims",
    "paid_claims_query",
    "physician",
]
