"""The accountant PDF summary: the period's revenue in one to a few pages.

Exactly the figures of the specification, every one from
:func:`figures.accountant_figures` (one SQL statement): total revenue, claim
count, AHCIP and WCB revenue, revenue by BA number, by location and by month
(a bar beside each month), the RRNP premium total, adjustments, the
written-off total and the GST note. The totals shown under each breakdown
are the total revenue again, not a sum made here.
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from functools import partial
from typing import TYPE_CHECKING, Final

from reportlab.lib.pagesizes import LETTER
from reportlab.pdfgen.canvas import Canvas
from sqlalchemy import Connection

from meritum_api.domains.analytics import figures
from meritum_api.domains.analytics.generators.layout import (
    Item,
    notice,
    render,
    section_heading,
)
from meritum_api.domains.analytics.generators.pdf import (
    ACCENT,
    BOLD,
    INK,
    MUTED,
    REGULAR,
    RULE,
    Masthead,
    Page,
    claims,
    count,
    money,
    month_name,
    rule,
    wrap,
)

if TYPE_CHECKING:  # the package imports this module to register it: no cycle at run time
    from meritum_api.domains.analytics.generators import GenerationRequest

PAGE: Final = Page(size=LETTER, margin=48)
TITLE: Final = "Accountant summary"
SUBJECT: Final = "Revenue from AHCIP and WCB claims paid in the period (cash basis)"
GST_NOTE: Final = "Physician services billed to AHCIP and WCB are exempt from GST."
EMPTY: Final = "No paid claims in this period"

SIZE: Final = 9
LINE: Final = 11.5
ROW_PAD: Final = 3
AMOUNT_WIDTH: Final = 96
BAR_WIDTH: Final = 250


def _row_height(lines: int) -> float:
    return lines * LINE + 2 * ROW_PAD


def _columns(key: str, value: str, *, continued: bool = False) -> Item:
    def draw(canvas: Canvas, top: float) -> None:
        y = top - 9
        canvas.setFillColor(MUTED)
        canvas.setFont(BOLD, 7.5)
        canvas.drawString(PAGE.left, y, f"{key} (continued)" if continued else key)
        canvas.drawRightString(PAGE.right, y, value)
        rule(canvas, PAGE.left, PAGE.right, y - 4, weight=0.5, color=RULE)

    return Item(height=15, draw=draw)


def _line(
    label: str, amount: str, *, note: str = "", bold: bool = False, bar: float | None = None
) -> Item:
    """A label (wrapped), an optional note or bar, and an amount at the right edge."""
    room = PAGE.width - AMOUNT_WIDTH - (BAR_WIDTH + 12 if bar is not None or note else 0)
    labels = wrap(label, BOLD if bold else REGULAR, SIZE, room)
    notes = wrap(note, REGULAR, 7.5, BAR_WIDTH) if note else []
    height = _row_height(max(len(labels), len(notes), 1))

    def draw(canvas: Canvas, top: float) -> None:
        y = top - ROW_PAD - SIZE
        if bold:
            rule(canvas, PAGE.left, PAGE.right, top, weight=0.6, color=INK)
        canvas.setFillColor(INK)
        canvas.setFont(BOLD if bold else REGULAR, SIZE)
        for index, text in enumerate(labels):
            canvas.drawString(PAGE.left, y - index * LINE, text)
        canvas.drawRightString(PAGE.right, y, amount)
        middle = PAGE.right - AMOUNT_WIDTH - BAR_WIDTH
        if bar is not None and bar > 0:
            canvas.setFillColor(ACCENT)
            canvas.rect(middle, y - 1, BAR_WIDTH * bar, SIZE - 1, stroke=0, fill=1)
        if notes:
            canvas.setFillColor(MUTED)
            canvas.setFont(REGULAR, 7.5)
            for index, text in enumerate(notes):
                canvas.drawString(middle, y - index * LINE, text)

    return Item(height=height, draw=draw)


def _paragraph(text: str) -> Item:
    lines = wrap(text, REGULAR, SIZE, PAGE.width)

    def draw(canvas: Canvas, top: float) -> None:
        canvas.setFillColor(INK)
        canvas.setFont(REGULAR, SIZE)
        for index, line in enumerate(lines):
            canvas.drawString(PAGE.left, top - 16 - index * LINE, line)

    return Item(height=20 + len(lines) * LINE, draw=draw)


def _section(
    title: str,
    key: str,
    rows: list[Item],
    total: Decimal | None = None,
    value: str = "Revenue (Σ assessed fee)",
) -> Iterator[Item]:
    """A heading, column headings and rows; the headings repeat when the rows turn a page."""
    columns = _columns(key, value)
    continued = _columns(key, value, continued=True)
    first = rows[0].height if rows else 0
    yield section_heading(PAGE, title, keep=columns.height + first)
    yield Item(height=columns.height, draw=columns.draw, keep=first)
    for row in rows:
        yield Item(height=row.height, draw=row.draw, header=continued)
    if total is not None:
        line = _line("Total revenue", money(total), bold=True)
        yield Item(height=line.height, draw=line.draw, header=continued)


def _rrnp(f: figures.AccountantFigures) -> str:
    if f.rrnp_claims == 0:
        return "not applicable: no claim in the period carries an RRNP premium"
    return f"{claims(f.rrnp_claims)} with a rural premium"


def items(f: figures.AccountantFigures) -> Iterator[Item]:
    """Everything the summary shows, in order."""
    if f.claims == 0:
        yield notice(PAGE, EMPTY, "No claim of this physician has a payment date in the period.")
    key_figures = [
        _line("Total revenue", money(f.revenue), note="Σ assessed fee of paid claims", bold=True),
        _line("Claim count", count(f.claims), note="claims paid (PAID or ADJUSTED)"),
        _line("AHCIP revenue", money(f.ahcip_revenue)),
        _line("WCB revenue", money(f.wcb_revenue)),
        _line("RRNP premium total", money(f.rrnp_premium), note=_rrnp(f)),
        _line(
            "Adjustments",
            money(f.adjustments),
            note=f"{claims(f.adjusted_claims)} adjusted: Σ (assessed − submitted)",
        ),
        _line(
            "Written off",
            money(f.written_off),
            note=f"{claims(f.written_off_claims)} served in the period and written off: "
            "Σ submitted fee (they have no payment date)",
        ),
    ]
    yield from _section("Totals", "Figure", key_figures, value="Amount")
    if f.claims:
        yield from _section(
            "Revenue by BA number",
            "BA number",
            [_line(share.key, money(share.revenue)) for share in f.by_ba],
            f.revenue,
        )
        yield from _section(
            "Revenue by location",
            "Location",
            [_line(share.key, money(share.revenue)) for share in f.by_location],
            f.revenue,
        )
    top = max((m.revenue for m in f.by_month), default=Decimal(0))
    yield from _section(
        "Revenue by month",
        "Month",
        [
            # The bar's length is drawing geometry: a float is fine there.
            _line(month_name(m.month), money(m.revenue), bar=float(m.revenue / top) if top else 0)
            for m in f.by_month
        ],
        f.revenue,
    )
    yield _paragraph(GST_NOTE)


def generate(conn: Connection, request: GenerationRequest) -> Iterator[bytes]:
    """The summary's PDF, streamed in chunks."""
    period, ctx = request.period(), request.scope()
    physician = figures.physician(conn=conn, ctx=ctx)
    f = figures.accountant_figures(conn=conn, ctx=ctx, period=period)
    masthead = Masthead(
        title=TITLE,
        physician=physician.legal_name,
        ba_numbers=f.ba_numbers,
        period=period,
        created_at=request.created_at,
        report_id=request.report_id,
    )
    yield from render(page=PAGE, masthead=masthead, subject=SUBJECT, items=partial(items, f))
