"""What the scheduled PDF reports share: their header and their tables.

A scheduled report states its own basis (the date of the event it counts,
or the payment date) where the accountant reports state the cash basis, and
names the period it is compared with. Its tables repeat their column
headings on every page they continue on, and lay out strings the figures
module has already summed: nothing here adds money up.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Final

from reportlab.pdfgen.canvas import Canvas

from meritum_api.domains.analytics.figures import Period
from meritum_api.domains.analytics.generators.layout import Item
from meritum_api.domains.analytics.generators.pdf import (
    ACCENT,
    BAND,
    BOLD,
    INK,
    MUTED,
    REGULAR,
    RULE,
    Masthead,
    Page,
    fit,
    rule,
    wrap,
)


def days(period: Period) -> str:
    """``2026-11-23 to 2026-11-29``."""
    return f"{period.start.isoformat()} to {period.end.isoformat()}"


@dataclass(frozen=True, slots=True)
class ScheduledMasthead(Masthead):
    """The header of a scheduled report: its period, its basis and what it is compared with.

    ``basis`` (inherited) says in full how a claim counts in the period;
    ``short_basis`` says it in the running head of the later pages.
    """

    short_basis: str = ""
    #: The period set beside this one, described (``the week before, …``), or None.
    compared_with: str | None = None
    #: The report's kind, for the metadata keywords (``weekly summary``).
    kind: str = "scheduled report"

    def __post_init__(self) -> None:
        # Derived header fields, set once: the dataclass is frozen.
        if self.compared_with is not None and not self.extra:
            object.__setattr__(self, "extra", (("Compared with", self.compared_with),))
        if self.keywords is None:
            start, end = self.period.start.isoformat(), self.period.end.isoformat()
            keywords = f"Meritum, {self.kind}, scheduled, AHCIP, WCB, {start}, {end}"
            object.__setattr__(self, "keywords", keywords)

    def running_line(self) -> str:
        """The running head's second line: the period and the basis, in short."""
        return f"{days(self.period)} \u00b7 {self.short_basis or self.basis}"


def percent(value: Decimal | None) -> str:
    """``12.3%``, or ``n/a`` when there was nothing to divide by."""
    return "n/a" if value is None else f"{value}%"


SIZE: Final = 9
LINE: Final = 11.5
PAD: Final = 3
HEAD_SIZE: Final = 7.5
GUTTER: Final = 8


@dataclass(frozen=True, slots=True)
class Column:
    """A table column: left-aligned text wraps, right-aligned figures stay on one line."""

    heading: str
    #: Points; None takes what the other columns leave.
    width: float | None = None
    right: bool = False


class Table:
    """Rows of strings under column headings, placed by the paginator like any item."""

    def __init__(self, page: Page, columns: Sequence[Column]) -> None:
        fixed = sum(c.width for c in columns if c.width is not None)
        flexible = [c for c in columns if c.width is None]
        rest = (page.width - fixed) / len(flexible) if flexible else 0
        self._page = page
        self._columns = tuple(columns)
        self._widths = tuple(rest if c.width is None else c.width for c in columns)
        edges = [page.left]
        for w in self._widths:
            edges.append(edges[-1] + w)
        self._edges = tuple(edges)

    def _x(self, index: int) -> float:
        if self._columns[index].right:
            return self._edges[index + 1]
        return self._edges[index] + (GUTTER if index else 0)

    def _room(self, index: int) -> float:
        return self._widths[index] - GUTTER

    def header(self, *, continued: str | None = None) -> Item:
        """The column headings on a band; above them, on later pages, "<title> (continued)"."""
        headings = [
            wrap(c.heading, BOLD, HEAD_SIZE, self._room(i)) for i, c in enumerate(self._columns)
        ]
        band = max(len(h) for h in headings) * 9 + 2 * PAD + 2
        above = 16 if continued else 0
        page = self._page

        def draw(canvas: Canvas, top: float) -> None:
            if continued:
                canvas.setFillColor(ACCENT)
                canvas.setFont(BOLD, 8.5)
                canvas.drawString(page.left, top - 10, f"{continued} (continued)")
            y = top - above
            canvas.setFillColor(BAND)
            canvas.rect(page.left, y - band, page.width, band, stroke=0, fill=1)
            canvas.setFillColor(MUTED)
            canvas.setFont(BOLD, HEAD_SIZE)
            for index, lines in enumerate(headings):
                # Headings sit on the bottom line, like the figures under them.
                for offset, text in enumerate(reversed(lines)):
                    baseline = y - band + PAD + 2 + offset * 9
                    if self._columns[index].right:
                        canvas.drawRightString(self._x(index), baseline, text)
                    else:
                        canvas.drawString(self._x(index), baseline, text)

        return Item(height=above + band, draw=draw)

    def row(self, cells: Sequence[str], *, bold: bool = False) -> Item:
        """One row; a bold one (a total) has a rule above it."""
        font = BOLD if bold else REGULAR
        texts = [
            [fit(cell, font, SIZE, self._room(i))]
            if self._columns[i].right
            else wrap(cell, font, SIZE, self._room(i))
            for i, cell in enumerate(cells)
        ]
        height = max(len(t) for t in texts) * LINE + 2 * PAD
        page = self._page

        def draw(canvas: Canvas, top: float) -> None:
            if bold:
                rule(canvas, page.left, page.right, top, weight=0.6, color=INK)
            else:
                rule(canvas, page.left, page.right, top - height, weight=0.25, color=RULE)
            canvas.setFillColor(INK)
            canvas.setFont(font, SIZE)
            y = top - PAD - SIZE + 1
            for index, lines in enumerate(texts):
                for offset, text in enumerate(lines):
                    if self._columns[index].right:
                        canvas.drawRightString(self._x(index), y - offset * LINE, text)
                    else:
                        canvas.drawString(self._x(index), y - offset * LINE, text)

        return Item(height=height, draw=draw)

    def items(
        self,
        title: str,
        rows: Sequence[Sequence[str]],
        *,
        total: Sequence[str] | None = None,
        empty: str = "None in this period.",
        intro: str | None = None,
    ) -> Iterator[Item]:
        """A heading, the column headings and the rows; the headings repeat on each new page."""
        head = self.header()
        continued = self.header(continued=title)
        body = [self.row(cells) for cells in rows]
        if total is not None:
            body.append(self.row(total, bold=True))
        if not body:
            yield heading(self._page, title, keep=0)
            if intro:
                yield paragraph(self._page, intro, muted=True)
            yield paragraph(self._page, empty)
            return
        if intro:
            # The heading, its intro, the column headings and a first row stay together.
            note = paragraph(self._page, intro, muted=True, keep=head.height + body[0].height)
            yield heading(self._page, title, keep=note.height + note.keep)
            yield note
        else:
            yield heading(self._page, title, keep=head.height + body[0].height)
        yield Item(height=head.height, draw=head.draw, keep=body[0].height)
        for item in body:
            yield Item(height=item.height, draw=item.draw, header=continued)


def heading(page: Page, text: str, *, keep: float) -> Item:
    """A section heading, kept on the page with ``keep`` points of what follows."""

    def draw(canvas: Canvas, top: float) -> None:
        canvas.setFillColor(ACCENT)
        canvas.setFont(BOLD, 11)
        canvas.drawString(page.left, top - 20, text)

    return Item(height=26, draw=draw, keep=keep)


def paragraph(page: Page, text: str, *, muted: bool = False, keep: float = 0) -> Item:
    """A paragraph across the page."""
    size = 8 if muted else SIZE
    lines = wrap(text, REGULAR, size, page.width)

    def draw(canvas: Canvas, top: float) -> None:
        canvas.setFillColor(MUTED if muted else INK)
        canvas.setFont(REGULAR, size)
        for index, line in enumerate(lines):
            canvas.drawString(page.left, top - size - 2 - index * (size + 2.5), line)

    return Item(height=6 + len(lines) * (size + 2.5), draw=draw, keep=keep)


__all__ = [
    "Column",
    "ScheduledMasthead",
    "Table",
    "days",
    "heading",
    "paragraph",
    "percent",
]
