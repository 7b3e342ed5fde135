"""Going down pages: the pagination both PDF reports use.

Each report runs its layout twice over the same content, first only to count
the pages (so that every footer can say "page N of M" as it is drawn) and
then to draw them; the two runs take the same decisions because they are
the same code with a :class:`Cursor` in the same state.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field

from reportlab.pdfgen.canvas import Canvas

from meritum_api.domains.analytics.generators.pdf import (
    ACCENT,
    BAND,
    BOLD,
    INK,
    MUTED,
    REGULAR,
    RULE,
    RUNNING_HEIGHT,
    Masthead,
    Page,
    StreamingCanvas,
    draw_footer,
    draw_masthead,
    draw_running_head,
    masthead_height,
    new_canvas,
    register_fonts,
    rule,
)


@dataclass(slots=True)
class Cursor:
    """The page being filled and the y where the next thing's top edge goes."""

    #: Top of the content on the first page (below the full header) and on the
    #: others (below the running head); the lowest y content may reach.
    first_top: float
    next_top: float
    bottom: float
    page: int = 1
    y: float = field(init=False)
    #: Whether anything was placed since the page began.
    used: bool = field(init=False, default=False)

    def __post_init__(self) -> None:
        self.y = self.first_top

    def fits(self, height: float) -> bool:
        """Whether ``height`` more points fit on this page (always, on an empty page)."""
        return not self.used or self.y - height >= self.bottom

    def new_page(self) -> None:
        """Continue on the next page."""
        self.page += 1
        self.y = self.next_top
        self.used = False

    def take(self, height: float) -> float:
        """Reserve ``height`` points; the y of their top edge."""
        top = self.y
        self.y -= height
        self.used = True
        return top


#: Draws something whose top edge is at ``y``.
Draw = Callable[[Canvas, float], None]


@dataclass(frozen=True, slots=True)
class Item:
    """Something of a known height to place down the pages.

    ``keep`` is the height of what must follow on the same page (a heading
    keeps its first row); ``header`` is drawn first whenever the item opens
    a page (a table's column headings).
    """

    height: float
    draw: Draw
    keep: float = 0
    header: Item | None = None


class Paginator:
    """Places items down pages with the header and footer of an accountant report.

    Without a canvas it only counts the pages; with one it draws them,
    yielding the file's bytes as pages are written.
    """

    def __init__(
        self,
        *,
        page: Page,
        masthead: Masthead,
        canvas: StreamingCanvas | None = None,
        total_pages: int = 0,
    ) -> None:
        self._page = page
        self._masthead = masthead
        self._canvas = canvas
        self._total = total_pages
        self.pages = 0

    def run(self, items: Iterable[Item]) -> Iterator[bytes]:
        """Place every item; the bytes of each finished stretch of pages (drawing only)."""
        page, masthead, canvas = self._page, self._masthead, self._canvas
        cursor = Cursor(
            first_top=page.top - masthead_height(masthead, page),
            next_top=page.top - RUNNING_HEIGHT,
            bottom=page.bottom,
        )
        if canvas is not None:
            draw_masthead(canvas, masthead, page)
        for item in items:
            if not cursor.fits(item.height + item.keep):
                if canvas is not None:
                    draw_footer(canvas, masthead, page, cursor.page, self._total)
                    canvas.showPage()
                    if chunk := canvas.ready():
                        yield chunk
                cursor.new_page()
                if canvas is not None:
                    draw_running_head(canvas, masthead, page)
                if item.header is not None:
                    top = cursor.take(item.header.height)
                    if canvas is not None:
                        item.header.draw(canvas, top)
            top = cursor.take(item.height)
            if canvas is not None:
                item.draw(canvas, top)
        if canvas is not None:
            draw_footer(canvas, masthead, page, cursor.page, self._total)
        self.pages = cursor.page


def render(
    *, page: Page, masthead: Masthead, subject: str, items: Callable[[], Iterable[Item]]
) -> Iterator[bytes]:
    """The PDF of ``items``: counted once, then drawn, streamed in chunks.

    ``items`` is called twice and must give the same items both times.
    """
    register_fonts()  # before anything is measured
    counting = Paginator(page=page, masthead=masthead)
    for _ in counting.run(items()):
        pass
    canvas = new_canvas(masthead=masthead, page=page, subject=subject)
    drawing = Paginator(page=page, masthead=masthead, canvas=canvas, total_pages=counting.pages)
    yield from drawing.run(items())
    if drawing.pages != counting.pages:  # the two runs are the same code: a bug if they differ
        raise RuntimeError("the page count changed between counting and drawing")
    yield canvas.finish()


def notice(page: Page, text: str, detail: str) -> Item:
    """A banded message across the page ("No paid claims in this period")."""

    def draw(canvas: Canvas, top: float) -> None:
        canvas.setFillColor(BAND)
        canvas.rect(page.left, top - 50, page.width, 42, stroke=0, fill=1)
        canvas.setFillColor(INK)
        canvas.setFont(BOLD, 12)
        canvas.drawString(page.left + 10, top - 26, text)
        canvas.setFillColor(MUTED)
        canvas.setFont(REGULAR, 8)
        canvas.drawString(page.left + 10, top - 41, detail)

    return Item(height=58, draw=draw)


def section_heading(page: Page, text: str, keep: float) -> Item:
    """A section's title, kept on the page with the next ``keep`` points of content."""

    def draw(canvas: Canvas, top: float) -> None:
        canvas.setFillColor(ACCENT)
        canvas.setFont(BOLD, 11)
        canvas.drawString(page.left, top - 22, text)

    return Item(height=28, draw=draw, keep=keep)


def summary_figure(page: Page, label: str, value: str, note: str = "") -> Item:
    """A summary figure on a ruled line: label, an optional note, the value at the right edge."""

    def draw(canvas: Canvas, top: float) -> None:
        y = top - 3 - 9
        canvas.setFillColor(INK)
        canvas.setFont(BOLD, 9)
        canvas.drawString(page.left, y, label)
        canvas.drawRightString(page.right, y, value)
        if note:
            canvas.setFillColor(MUTED)
            canvas.setFont(REGULAR, 7)
            canvas.drawString(page.left + 200, y, note)
        rule(canvas, page.left, page.right, top - 16, weight=0.4, color=RULE)

    return Item(height=17, draw=draw)


@dataclass(frozen=True, slots=True)
class Column:
    """A table column of a fixed width in points; amounts are right-aligned."""

    heading: str
    width: float
    right: bool = False


def column_edges(page: Page, columns: Sequence[Column]) -> tuple[float, ...]:
    """The x of each column's left edge, and of the last one's right edge."""
    edges = [page.left]
    for column in columns:
        edges.append(edges[-1] + column.width)
    return tuple(edges)
