"""The RRNP quarterly report: the rural premium a quarter's paid claims earned.

Every figure comes from :func:`figures.rrnp_figures` (one statement): the
Σ RRNP premium of the claims paid in the period (by payment date, the
accountant's basis), per location with a column per month, per month, and
in total.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from decimal import Decimal
from functools import partial
from typing import TYPE_CHECKING, Final

from reportlab.lib.pagesizes import LETTER
from sqlalchemy import Connection

from meritum_api.domains.analytics import figures
from meritum_api.domains.analytics.generators.layout import Item, notice, render
from meritum_api.domains.analytics.generators.pdf import Page, count, money, month_name
from meritum_api.domains.analytics.generators.scheduled import (
    Column,
    ScheduledMasthead,
    Table,
    paragraph,
)

if TYPE_CHECKING:  # the package imports this module to register it: no cycle at run time
    from meritum_api.domains.analytics.generators import GenerationRequest

PAGE: Final = Page(size=LETTER, margin=48)
TITLE: Final = "RRNP quarterly"
SUBJECT: Final = "Rural and Remote Northern Program premium earned by paid claims"
BASIS: Final = (
    "RRNP premium of claims paid in the period (PAID or ADJUSTED), by payment date (cash basis)"
)
SHORT_BASIS: Final = "RRNP premium of claims paid, by payment date"
EMPTY: Final = "No RRNP premium in this period"
#: Up to this many months, the location table has a column per month.
MONTH_COLUMNS: Final = 3
ZERO: Final = Decimal("0.00")


def _short_month(month: date) -> str:
    return month_name(month)[:3] + f" {month.year}"


def items(f: figures.RrnpFigures) -> Iterator[Item]:
    """Everything the report shows, in order."""
    if f.claims == 0:
        yield notice(PAGE, EMPTY, "No claim paid in the period carries a Rural and Remote premium.")
    yield from Table(PAGE, [Column("Figure"), Column("Amount", 120, True)]).items(
        "RRNP premium earned",
        [["Paid claims with an RRNP premium", count(f.claims)]],
        total=["Total RRNP premium", money(f.premium)],
    )
    months = [m.month for m in f.by_month]
    by_cell = {(c.location, c.month): c.premium for c in f.by_location_month}
    split = len(months) <= MONTH_COLUMNS
    columns = [Column("Location")]
    if split:
        columns += [Column(_short_month(m), 76, True) for m in months]
    columns += [Column("Claims", 48, True), Column("Total", 82, True)]
    rows = []
    for share in f.by_location:
        cells = [share.key]
        if split:
            cells += [money(by_cell.get((share.key, m), ZERO)) for m in months]
        rows.append([*cells, count(share.claims), money(share.revenue)])
    total = ["Total"]
    if split:
        total += [money(m.revenue) for m in f.by_month]
    yield from Table(PAGE, columns).items(
        "RRNP premium by location",
        rows,
        total=[*total, count(f.claims), money(f.premium)] if rows else None,
        empty="No location earned an RRNP premium in this period.",
    )
    yield from Table(
        PAGE, [Column("Month"), Column("Claims", 70, True), Column("RRNP premium", 110, True)]
    ).items(
        "RRNP premium by month",
        [[month_name(m.month), count(m.claims), money(m.revenue)] for m in f.by_month],
        total=["Total", count(f.claims), money(f.premium)],
    )
    yield paragraph(
        PAGE,
        "The premium is the one recorded on each paid claim; urban locations, which earn "
        "none, are not listed.",
        muted=True,
    )


def generate(conn: Connection, request: GenerationRequest) -> Iterator[bytes]:
    """The RRNP quarterly PDF, streamed in chunks."""
    period, ctx = request.period(), request.scope()
    physician = figures.physician(conn=conn, ctx=ctx)
    f = figures.rrnp_figures(conn=conn, ctx=ctx, period=period)
    masthead = ScheduledMasthead(
        title=TITLE,
        physician=physician.legal_name,
        ba_numbers=(),
        period=period,
        created_at=request.created_at,
        report_id=request.report_id,
        basis=BASIS,
        short_basis=SHORT_BASIS,
        compared_with=None,
        kind="RRNP quarterly, rural premium",
    )
    yield from render(page=PAGE, masthead=masthead, subject=SUBJECT, items=partial(items, f))
