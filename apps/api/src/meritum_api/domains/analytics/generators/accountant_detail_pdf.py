"""The accountant PDF detail: one line per paid claim, with monthly subtotals and a grand total.

The lines are the accountant CSV's rows, in its order and its nine columns,
read from :func:`figures.detail_lines`; each carries its month's subtotal,
summed by PostgreSQL in the same statement, and the grand total comes from
that statement too, so it equals the CSV and the summary to the cent.

The statement is read twice from one scrollable cursor: once to count the
pages (a location long enough to wrap makes its line taller), once to draw
them. Both reads see the same snapshot, and memory holds one batch of rows
and one page at a time.
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import lru_cache, partial
from typing import TYPE_CHECKING, Final

from reportlab.lib.pagesizes import LETTER, landscape
from reportlab.pdfgen.canvas import Canvas
from sqlalchemy import Connection

from meritum_api.domains.analytics import figures
from meritum_api.domains.analytics.generators.layout import (
    Column,
    Item,
    column_edges,
    notice,
    render,
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
    money,
    month_name,
    rule,
    width,
    wrap,
)
from meritum_api.domains.analytics.generators.pdf import (
    claims as claim_count,
)

if TYPE_CHECKING:  # the package imports this module to register it: no cycle at run time
    from meritum_api.domains.analytics.generators import GenerationRequest

PAGE: Final = Page(size=landscape(LETTER), margin=36)
TITLE: Final = "Accountant detail"
SUBJECT: Final = "AHCIP and WCB claims paid in the period (cash basis), one line per claim"
EMPTY: Final = "No paid claims in this period"

SIZE: Final = 7.5
LINE: Final = 9
PAD: Final = 2
HEAD_SIZE: Final = 7
#: Space between a column's text and the next column; wider after an amount,
#: so that a right-aligned fee does not run into the date beside it.
GUTTER: Final = 6
AMOUNT_GUTTER: Final = 14


#: The CSV's nine columns, in its order, sized for the landscape page (720 pt).
COLUMNS: Final = (
    Column("Date of service", 56),
    Column("HSC code", 46),
    Column("Modifiers", 66),
    Column("Submitted fee", 66, right=True),
    Column("Assessed fee", 66, right=True),
    Column("Payment date", 60),
    Column("BA number", 52),
    Column("Location", 264),
    Column("Claim type", 44),
)
_X: Final = column_edges(PAGE, COLUMNS)


def _text_x(index: int) -> float:
    column = COLUMNS[index]
    if column.right:
        return _X[index + 1] - AMOUNT_GUTTER
    return _X[index]


def _room(index: int) -> float:
    return COLUMNS[index].width - (AMOUNT_GUTTER if COLUMNS[index].right else GUTTER)


@lru_cache(maxsize=4096)
def _cell(text: str, index: int) -> tuple[str, ...]:
    # A physician has few distinct locations, modifiers and codes: wrap each
    # once. Bounded, so that unusual data cannot grow memory.
    return tuple(wrap(text, REGULAR, SIZE, _room(index)))


def _table_header() -> Item:
    headings = [wrap(c.heading, BOLD, HEAD_SIZE, _room(i)) for i, c in enumerate(COLUMNS)]
    lines = max(len(h) for h in headings)
    height = lines * 8 + 2 * PAD + 3

    def draw(canvas: Canvas, top: float) -> None:
        canvas.setFillColor(BAND)
        canvas.rect(PAGE.left, top - height, PAGE.width, height, stroke=0, fill=1)
        canvas.setFillColor(MUTED)
        canvas.setFont(BOLD, HEAD_SIZE)
        for index, heading in enumerate(headings):
            # Headings sit on the bottom line, like the numbers under them.
            for offset, text in enumerate(reversed(heading)):
                y = top - height + PAD + 2 + offset * 8
                if COLUMNS[index].right:
                    canvas.drawRightString(_text_x(index), y, text)
                else:
                    canvas.drawString(_text_x(index), y, text)

    return Item(height=height, draw=draw)


def _claim_item(line: figures.DetailLine, header: Item) -> Item:
    claim = line.claim
    hsc, modifiers = _cell(claim.hsc_code, 1), _cell(claim.modifiers, 2)
    ba, location = _cell(claim.ba_number, 6), _cell(claim.location, 7)
    # Counting the pages needs only the height; the text is made when drawn.
    height = max(len(hsc), len(modifiers), len(ba), len(location)) * LINE + PAD

    def draw(canvas: Canvas, top: float) -> None:
        cells = (
            (claim.date_of_service.isoformat(),),
            hsc,
            modifiers,
            (money(claim.submitted_fee),),
            (money(claim.assessed_fee),),
            (claim.payment_date.isoformat(),),
            ba,
            location,
            (claim.claim_type.value,),
        )
        y = top - SIZE - PAD / 2
        # One text object per line rather than one per cell: a third of the time.
        text = canvas.beginText()
        text.setFont(REGULAR, SIZE)
        text.setFillColor(INK)
        for index, texts in enumerate(cells):
            x = _text_x(index)
            for offset, value in enumerate(texts):
                if COLUMNS[index].right:
                    text.setTextOrigin(x - width(value, REGULAR, SIZE), y - offset * LINE)
                else:
                    text.setTextOrigin(x, y - offset * LINE)
                text.textOut(value)
        canvas.drawText(text)

    return Item(height=height, draw=draw, header=header)


def _total_item(
    label: str, claims: int, submitted: str, assessed: str, header: Item, *, grand: bool
) -> Item:
    height = LINE + 2 * PAD + (4 if grand else 2)

    def draw(canvas: Canvas, top: float) -> None:
        if grand:
            canvas.setFillColor(BAND)
            canvas.rect(PAGE.left, top - height, PAGE.width, height, stroke=0, fill=1)
        rule(
            canvas,
            PAGE.left,
            PAGE.right,
            top,
            weight=0.9 if grand else 0.4,
            color=INK if grand else RULE,
        )
        y = top - SIZE - PAD - 1
        canvas.setFillColor(INK)
        canvas.setFont(BOLD, SIZE)
        canvas.drawString(_text_x(0), y, label)
        canvas.drawRightString(_text_x(3), y, submitted)
        canvas.drawRightString(_text_x(4), y, assessed)
        canvas.drawString(_text_x(5), y, claim_count(claims))

    return Item(height=height, draw=draw, header=header)


def _subtotal(line: figures.DetailLine, header: Item) -> Item:
    return _total_item(
        f"Subtotal {month_name(line.month)}",
        line.month_claims,
        money(line.month_submitted),
        money(line.month_assessed),
        header,
        grand=False,
    )


def items(reader: figures.DetailReader, totals: figures.DetailTotals) -> Iterator[Item]:
    """The table: header, claim lines, a subtotal after each month, the grand total."""
    if totals.claims == 0:
        yield notice(PAGE, EMPTY, "No claim of this physician has a payment date in the period.")
        return
    header = _table_header()
    previous: figures.DetailLine | None = None
    first = True
    for line in reader.lines():
        if previous is not None and line.month != previous.month:
            yield _subtotal(previous, header)
        item = _claim_item(line, header)
        if first:
            yield Item(height=header.height, draw=header.draw, keep=item.height)
            first = False
        yield item
        previous = line
    if previous is not None:
        yield _subtotal(previous, header)
    yield _total_item(
        "Total of the period",
        totals.claims,
        money(totals.submitted),
        money(totals.assessed),
        header,
        grand=True,
    )


def generate(conn: Connection, request: GenerationRequest) -> Iterator[bytes]:
    """The detail's PDF, streamed in chunks."""
    period, ctx = request.period(), request.scope()
    physician = figures.physician(conn=conn, ctx=ctx)
    with figures.detail_lines(conn=conn, ctx=ctx, period=period) as reader:
        totals = reader.totals()
        masthead = Masthead(
            title=TITLE,
            physician=physician.legal_name,
            ba_numbers=totals.ba_numbers,
            period=period,
            created_at=request.created_at,
            report_id=request.report_id,
        )
        table = partial(items, reader, totals)
        yield from render(page=PAGE, masthead=masthead, subject=SUBJECT, items=table)
