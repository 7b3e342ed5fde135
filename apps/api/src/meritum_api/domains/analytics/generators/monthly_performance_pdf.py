"""The monthly performance report: a month (or a quarter) of billing beside the one before.

Every figure comes from :func:`figures.performance_figures`: revenue by
claim type, BA number, location and the ten HSC codes that earned most (by
payment date, the accountant summary's own sums); the rejection rate and
the most frequent explanatory codes with their description (rejections
counted on their Edmonton day); the AI Coach's suggestions of the period;
and the aging of the claims still unpaid when the period ends, by days
since their date of service.
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import partial
from typing import TYPE_CHECKING, Final

from reportlab.lib.pagesizes import LETTER
from sqlalchemy import Connection

from meritum_api.calendar import is_quarter, whole_months
from meritum_api.domains.analytics import figures
from meritum_api.domains.analytics.generators.layout import Item, notice, render
from meritum_api.domains.analytics.generators.pdf import Page, count, money
from meritum_api.domains.analytics.generators.scheduled import (
    Column,
    ScheduledMasthead,
    Table,
    days,
    percent,
)

if TYPE_CHECKING:  # the package imports this module to register it: no cycle at run time
    from meritum_api.domains.analytics.generators import GenerationRequest

PAGE: Final = Page(size=LETTER, margin=48)
TITLE: Final = "Monthly performance"
SUBJECT: Final = "Revenue, rejections, AI Coach and claim aging beside the previous period"
BASIS: Final = (
    "revenue by payment date; rejections and AI Coach suggestions by their America/Edmonton "
    "day; aging of the claims unpaid (SUBMITTED or ASSESSED) at the end of the period, by "
    "days since the date of service"
)
SHORT_BASIS: Final = "revenue by payment date, events by Edmonton day"
EMPTY: Final = "No claim activity in this period"


def _names(period: figures.Period) -> tuple[str, str, str]:
    """What the period is called: its column, the previous one's, and the header's phrase."""
    if whole_months(period.start, period.end) == 1:
        return "This month", "Month before", "the month before"
    if is_quarter(period.start, period.end):
        return "This quarter", "Quarter before", "the quarter before"
    return "This period", "Period before", "the period just before"


def _pair(now: str, before: str) -> list[Column]:
    return [Column(now, 100, True), Column(before, 100, True)]


def items(f: figures.PerformanceFigures) -> Iterator[Item]:
    """Everything the report shows, in order."""
    now_name, before_name, _ = _names(f.period)
    pair = _pair(now_name, before_name)
    r, rb = f.revenue, f.revenue_before
    a, ab = f.activity, f.activity_before
    if r.claims == 0 and a.outcomes == 0 and f.coach.made == 0 and f.aging.claims == 0:
        yield notice(
            PAGE, EMPTY, "No claim was paid, assessed or rejected, and no claim is unpaid."
        )
        # Nothing to break down: the headline figures alone, beside the period before.
        yield from Table(PAGE, [Column("Figure"), *pair]).items(
            "Key figures",
            [
                ["Total revenue", money(r.revenue), money(rb.revenue)],
                ["Rejection rate", percent(a.rejection_rate), percent(ab.rejection_rate)],
                ["AI Coach suggestions made", count(f.coach.made), count(f.coach_before.made)],
                ["Unpaid claims", count(f.aging.claims), count(f.aging_before.claims)],
            ],
            intro=f"{before_name}: {days(f.previous)}.",
        )
        return
    yield from Table(PAGE, [Column("Revenue (Σ assessed fee)"), *pair]).items(
        "Revenue by claim type",
        [
            ["AHCIP", money(r.ahcip_revenue), money(rb.ahcip_revenue)],
            ["WCB", money(r.wcb_revenue), money(rb.wcb_revenue)],
            ["Paid claims", count(r.claims), count(rb.claims)],
        ],
        total=["Total revenue", money(r.revenue), money(rb.revenue)],
        intro=f"{before_name}: {days(f.previous)}.",
    )
    for title, key, now_shares, before_shares in (
        ("Revenue by BA number", "BA number", r.by_ba, rb.by_ba),
        ("Revenue by location", "Location", r.by_location, rb.by_location),
    ):
        rows = [
            [c.key, money(c.revenue), money(c.revenue_before)]
            for c in figures.compare(now_shares, before_shares)
        ]
        yield from Table(PAGE, [Column(key), *pair]).items(
            title,
            rows,
            total=["Total revenue", money(r.revenue), money(rb.revenue)] if rows else None,
            empty="No paid claims in either period.",
        )
    yield from Table(
        PAGE,
        [
            Column("HSC code"),
            Column(f"Claims, {now_name.lower()}", 80, True),
            Column(now_name, 90, True),
            Column(f"Claims, {before_name.lower()}", 80, True),
            Column(before_name, 90, True),
        ],
    ).items(
        f"Top {figures.TOP_CODES} HSC codes by revenue",
        [
            [
                h.code,
                count(h.claims),
                money(h.revenue),
                count(h.claims_before),
                money(h.revenue_before),
            ]
            for h in f.top_hsc
        ],
        empty="No paid claims in this period.",
    )
    yield from Table(PAGE, [Column("Rejections"), *pair]).items(
        "Rejection analysis",
        [
            ["Assessed outcomes", count(a.outcomes), count(ab.outcomes)],
            ["Rejected", count(a.rejected), count(ab.rejected)],
            ["Rejection rate", percent(a.rejection_rate), percent(ab.rejection_rate)],
        ],
        intro=(
            "Rejection rate: rejected ÷ assessed outcomes (assessed + paid + adjusted + "
            "rejected), each counted on the day the claim entered that state."
        ),
    )
    yield from Table(
        PAGE,
        [
            Column("Code", 54),
            Column("Description"),
            Column(now_name, 80, True),
            Column(before_name, 80, True),
        ],
    ).items(
        f"Top {figures.TOP_CODES} rejection codes",
        [
            [
                code.code or "none",
                code.description or "not in the reference table of codes",
                count(code.rejections),
                count(code.rejections_before),
            ]
            for code in f.rejection_codes
        ],
        empty="No claim was rejected in this period.",
    )
    c, cb = f.coach, f.coach_before
    yield from Table(PAGE, [Column("AI Coach suggestions"), *pair]).items(
        "AI Coach summary",
        [
            ["Suggestions made", count(c.made), count(cb.made)],
            ["Accepted", count(c.accepted), count(cb.accepted)],
            ["Dismissed", count(c.dismissed), count(cb.dismissed)],
            ["Still pending", count(c.pending), count(cb.pending)],
            ["Revenue recovered by accepted ones", money(c.recovered), money(cb.recovered)],
        ],
        intro="Suggestions made in the period, by what the physician has done with them.",
    )
    rows = [
        [
            f"{now.bracket.label} days",
            count(now.claims),
            money(now.amount),
            count(then.claims),
            money(then.amount),
        ]
        for now, then in zip(f.aging.brackets, f.aging_before.brackets, strict=True)
    ]
    yield from Table(
        PAGE,
        [
            Column("Days since service"),
            Column(f"Claims at {f.aging.as_of.isoformat()}", 86, True),
            Column("Submitted fees", 86, True),
            Column(f"Claims at {f.aging_before.as_of.isoformat()}", 86, True),
            Column("Submitted fees", 86, True),
        ],
    ).items(
        "Claim aging of unpaid claims",
        rows,
        total=[
            "Total unpaid",
            count(f.aging.claims),
            money(f.aging.amount),
            count(f.aging_before.claims),
            money(f.aging_before.amount),
        ],
        intro=(
            "Claims submitted and neither paid nor rejected at the end of each period's last "
            "day (SUBMITTED or ASSESSED then), by days from their date of service to that day."
        ),
    )


def generate(conn: Connection, request: GenerationRequest) -> Iterator[bytes]:
    """The monthly performance PDF, streamed in chunks."""
    period, ctx = request.period(), request.scope()
    physician = figures.physician(conn=conn, ctx=ctx)
    f = figures.performance_figures(conn=conn, ctx=ctx, period=period)
    masthead = ScheduledMasthead(
        title=TITLE,
        physician=physician.legal_name,
        ba_numbers=f.revenue.ba_numbers,
        period=period,
        created_at=request.created_at,
        report_id=request.report_id,
        basis=BASIS,
        short_basis=SHORT_BASIS,
        compared_with=f"{_names(period)[2]}, {days(f.previous)}",
        kind="monthly performance",
    )
    yield from render(page=PAGE, masthead=masthead, subject=SUBJECT, items=partial(items, f))
