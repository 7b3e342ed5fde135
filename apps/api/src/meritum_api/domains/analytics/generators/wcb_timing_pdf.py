"""WCB timing: the WCB reports to send before their fee tier ends, most urgent first.

The window is the report's period (today to today + 7 days). A WCB claim not
yet sent (DRAFT or QUEUED) is listed when the tier it would be paid at if
sent now ends within the window: its WCB claim number (never a PHN or a
patient name), form, date of service, the deadline in Edmonton time, what the
tier pays and what is at stake (how much less the next tier pays). Tier
deadlines are the business-calendar rule of each form in ``wcb_timing_tiers``;
every figure comes from :func:`figures.wcb_due`, one statement read from a
scrollable cursor.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from functools import partial
from typing import TYPE_CHECKING, Final

from reportlab.lib.pagesizes import LETTER
from reportlab.pdfgen.canvas import Canvas
from sqlalchemy import Connection

from meritum_api.domains.analytics import figures
from meritum_api.domains.analytics.generators.layout import (
    Column,
    Item,
    column_edges,
    notice,
    render,
    section_heading,
    summary_figure,
)
from meritum_api.domains.analytics.generators.pdf import (
    BAND,
    BOLD,
    INK,
    MUTED,
    REGULAR,
    RULE,
    Masthead,
    Page,
    alberta_time,
    claims,
    count,
    money,
    rule,
    wrap,
)
from meritum_shared.constants.claims import WcbFeeTier

if TYPE_CHECKING:  # the package imports this module to register it: no cycle at run time
    from meritum_api.domains.analytics.generators import GenerationRequest

PAGE: Final = Page(size=LETTER, margin=48)
TITLE: Final = "WCB timing"
SUBJECT: Final = "WCB reports not yet sent whose fee tier ends in the window, most urgent first"
EMPTY: Final = "No WCB fee tier ends in this window"
NOT_CONFIGURED: Final = "not configured"
LEGEND: Final = (
    "A fee tier ends at its form's deadline time on the stated business day after the exam "
    "(Alberta business days: weekends and general holidays excluded); a report WCB receives "
    "later is paid at the next tier. At stake: what the fee falls by when the deadline is "
    "missed (this tier's fee less the next tier's). Only claims not yet sent (DRAFT or QUEUED) "
    "are listed: once submitted, a report's tier is settled."
)
TIER_NAMES: Final = {
    WcbFeeTier.SAME_DAY: "Same day",
    WcbFeeTier.ON_TIME: "On time",
    WcbFeeTier.LATE: "Late",
}

SIZE: Final = 7.5
LINE: Final = 9.5
PAD: Final = 3
HEAD_SIZE: Final = 7
GUTTER: Final = 6


#: The table's columns, sized for the portrait page (516 pt).
COLUMNS: Final = (
    Column("Deadline (Edmonton)", 92),
    Column("Tier", 50),
    Column("WCB claim", 62),
    Column("Form", 44),
    Column("Date of service", 62),
    Column("State", 56),
    Column("Tier fee", 70, right=True),
    Column("At stake", 80, right=True),
)
_X: Final = column_edges(PAGE, COLUMNS)


def _cell_x(index: int) -> float:
    if COLUMNS[index].right:
        return _X[index + 1] - (0 if index == len(COLUMNS) - 1 else 2 * GUTTER)
    return _X[index]


def _room(index: int) -> float:
    return COLUMNS[index].width - (2 * GUTTER if COLUMNS[index].right else GUTTER)


def _paragraph(text: str) -> Item:
    lines = wrap(text, REGULAR, SIZE, PAGE.width)

    def draw(canvas: Canvas, top: float) -> None:
        canvas.setFillColor(MUTED)
        canvas.setFont(REGULAR, SIZE)
        for index, line in enumerate(lines):
            canvas.drawString(PAGE.left, top - 16 - index * LINE, line)

    return Item(height=20 + len(lines) * LINE, draw=draw)


def _table_header() -> Item:
    headings = [wrap(c.heading, BOLD, HEAD_SIZE, _room(i)) for i, c in enumerate(COLUMNS)]
    height = max(len(h) for h in headings) * 8 + 2 * PAD + 3

    def draw(canvas: Canvas, top: float) -> None:
        canvas.setFillColor(BAND)
        canvas.rect(PAGE.left, top - height, PAGE.width, height, stroke=0, fill=1)
        canvas.setFillColor(MUTED)
        canvas.setFont(BOLD, HEAD_SIZE)
        for index, heading in enumerate(headings):
            for offset, text in enumerate(reversed(heading)):
                y = top - height + PAD + 2 + offset * 8
                if COLUMNS[index].right:
                    canvas.drawRightString(_cell_x(index), y, text)
                else:
                    canvas.drawString(_cell_x(index), y, text)

    return Item(height=height, draw=draw)


def _due_item(line: figures.WcbDue, header: Item) -> Item:
    cells = (
        alberta_time(line.deadline),
        TIER_NAMES[line.tier],
        line.wcb_claim_number,
        line.form_type,
        line.date_of_service.isoformat(),
        line.state.value,
        NOT_CONFIGURED if line.tier_fee is None else money(line.tier_fee),
        NOT_CONFIGURED if line.at_stake is None else money(line.at_stake),
    )
    height = LINE + 2 * PAD

    def draw(canvas: Canvas, top: float) -> None:
        y = top - PAD - SIZE
        canvas.setFillColor(INK)
        for index, value in enumerate(cells):
            canvas.setFont(BOLD if index in (0, 7) else REGULAR, SIZE)
            if COLUMNS[index].right:
                canvas.drawRightString(_cell_x(index), y, value)
            else:
                canvas.drawString(_cell_x(index), y, value)
        rule(canvas, PAGE.left, PAGE.right, top - height, weight=0.3, color=RULE)

    return Item(height=height, draw=draw, header=header)


def _total_item(totals: figures.WcbTimingTotals, header: Item) -> Item:
    height = LINE + 2 * PAD + 4

    def draw(canvas: Canvas, top: float) -> None:
        canvas.setFillColor(BAND)
        canvas.rect(PAGE.left, top - height, PAGE.width, height, stroke=0, fill=1)
        rule(canvas, PAGE.left, PAGE.right, top, weight=0.9, color=INK)
        y = top - SIZE - PAD - 1
        canvas.setFillColor(INK)
        canvas.setFont(BOLD, SIZE)
        canvas.drawString(_cell_x(0), y, f"Total at stake, {claims(totals.claims)}")
        canvas.drawRightString(_cell_x(len(COLUMNS) - 1), y, money(totals.at_stake))

    return Item(height=height, draw=draw, header=header)


def items(reader: figures.WcbDueReader, totals: figures.WcbTimingTotals) -> Iterator[Item]:
    """Everything the report shows, in order."""
    if totals.claims == 0:
        yield notice(
            PAGE, EMPTY, "No WCB claim of this physician waits to be sent with a tier ending then."
        )
        yield _paragraph(LEGEND)
        return
    yield section_heading(PAGE, "Summary", keep=17)
    yield summary_figure(
        PAGE, "Claims", count(totals.claims), "WCB claims not yet sent, tier ending in the window"
    )
    yield summary_figure(
        PAGE, "Fees at stake", money(totals.at_stake), "\u03a3 at stake of the claims below"
    )
    if totals.unpriced:
        yield summary_figure(
            PAGE,
            "Fees not configured",
            count(totals.unpriced),
            "claims on forms without fees in the tier table: their stake is not counted",
        )
    table = _table_header()
    first = True
    for line in reader.lines():
        item = _due_item(line, table)
        if first:
            yield section_heading(PAGE, "Most urgent first", keep=table.height + item.height)
            yield Item(height=table.height, draw=table.draw, keep=item.height)
            first = False
        yield item
    yield _total_item(totals, table)
    yield _paragraph(LEGEND)


def _basis() -> str:
    return "by tier deadline: unsent WCB claims whose current fee tier ends in the period"


def generate(conn: Connection, request: GenerationRequest) -> Iterator[bytes]:
    """The report's PDF, streamed in chunks."""
    period, ctx = request.period(), request.scope()
    as_of: datetime = figures.wcb_as_of(period, request.created_at)
    physician = figures.physician(conn=conn, ctx=ctx)
    with figures.wcb_due(
        conn=conn, ctx=ctx, period=period, as_of=as_of, calendar=request.calendar
    ) as reader:
        totals = reader.totals()
        start, end = period.start.isoformat(), period.end.isoformat()
        masthead = Masthead(
            title=TITLE,
            physician=physician.legal_name,
            ba_numbers=(),
            period=period,
            created_at=request.created_at,
            report_id=request.report_id,
            basis=_basis(),
            extra=(("Tiers as of", f"{alberta_time(as_of)} (America/Edmonton)"),),
            keywords=f"Meritum, WCB timing, fee tiers, by tier deadline, {start}, {end}",
        )
        content = partial(items, reader, totals)
        yield from render(page=PAGE, masthead=masthead, subject=SUBJECT, items=content)
