"""The weekly summary: a Monday-to-Sunday week of claims beside the week before.

Every figure comes from :func:`figures.weekly_figures`: the claims created,
submitted, assessed, paid and rejected that week (each counted on the
Edmonton day of its event), the revenue paid that week (by payment date),
the rejection rate, and the AHCIP claims still unsubmitted whose deadline
falls in the 14 days after the week, most urgent first. No patient is
named: a claim is shown by its reference, service and place.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from functools import partial
from typing import TYPE_CHECKING, Final

from reportlab.lib.pagesizes import LETTER
from sqlalchemy import Connection

from meritum_api.domains.analytics import figures
from meritum_api.domains.analytics.generators.layout import Item, notice, render
from meritum_api.domains.analytics.generators.pdf import Page, count, money
from meritum_api.domains.analytics.generators.scheduled import (
    Column,
    ScheduledMasthead,
    Table,
    days,
    paragraph,
    percent,
)

if TYPE_CHECKING:  # the package imports this module to register it: no cycle at run time
    from meritum_api.domains.analytics.generators import GenerationRequest

PAGE: Final = Page(size=LETTER, margin=48)
TITLE: Final = "Weekly summary"
SUBJECT: Final = "Claims activity of one week beside the week before"
BASIS: Final = (
    "events dated in the week, America/Edmonton days: claims created (creation time) and "
    "state changes (claim history); revenue by payment date"
)
SHORT_BASIS: Final = "events by Edmonton day, revenue by payment date"
EMPTY: Final = "No claim activity in this week"

FIGURES: Final = (
    Column("Figure"),
    Column("This week", 110, True),
    Column("Week before", 110, True),
)
DEADLINES: Final = (
    Column("Deadline", 62),
    Column("Days left", 44, True),
    Column("Date of service", 70),
    Column("HSC code", 50),
    Column("Location"),
    Column("State", 52),
    Column("Claim", 56),
    Column("Submitted fee", 70, True),
)


def _activity_rows(f: figures.WeeklyFigures) -> list[list[str]]:
    now, then = f.activity, f.activity_before
    return [
        ["Claims created", count(now.created), count(then.created)],
        ["Claims submitted", count(now.submitted), count(then.submitted)],
        ["Claims assessed", count(now.assessed), count(then.assessed)],
        ["Claims paid (PAID or ADJUSTED)", count(now.paid), count(then.paid)],
        ["Claims rejected", count(now.rejected), count(then.rejected)],
        ["Revenue paid (Σ assessed fee)", money(now.revenue), money(then.revenue)],
        ["Rejection rate", percent(now.rejection_rate), percent(then.rejection_rate)],
        [
            "Claims approaching their AHCIP deadline",
            count(f.deadlines.total),
            count(f.deadlines_before.total),
        ],
        [
            "Submitted fees at stake",
            money(f.deadlines.at_stake),
            money(f.deadlines_before.at_stake),
        ],
    ]


def _is_empty(f: figures.WeeklyFigures) -> bool:
    a = f.activity
    quiet = not (a.created or a.submitted or a.assessed or a.paid or a.rejected or a.paid_claims)
    return quiet and f.deadlines.total == 0


def items(f: figures.WeeklyFigures) -> Iterator[Item]:
    """Everything the summary shows, in order."""
    if _is_empty(f):
        yield notice(
            PAGE, EMPTY, "No claim was created, submitted, assessed, paid or rejected this week."
        )
    yield from Table(PAGE, FIGURES).items(
        "The week in figures",
        _activity_rows(f),
        intro=(
            "Rejection rate: rejected ÷ assessed outcomes (assessed + paid + adjusted + "
            f"rejected), {count(f.activity.rejected)} ÷ {count(f.activity.outcomes)} this week. "
            f"The week before: {days(f.previous)}."
        ),
    )
    first = f.period.end + timedelta(days=1)
    last = f.period.end + timedelta(days=figures.DEADLINE_LOOKAHEAD_DAYS)
    shown = f.deadlines.claims
    rows = [
        [
            claim.deadline.isoformat(),
            count(claim.days_left),
            claim.date_of_service.isoformat(),
            claim.hsc_code,
            claim.location,
            claim.state.value,
            claim.claim_id.hex[:8],
            money(claim.submitted_fee),
        ]
        for claim in shown
    ]
    yield from Table(PAGE, DEADLINES).items(
        "Claims approaching their AHCIP submission deadline",
        rows,
        intro=(
            f"AHCIP claims not yet submitted at the end of the week (DRAFT or QUEUED) whose "
            f"deadline, {figures.AHCIP_SUBMISSION_DAYS} days after the date of service, falls "
            f"between {first.isoformat()} and {last.isoformat()}; most urgent first. Days left "
            "are counted from the week's last day."
        ),
        empty="No AHCIP claim approaches its submission deadline in these 14 days.",
    )
    if f.deadlines.total > len(shown):
        more = f.deadlines.total - len(shown)
        yield paragraph(
            PAGE,
            f"The {count(len(shown))} most urgent are listed; {count(more)} more claims approach "
            "their deadline in the same days.",
        )


def generate(conn: Connection, request: GenerationRequest) -> Iterator[bytes]:
    """The weekly summary's PDF, streamed in chunks."""
    period, ctx = request.period(), request.scope()
    physician = figures.physician(conn=conn, ctx=ctx)
    f = figures.weekly_figures(conn=conn, ctx=ctx, period=period)
    masthead = ScheduledMasthead(
        title=TITLE,
        physician=physician.legal_name,
        ba_numbers=(),
        period=period,
        created_at=request.created_at,
        report_id=request.report_id,
        basis=BASIS,
        short_basis=SHORT_BASIS,
        compared_with=f"the week before, {days(f.previous)}",
        kind="weekly summary",
    )
    yield from render(page=PAGE, masthead=masthead, subject=SUBJECT, items=partial(items, f))
