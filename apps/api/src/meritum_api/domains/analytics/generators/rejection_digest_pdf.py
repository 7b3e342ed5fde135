"""The rejection digest: the claims rejected in the period, and how to correct each.

Basis: the rejection date (the day, in America/Edmonton, of the claim's
change to REJECTED). Every figure comes from :func:`figures.rejections`, one
statement read from a scrollable cursor: the count and the submitted fees of
the rejected claims, the same per explanatory code, then one entry per
rejection with the code's description and corrective guidance from the
reference table. No patient name or PHN: a claim is named by its id, date of
service, service code and place (and its WCB claim number).
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import cache, lru_cache, partial
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
    count,
    money,
    rule,
    width,
    wrap,
)

if TYPE_CHECKING:  # the package imports this module to register it: no cycle at run time
    from meritum_api.domains.analytics.generators import GenerationRequest

PAGE: Final = Page(size=LETTER, margin=48)
TITLE: Final = "Rejection digest"
SUBJECT: Final = (
    "Claims rejected in the period, with their explanatory codes and how to correct them"
)
EMPTY: Final = "No claims rejected in this period"
UNKNOWN_CODE: Final = "not in the reference table of explanatory codes"

SIZE: Final = 7.5
NOTE_SIZE: Final = 7
LINE: Final = 9.5
PAD: Final = 3
HEAD_SIZE: Final = 7
GUTTER: Final = 6


#: The columns of a rejection's first line, sized for the portrait page (516 pt).
COLUMNS: Final = (
    Column("Rejected", 84),
    Column("Date of service", 62),
    Column("Claim type", 44),
    Column("HSC code", 50),
    Column("Modifiers", 96),
    Column("Submitted fee", 70, right=True),
    Column("Code", 110),
)
_X: Final = column_edges(PAGE, COLUMNS)
#: Where a rejection's description, guidance and claim reference start.
INDENT: Final = _X[1]
NOTE_WIDTH: Final = PAGE.right - INDENT


def _cell_x(index: int) -> float:
    if COLUMNS[index].right:
        return _X[index + 1] - 2 * GUTTER
    return _X[index]


def _room(index: int) -> float:
    return COLUMNS[index].width - (2 * GUTTER if COLUMNS[index].right else GUTTER)


# --- by code -------------------------------------------------------------------

CODE_X: Final = PAGE.left
DESCRIPTION_X: Final = PAGE.left + 44
COUNT_RIGHT: Final = PAGE.right - 96
DESCRIPTION_WIDTH: Final = COUNT_RIGHT - 70 - DESCRIPTION_X


def _code_header(continued: bool = False) -> Item:
    def draw(canvas: Canvas, top: float) -> None:
        y = top - 9
        canvas.setFillColor(MUTED)
        canvas.setFont(BOLD, HEAD_SIZE)
        canvas.drawString(CODE_X, y, "Code")
        canvas.drawString(
            DESCRIPTION_X, y, "Description (continued)" if continued else "Description"
        )
        canvas.drawRightString(COUNT_RIGHT, y, "Rejections")
        canvas.drawRightString(PAGE.right, y, "Submitted fees")
        rule(canvas, PAGE.left, PAGE.right, y - 4, weight=0.5, color=RULE)

    return Item(height=15, draw=draw)


def _code_row(share: figures.CodeShare, header: Item) -> Item:
    described = share.description if share.description is not None else UNKNOWN_CODE
    lines = wrap(described, REGULAR, SIZE, DESCRIPTION_WIDTH)
    height = len(lines) * LINE + 2 * PAD

    def draw(canvas: Canvas, top: float) -> None:
        y = top - PAD - SIZE
        canvas.setFillColor(INK)
        canvas.setFont(BOLD, SIZE)
        canvas.drawString(CODE_X, y, share.code or "none")
        canvas.setFont(REGULAR, SIZE)
        for index, text in enumerate(lines):
            canvas.drawString(DESCRIPTION_X, y - index * LINE, text)
        canvas.drawRightString(COUNT_RIGHT, y, count(share.rejections))
        canvas.drawRightString(PAGE.right, y, money(share.submitted))

    return Item(height=height, draw=draw, header=header)


# --- the rejected claims ---------------------------------------------------------


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


@lru_cache(maxsize=4096)
def _wrapped(text: str, font: str, size: float, room: float) -> tuple[str, ...]:
    # Codes, descriptions, guidance and places repeat from one rejection to the
    # next: wrap each once. Bounded, so that unusual data cannot grow memory.
    return tuple(wrap(text, font, size, room))


@cache
def _place_x() -> float:
    """Where the claim's place starts on its reference line, after "Claim <uuid>"."""
    # As wide as the widest id can be: every hex digit as wide as the widest.
    digit = max(width(c, REGULAR, NOTE_SIZE) for c in "0123456789abcdef")
    claim = width("Claim ", REGULAR, NOTE_SIZE) + 32 * digit + 4 * width("-", REGULAR, NOTE_SIZE)
    return INDENT + claim + 10


def _place(line: figures.Rejection) -> str:
    if line.wcb_claim_number is None:
        return line.location
    return f"WCB claim {line.wcb_claim_number} \u00b7 {line.location}"


def _explained(line: figures.Rejection) -> tuple[str, str]:
    if line.code is None:
        return "The claim carries no explanatory code.", ""
    if line.description is None:
        return f"Code {line.code} is {UNKNOWN_CODE}.", ""
    return line.description, line.corrective_guidance or ""


def _rejection_item(line: figures.Rejection, header: Item) -> Item:
    cells = (
        (alberta_time(line.rejected_at),),
        (line.date_of_service.isoformat(),),
        (line.claim_type.value,),
        _wrapped(line.hsc_code, REGULAR, SIZE, _room(3)),
        _wrapped(line.modifiers, REGULAR, SIZE, _room(4)),
        (money(line.submitted_fee),),
        (line.code or "none",),
    )
    described, guidance = _explained(line)
    descriptions = _wrapped(described, BOLD, SIZE, NOTE_WIDTH)
    guidances = _wrapped(f"To correct: {guidance}", REGULAR, SIZE, NOTE_WIDTH) if guidance else ()
    places = _wrapped(_place(line), REGULAR, NOTE_SIZE, PAGE.right - _place_x())
    first = max(len(c) for c in cells)
    notes = len(descriptions) + len(guidances)
    height = (first + notes) * LINE + len(places) * (LINE - 1) + 2 * PAD + 2

    def draw(canvas: Canvas, top: float) -> None:
        y = top - PAD - SIZE
        # One text object for the whole entry rather than one per string: a
        # third of the time.
        text = canvas.beginText()
        text.setFillColor(INK)
        for index, texts in enumerate(cells):
            font = BOLD if index == 6 else REGULAR
            text.setFont(font, SIZE)
            for offset, value in enumerate(texts):
                x = _cell_x(index)
                if COLUMNS[index].right:
                    x -= width(value, font, SIZE)
                text.setTextOrigin(x, y - offset * LINE)
                text.textOut(value)
        y -= first * LINE
        text.setFont(BOLD, SIZE)
        for value in descriptions:
            text.setTextOrigin(INDENT, y)
            text.textOut(value)
            y -= LINE
        text.setFont(REGULAR, SIZE)
        for value in guidances:
            text.setTextOrigin(INDENT, y)
            text.textOut(value)
            y -= LINE
        text.setFillColor(MUTED)
        text.setFont(REGULAR, NOTE_SIZE)
        text.setTextOrigin(INDENT, y)
        text.textOut(f"Claim {line.claim_id}")
        for value in places:
            text.setTextOrigin(_place_x(), y)
            text.textOut(value)
            y -= LINE - 1
        canvas.drawText(text)
        rule(canvas, PAGE.left, PAGE.right, top - height, weight=0.3, color=RULE)

    return Item(height=height, draw=draw, header=header)


def items(reader: figures.RejectionReader, totals: figures.RejectionTotals) -> Iterator[Item]:
    """Everything the digest shows, in order."""
    if totals.rejections == 0:
        yield notice(PAGE, EMPTY, "No claim of this physician was rejected on a day of the period.")
        return
    yield section_heading(PAGE, "Summary", keep=17)
    yield summary_figure(
        PAGE, "Rejections", count(totals.rejections), "changes of a claim to REJECTED"
    )
    yield summary_figure(
        PAGE,
        "Submitted fees",
        money(totals.submitted),
        "\u03a3 submitted fee of the rejected claims below",
    )
    header = _code_header()
    continued = _code_header(continued=True)
    rows = [_code_row(share, continued) for share in totals.by_code]
    yield section_heading(PAGE, "By explanatory code", keep=header.height + rows[0].height)
    yield Item(height=header.height, draw=header.draw, keep=rows[0].height)
    yield from rows
    table = _table_header()
    first = True
    for line in reader.lines():
        item = _rejection_item(line, table)
        if first:
            yield section_heading(PAGE, "Rejected claims", keep=table.height + item.height)
            yield Item(height=table.height, draw=table.draw, keep=item.height)
            first = False
        yield item


def _basis(period: figures.Period) -> str:
    start, end = period.start.isoformat(), period.end.isoformat()
    days = f"on {start}" if start == end else f"from {start} to {end}"
    return f"by rejection date: claims rejected {days} (America/Edmonton)"


def generate(conn: Connection, request: GenerationRequest) -> Iterator[bytes]:
    """The digest's PDF, streamed in chunks."""
    period, ctx = request.period(), request.scope()
    physician = figures.physician(conn=conn, ctx=ctx)
    with figures.rejections(conn=conn, ctx=ctx, period=period) as reader:
        totals = reader.totals()
        start, end = period.start.isoformat(), period.end.isoformat()
        masthead = Masthead(
            title=TITLE,
            physician=physician.legal_name,
            ba_numbers=(),
            period=period,
            created_at=request.created_at,
            report_id=request.report_id,
            basis=_basis(period),
            keywords=f"Meritum, rejection digest, AHCIP, WCB, by rejection date, {start}, {end}",
        )
        content = partial(items, reader, totals)
        yield from render(page=PAGE, masthead=masthead, subject=SUBJECT, items=content)
