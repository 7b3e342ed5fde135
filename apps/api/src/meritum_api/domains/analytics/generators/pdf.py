"""What the PDF reports share: a streaming reportlab canvas, the font, the header and footer.

**Streaming.** reportlab keeps every page of a document in memory until
``save()``, then formats the whole file at once. :class:`StreamingCanvas`
writes each page (its dictionary and compressed content stream) to a sink
as soon as the page is finished and keeps only a stub of it, then writes
the objects that can only be known at the end (the font subsets, the page
tree, the catalog), the cross-reference table and the trailer. A PDF's
objects may appear in any order in the file; the cross-reference table says
where each one is. Memory therefore holds one page at a time, however long
the report. This relies on the document internals of reportlab 5.1 (pinned
in the project's dependencies); the tests check every file with qpdf.

**Deterministic.** ``invariant`` mode, the creation date taken from the
report row, and subset font names that reportlab derives from the order of
first use: the same data gives the same bytes.

**Font.** Lato (SIL Open Font License), from the ``fontpkg-lato`` package,
embedded as TrueType subsets. It covers the Latin scripts in full, the
Vietnamese letters included (``Nguyễn``), and the em dash and minus sign
the reports print; nothing depends on the fonts of the machine.
"""

from __future__ import annotations

import threading
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from importlib import resources
from typing import Any, Final, cast
from zoneinfo import ZoneInfo

from reportlab.lib.colors import Color
from reportlab.lib.utils import simpleSplit
from reportlab.pdfbase import pdfdoc, pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.pdfgen.canvas import Canvas

from meritum_api.domains.analytics.figures import Period

REGULAR: Final = "Meritum-Lato"
BOLD: Final = "Meritum-Lato-Bold"

#: The time zone in which a report's generation time is printed.
ALBERTA: Final = ZoneInfo("America/Edmonton")

#: Bytes gathered before a chunk is handed to storage.
CHUNK_SIZE: Final = 64 * 1024

INK: Final = Color(0.11, 0.13, 0.16)
MUTED: Final = Color(0.36, 0.39, 0.44)
RULE: Final = Color(0.70, 0.73, 0.77)
BAND: Final = Color(0.93, 0.94, 0.96)
ACCENT: Final = Color(0.16, 0.38, 0.60)

MINUS: Final = "\u2212"

_CENT: Final = Decimal("0.01")
_fonts_lock = threading.Lock()


def register_fonts() -> None:
    """Register the embedded fonts with reportlab once per process."""
    with _fonts_lock:
        registered = pdfmetrics.getRegisteredFontNames()
        files = resources.files("fontpkg_lato") / "files"
        for name, file in ((REGULAR, "Lato-Regular.ttf"), (BOLD, "Lato-Bold.ttf")):
            if name not in registered:
                with resources.as_file(files / file) as path:
                    pdfmetrics.registerFont(TTFont(name, str(path)))


# --- formatting -------------------------------------------------------------------


def money(value: Decimal) -> str:
    """``$12,345.67``, or ``−$12.50`` below zero (a true minus sign)."""
    cents = value.quantize(_CENT)
    if cents != value:  # NUMERIC(10, 2) sums never get here; refuse to round silently
        raise ValueError("an amount has more than two decimals")
    text = f"${abs(cents):,.2f}"
    return f"{MINUS}{text}" if cents < 0 else text


def count(value: int) -> str:
    """A count with a thousands separator."""
    return f"{value:,}"


def claims(value: int) -> str:
    """``1 claim``, ``1,234 claims``."""
    return "1 claim" if value == 1 else f"{value:,} claims"


def month_name(month: date) -> str:
    """``January 2026``."""
    return f"{_MONTHS[month.month - 1]} {month.year}"


_MONTHS: Final = (
    "January", "February", "March", "April", "May", "June", "July", "August",
    "September", "October", "November", "December",
)  # fmt: skip


def alberta_time(moment: datetime) -> str:
    """``2026-04-02 09:15 MDT``: a moment as read on a clock in Alberta."""
    if moment.tzinfo is None:
        raise ValueError("a naive datetime has no place in a report")
    local = moment.astimezone(ALBERTA)
    return f"{local:%Y-%m-%d %H:%M} {local.tzname()}"


def clean(text: str) -> str:
    """Text as one line: control characters and runs of white space become one space."""
    return " ".join(text.split())


def width(text: str, font: str, size: float) -> float:
    """How wide ``text`` is, in points."""
    return float(pdfmetrics.stringWidth(text, font, size))


def wrap(text: str, font: str, size: float, max_width: float) -> list[str]:
    """``text`` broken into lines no wider than ``max_width``.

    Between words first; a word still too long (``CMGP,AFHR,EV,BMI``) after
    its last comma, hyphen or slash that fits, and only then between letters.
    """
    lines: list[str] = []
    for line in simpleSplit(clean(text), font, size, max_width) or [""]:
        while len(line) > 1 and width(line, font, size) > max_width:
            cut = len(line) - 1
            while cut > 1 and width(line[:cut], font, size) > max_width:
                cut -= 1
            marks = [line.rfind(mark, 0, cut) for mark in _BREAK_AFTER]
            if max(marks) > 0:
                cut = max(marks) + 1
            lines.append(line[:cut])
            line = line[cut:]
        lines.append(line)
    return lines


_BREAK_AFTER: Final = (",", "-", "/")


# --- the streaming canvas ---------------------------------------------------------


class _Sink:
    """Bytes written by the canvas, waiting to be yielded."""

    def __init__(self) -> None:
        self.parts: list[bytes] = []
        self.pending = 0
        self.offset = 0

    def write(self, data: bytes) -> int:
        at = self.offset
        self.parts.append(data)
        self.pending += len(data)
        self.offset += len(data)
        return at

    def take(self) -> bytes:
        data = b"".join(self.parts)
        self.parts.clear()
        self.pending = 0
        return data


class _WrittenPage(pdfdoc.PDFObject):
    """What stays of a page once it is in the file: its name, for the page tree."""

    __RefOnly__ = 1

    def __init__(self, name: str) -> None:
        setattr(self, pdfdoc.__InternalName__, name)


class StreamingCanvas(Canvas):
    """A reportlab canvas that writes each finished page to its output at once."""

    def __init__(self, *, pagesize: tuple[float, float], created_at: datetime) -> None:
        register_fonts()
        # A TrueType initial font: with the default (Helvetica) reportlab would
        # add a font that is not embedded to every page.
        super().__init__(
            "report.pdf",
            pagesize=pagesize,
            invariant=1,
            pageCompression=1,
            initialFontName=cast(Any, REGULAR),  # the stubs type this a float by mistake
            initialFontSize=9,
        )
        self._sink = _Sink()
        self._written: set[str] = set()
        self._closed = False
        # The creation date is the report's, so regenerating gives the same bytes.
        stamp = created_at.astimezone(UTC)
        self.setDateFormatter(lambda *_: f"D:{stamp:%Y%m%d%H%M%S}+00'00'")
        major, minor = self._document._pdfVersion
        version = f"{major}.{minor}"
        # The comment of high bytes marks the file as binary for transfer tools.
        self._sink.write(f"%PDF-{version}\n%".encode() + bytes((0xE2, 0xE3, 0xCF, 0xD3)) + b"\n")

    @property
    def _document(self) -> Any:
        return cast(Any, self)._doc

    def ready(self, at_least: int = CHUNK_SIZE) -> bytes:
        """The bytes written so far, once there are ``at_least`` of them (else b"")."""
        return self._sink.take() if self._sink.pending >= at_least else b""

    def _emit(self, name: str) -> None:
        doc = self._document
        data = pdfdoc.PDFIndirectObject(name, doc.idToObject[name]).format(doc)
        doc.idToOffset[name] = self._sink.write(data)
        self._written.add(name)

    def showPage(self) -> None:  # noqa: N802 - reportlab's name
        """Finish the page and write it out, keeping only its name."""
        super().showPage()
        doc = self._document
        name = f"Page{doc.pageCounter - 1}"
        page = doc.idToObject[name]
        # The content stream, deflated (reportlab would add ASCII85 on top).
        content = pdfdoc.PDFStream(content=page.stream, filters=[pdfdoc.PDFZCompress])
        page.Contents = content
        self._emit(name)
        self._emit(getattr(content, pdfdoc.__InternalName__))
        stub = _WrittenPage(name)
        doc.idToObject[name] = stub
        doc.idToObject[getattr(content, pdfdoc.__InternalName__)] = stub
        doc.Pages.pages[-1] = stub

    def finish(self) -> bytes:
        """Write what only the end can know (fonts, page tree, catalog, xref); the last bytes."""
        if self._closed:
            raise RuntimeError("the document is already finished")
        self._closed = True
        if len(cast(Any, self)._code):
            self.showPage()
        doc = self._document
        # What PDFDocument.GetPDFData does before formatting.
        for font in doc.delayedFonts:
            font.addObjects(doc)
        doc.info.invariant = doc.invariant
        doc.info.digest(doc.signature)
        doc.Reference(doc.Catalog)
        doc.Reference(doc.info)
        doc.Outlines.prepare(doc, self)
        if doc.Outlines.ready < 0:
            doc.Catalog.Outlines = None
        # Objects may register further objects while they are formatted.
        number = 1
        while number in doc.numberToId:
            name = doc.numberToId[number]
            if name not in self._written:
                self._emit(name)
            number += 1
        names = [doc.numberToId[n] for n in range(1, number)]
        xref = pdfdoc.PDFCrossReferenceTable()
        xref.addsection(0, names)
        at = self._sink.write(xref.format(doc))
        trailer = pdfdoc.PDFTrailer(
            startxref=at,
            Size=number,
            Root=doc.Reference(doc.Catalog),
            Info=doc.Reference(doc.info),
            ID=doc.ID(),
        )
        self._sink.write(trailer.format(doc))
        return self._sink.take()


# --- what every report page carries -------------------------------------------------


@dataclass(frozen=True, slots=True)
class Masthead:
    """The header fields of an accountant report and the footer's report id."""

    title: str  # "Accountant summary"
    physician: str
    ba_numbers: tuple[str, ...]
    period: Period
    created_at: datetime
    report_id: uuid.UUID
    #: The basis line of a report that does not count by payment date (the
    #: scheduled ones); such a report shows no BA numbers line.
    basis: str | None = None
    #: Further labelled lines after the basis, in order.
    extra: tuple[tuple[str, str], ...] = ()
    #: The PDF's keywords; the accountant ones when None.
    keywords: str | None = None

    @property
    def heading(self) -> str:
        """``Meritum — Accountant summary``."""
        return f"Meritum \u2014 {self.title}"

    def fields(self) -> list[tuple[str, str]]:
        """The labelled lines under the heading, in order."""
        start, end = self.period.start.isoformat(), self.period.end.isoformat()
        generated = ("Generated", f"{alberta_time(self.created_at)} (America/Edmonton)")
        if self.basis is not None:
            return [
                ("Physician", self.physician),
                ("Period", f"{start} to {end}"),
                ("Basis", self.basis),
                *self.extra,
                generated,
            ]
        bas = ", ".join(self.ba_numbers) if self.ba_numbers else "none (no paid claims)"
        return [
            ("Physician", self.physician),
            ("BA numbers", bas),
            ("Period", f"{start} to {end}"),
            ("Basis", f"claims paid between {start} and {end} (cash basis, by payment date)"),
            *self.extra,
            generated,
        ]

    def running_line(self) -> str:
        """The second line of the short header on the pages after the first."""
        start, end = self.period.start.isoformat(), self.period.end.isoformat()
        if self.basis is not None:
            return f"{start} to {end} \u00b7 {self.basis}"
        bas = ", ".join(self.ba_numbers) or "none"
        return f"Claims paid between {start} and {end} \u00b7 BA numbers {bas}"


def set_metadata(canvas: Canvas, masthead: Masthead, subject: str) -> None:
    """Title, author, subject and keywords: the report's kind and period, never PHI."""
    start, end = masthead.period.start.isoformat(), masthead.period.end.isoformat()
    canvas.setTitle(f"{masthead.title}, {start} to {end}")
    canvas.setAuthor("Meritum")
    canvas.setSubject(subject)
    canvas.setKeywords(
        masthead.keywords or f"Meritum, accountant, AHCIP, WCB, cash basis, {start}, {end}"
    )
    canvas.setCreator("Meritum Reports")
    # Two reports of the same data differ in their id; so should their file ids.
    cast(Any, canvas)._doc.updateSignature(str(masthead.report_id))


@dataclass(frozen=True, slots=True)
class Page:
    """Geometry of a page: its size and the margins of the area text goes in."""

    size: tuple[float, float]
    margin: float = 40
    footer: float = 30

    @property
    def left(self) -> float:
        return self.margin

    @property
    def right(self) -> float:
        return self.size[0] - self.margin

    @property
    def top(self) -> float:
        return self.size[1] - self.margin

    @property
    def bottom(self) -> float:
        """The lowest line body text may use, above the footer."""
        return self.margin + self.footer

    @property
    def width(self) -> float:
        return self.right - self.left


HEADING_SIZE: Final = 15
FIELD_SIZE: Final = 9
FIELD_LEADING: Final = 12.5
LABEL_WIDTH: Final = 72


def masthead_lines(masthead: Masthead, page: Page) -> list[tuple[str, list[str]]]:
    """Each field with its value wrapped to the page: what the header draws."""
    room = page.width - LABEL_WIDTH
    return [(label, wrap(value, REGULAR, FIELD_SIZE, room)) for label, value in masthead.fields()]


def masthead_height(masthead: Masthead, page: Page) -> float:
    """How much of the first page the full header takes, rule included."""
    lines = sum(len(values) for _, values in masthead_lines(masthead, page))
    return HEADING_SIZE + 10 + lines * FIELD_LEADING + 12


def draw_masthead(canvas: Canvas, masthead: Masthead, page: Page) -> float:
    """The full header at the top of the first page; returns the y below it."""
    y = page.top - HEADING_SIZE
    canvas.setFillColor(INK)
    canvas.setFont(BOLD, HEADING_SIZE)
    canvas.drawString(page.left, y, masthead.heading)
    y -= 10
    for label, values in masthead_lines(masthead, page):
        for index, value in enumerate(values):
            y -= FIELD_LEADING
            if index == 0:
                canvas.setFillColor(MUTED)
                canvas.setFont(REGULAR, FIELD_SIZE)
                canvas.drawString(page.left, y, label)
            canvas.setFillColor(INK)
            canvas.setFont(BOLD if label == "Physician" else REGULAR, FIELD_SIZE)
            canvas.drawString(page.left + LABEL_WIDTH, y, value)
    y -= 7
    rule(canvas, page.left, page.right, y, weight=0.8, color=ACCENT)
    return y - 5


RUNNING_SIZE: Final = 8
RUNNING_HEIGHT: Final = 2 * 11 + 10


def draw_running_head(canvas: Canvas, masthead: Masthead, page: Page) -> float:
    """The short header of the pages after the first; returns the y below it."""
    y = page.top - RUNNING_SIZE
    canvas.setFillColor(INK)
    canvas.setFont(BOLD, RUNNING_SIZE)
    first = fit(f"{masthead.heading} \u2014 {masthead.physician}", BOLD, RUNNING_SIZE, page.width)
    canvas.drawString(page.left, y, first)
    y -= 11
    canvas.setFillColor(MUTED)
    canvas.setFont(REGULAR, RUNNING_SIZE)
    second = masthead.running_line()
    canvas.drawString(page.left, y, fit(second, REGULAR, RUNNING_SIZE, page.width))
    y -= 6
    rule(canvas, page.left, page.right, y, weight=0.5, color=RULE)
    return y - 4


def fit(text: str, font: str, size: float, max_width: float) -> str:
    """``text`` on one line, shortened with an ellipsis if it must be (running heads only)."""
    text = clean(text)
    if width(text, font, size) <= max_width:
        return text
    while text and width(text + "\u2026", font, size) > max_width:
        text = text[:-1]
    return text.rstrip() + "\u2026"


def draw_footer(canvas: Canvas, masthead: Masthead, page: Page, number: int, total: int) -> None:
    """ "Confidential", the report id and "page N of M", on every page."""
    y = page.margin
    rule(canvas, page.left, page.right, y + 11, weight=0.5, color=RULE)
    canvas.setFillColor(MUTED)
    canvas.setFont(BOLD, 7.5)
    canvas.drawString(page.left, y, "Confidential")
    canvas.setFont(REGULAR, 7.5)
    canvas.drawCentredString((page.left + page.right) / 2, y, f"Report {masthead.report_id}")
    canvas.drawRightString(page.right, y, f"page {number} of {total}")


def rule(canvas: Canvas, x1: float, x2: float, y: float, *, weight: float, color: Color) -> None:
    """A horizontal line."""
    canvas.setStrokeColor(color)
    canvas.setLineWidth(weight)
    canvas.line(x1, y, x2, y)


def new_canvas(*, masthead: Masthead, page: Page, subject: str) -> StreamingCanvas:
    """A streaming canvas with the fonts registered and the metadata set."""
    register_fonts()
    canvas = StreamingCanvas(pagesize=page.size, created_at=masthead.created_at)
    set_metadata(canvas, masthead, subject)
    return canvas


__all__ = [
    "ALBERTA",
    "BOLD",
    "REGULAR",
    "Masthead",
    "Page",
    "StreamingCanvas",
    "alberta_time",
    "count",
    "draw_footer",
    "draw_masthead",
    "draw_running_head",
    "money",
    "month_name",
    "new_canvas",
    "wrap",
]
