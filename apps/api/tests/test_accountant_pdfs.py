"""The accountant PDF summary and detail, read back with tools that share no code with them.

For every physician of a seed and three periods, the text pypdf extracts is
compared with sums written here in plain SQL; pikepdf (qpdf) checks the
structure; the detail's lines and totals are compared with the CSV's.
"""

from __future__ import annotations

import csv
import io
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any, cast

import pikepdf
import pypdf
import pytest
from sqlalchemy import Connection, Engine, text
from sqlalchemy.orm import Session

from factories import add_paid_claims, add_provider
from meritum_api.domains.analytics.generators import GenerationRequest, generator_for
from meritum_api.domains.analytics.keys import storage_key
from meritum_api.seed import seed_demo
from meritum_shared.constants.analytics import ReportFormat, ReportType

TODAY = date(2026, 11, 15)
#: 15:30 UTC is 08:30 in Edmonton in November (MST), 09:30 in summer (MDT).
CREATED = datetime(2026, 11, 16, 15, 30, tzinfo=UTC)
GENERATED = "2026-11-16 08:30 MST (America/Edmonton)"
PERIODS = {
    "month": (date(2026, 9, 1), date(2026, 9, 30)),
    "quarter": (date(2026, 4, 1), date(2026, 6, 30)),
    "two years": (date(2024, 11, 16), date(2026, 11, 15)),
}
PDF_TYPES = [ReportType.ACCOUNTANT_SUMMARY, ReportType.ACCOUNTANT_DETAIL]
MONEY = r"−?\$[0-9,]+\.[0-9]{2}"
DAY = r"[0-9]{4}-[0-9]{2}-[0-9]{2}"
MONTHS = (
    "January", "February", "March", "April", "May", "June", "July", "August",
    "September", "October", "November", "December",
)  # fmt: skip


@pytest.fixture(scope="module")
def physicians(engine: Engine) -> list[uuid.UUID]:
    seed_demo(engine, physicians=3, years=2, claims_per_month=60, seed=11, today=TODAY)
    with engine.connect() as conn:
        return list(
            conn.execute(text("SELECT provider_id FROM providers ORDER BY billing_number"))
            .scalars()
            .all()
        )


def _generate(
    conn: Connection,
    provider_id: uuid.UUID,
    report_type: ReportType,
    period: tuple[date, date],
    *,
    report_format: ReportFormat = ReportFormat.PDF,
    report_id: uuid.UUID | None = None,
    created_at: datetime = CREATED,
) -> bytes:
    request = GenerationRequest(
        report_id=report_id or uuid.UUID(int=7),
        provider_id=provider_id,
        report_type=report_type,
        format=report_format,
        period_start=period[0],
        period_end=period[1],
        created_at=created_at,
    )
    return b"".join(generator_for(report_type, report_format)(conn, request))


@dataclass(frozen=True)
class Read:
    """A PDF as the independent tools see it."""

    pages: list[str]  # pypdf's plain text of each page
    layout: str  # pypdf's layout-mode text of the whole document, lines as on the page
    metadata: dict[str, str]


def _read(data: bytes) -> Read:
    assert data.startswith(b"%PDF-")
    with pikepdf.open(io.BytesIO(data)) as pdf:
        assert pdf.check_pdf_syntax() == []
        pages = len(pdf.pages)
        # Every font is embedded TrueType: nothing depends on the reader's fonts.
        for page in pdf.pages:
            for font in page.Resources.Font.values():
                descendant = font.get("/DescendantFonts", [font])[0]
                descriptor = descendant.get("/FontDescriptor")
                assert descriptor is not None, font
                assert "/FontFile2" in descriptor, font
    reader = pypdf.PdfReader(io.BytesIO(data))
    assert len(reader.pages) == pages
    metadata = {str(k): str(v) for k, v in (reader.metadata or {}).items()}
    return Read(
        pages=[page.extract_text() for page in reader.pages],
        layout="\n".join(page.extract_text(extraction_mode="layout") for page in reader.pages),
        metadata=metadata,
    )


def _amount(value: str) -> Decimal:
    return Decimal(value.replace("−", "-").replace("$", "").replace(",", ""))


def _line(layout: str, label: str) -> list[list[str]]:
    """The values of every line starting with ``label`` (columns split on runs of spaces)."""
    found: list[list[str]] = []
    for line in layout.splitlines():
        if line.startswith(label + "  "):  # the label, then a gap to the next column
            found.append(re.split(r"\s{2,}", line[len(label) :].strip()))
    return found


def _value(layout: str, label: str) -> str:
    lines = _line(layout, label)
    assert lines, f"no line {label!r}"
    return lines[0][-1]


def _scalar(conn: Connection, sql: str, **params: Any) -> Any:
    return conn.execute(text(sql), params).scalar_one()


PAID = "provider_id = :p AND state IN ('PAID', 'ADJUSTED') AND payment_date BETWEEN :s AND :e"


def _identity(conn: Connection, provider_id: uuid.UUID) -> str:
    name: str = _scalar(
        conn,
        "SELECT first_name || ' ' || last_name FROM providers WHERE provider_id = :p",
        p=provider_id,
    )
    return name


def _assert_masthead(
    read: Read, title: str, legal_name: str, bas: list[str], s: date, e: date
) -> None:
    first = read.layout.split("Date of service")[0].split("Totals")[0]
    assert first.startswith(f"Meritum — {title}\n")
    assert _line(first, "Physician") == [[legal_name]]
    assert _line(first, "BA numbers") == [[", ".join(bas) if bas else "none (no paid claims)"]]
    assert _line(first, "Period") == [[f"{s} to {e}"]]
    assert _line(first, "Basis") == [
        [f"claims paid between {s} and {e} (cash basis, by payment date)"]
    ]
    assert _line(first, "Generated") == [[GENERATED]]
    total = len(read.pages)
    for number, page in enumerate(read.pages, start=1):
        assert f"page {number} of {total}" in page
        assert "Confidential" in page
        assert f"Report {uuid.UUID(int=7)}" in page


def _assert_metadata(read: Read, title: str, s: date, e: date, provider_id: uuid.UUID) -> None:
    assert read.metadata["/Title"] == f"{title}, {s} to {e}"
    assert read.metadata["/Author"] == "Meritum"
    assert read.metadata["/Subject"]
    assert read.metadata["/Keywords"]
    dates = {"/CreationDate", "/ModDate"}
    everything = " ".join(v for k, v in read.metadata.items() if k not in dates)
    assert not re.search(r"[0-9]{9}", everything)  # no PHN, no billing number
    assert storage_key(provider_id=provider_id, report_id=uuid.UUID(int=7)) not in (everything)
    assert str(provider_id) not in everything


def _assert_no_patient_data(conn: Connection, provider_id: uuid.UUID, read: Read) -> None:
    phns = conn.execute(
        text("SELECT phn FROM patients WHERE provider_id = :p"), {"p": provider_id}
    ).scalars()
    whole = "\n".join(read.pages)
    assert not any(phn in whole for phn in phns)


@pytest.mark.parametrize("period_name", list(PERIODS))
@pytest.mark.parametrize("index", [0, 1, 2])
def test_summary_figures_equal_independent_sql_sums(
    engine: Engine, physicians: list[uuid.UUID], index: int, period_name: str
) -> None:
    provider_id = physicians[index]
    s, e = PERIODS[period_name]
    params = {"p": provider_id, "s": s, "e": e}
    with engine.connect() as conn:
        read = _read(_generate(conn, provider_id, ReportType.ACCOUNTANT_SUMMARY, (s, e)))
        sql = {
            "revenue": f"SELECT coalesce(sum(assessed_fee), 0) FROM claims WHERE {PAID}",
            "count": f"SELECT count(*) FROM claims WHERE {PAID}",
            "ahcip": f"SELECT coalesce(sum(assessed_fee), 0) FROM claims WHERE {PAID} "
            "AND claim_type = 'AHCIP'",
            "wcb": f"SELECT coalesce(sum(assessed_fee), 0) FROM claims WHERE {PAID} "
            "AND claim_type = 'WCB'",
            "rrnp": f"SELECT coalesce(sum(rrnp_premium), 0) FROM claims WHERE {PAID}",
            "rrnp claims": f"SELECT count(*) FROM claims WHERE {PAID} AND rrnp_premium > 0",
            "adjustments": f"SELECT coalesce(sum(assessed_fee - submitted_fee), 0) FROM claims "
            f"WHERE {PAID} AND state = 'ADJUSTED'",
            "written off": "SELECT coalesce(sum(submitted_fee), 0) FROM claims WHERE "
            "provider_id = :p AND state = 'WRITTEN_OFF' AND date_of_service BETWEEN :s AND :e",
        }
        want = {name: _scalar(conn, query, **params) for name, query in sql.items()}
        by_ba = conn.execute(
            text(
                f"SELECT ba_number, sum(assessed_fee) FROM claims WHERE {PAID} "
                "GROUP BY ba_number ORDER BY 2 DESC, 1"
            ),
            params,
        ).all()
        by_location = conn.execute(
            text(
                f"SELECT location, sum(assessed_fee) FROM claims WHERE {PAID} "
                "GROUP BY location ORDER BY 2 DESC, 1"
            ),
            params,
        ).all()
        by_month: dict[str, Decimal] = dict(
            conn.execute(
                text(
                    "SELECT to_char(payment_date, 'YYYY-MM'), sum(assessed_fee) FROM claims "
                    f"WHERE {PAID} GROUP BY 1"
                ),
                params,
            ).all()
        )
        legal_name = _identity(conn, provider_id)
        _assert_no_patient_data(conn, provider_id, read)

    layout = read.layout
    assert want["count"] > 0
    assert want["ahcip"] + want["wcb"] == want["revenue"]
    _assert_masthead(read, "Accountant summary", legal_name, sorted(b for b, _ in by_ba), s, e)
    _assert_metadata(read, "Accountant summary", s, e, provider_id)
    assert 1 <= len(read.pages) <= 4
    # "Total revenue" heads the figures and closes each breakdown: the same sum each time.
    totals = [_amount(values[-1]) for values in _line(layout, "Total revenue")]
    assert totals == [want["revenue"]] * 4
    assert _value(layout, "Claim count") == f"{want['count']:,}"
    assert _amount(_value(layout, "AHCIP revenue")) == want["ahcip"]
    assert _amount(_value(layout, "WCB revenue")) == want["wcb"]
    assert _amount(_value(layout, "RRNP premium total")) == want["rrnp"]
    rrnp_note = _line(layout, "RRNP premium total")[0][0]
    assert ("not applicable" in rrnp_note) is (want["rrnp claims"] == 0)
    assert _amount(_value(layout, "Adjustments")) == want["adjustments"]
    if want["adjustments"] < 0:  # paid less than billed: a true minus sign
        assert _value(layout, "Adjustments").startswith("−$")
    assert _amount(_value(layout, "Written off")) == want["written off"]
    # Breakdowns, largest first, with accented names exactly as stored.
    section = layout.split("Revenue by BA number")[1].split("Revenue by location")[0]
    assert [(v[0], _amount(v[-1])) for v in _rows(section, [b for b, _ in by_ba])] == by_ba
    section = layout.split("Revenue by location")[1].split("Revenue by month")[0]
    locations = [loc for loc, _ in by_location]
    assert [(v[0], _amount(v[-1])) for v in _rows(section, locations)] == by_location
    section = layout.split("Revenue by month")[1]
    months = _months(s, e)
    shown = {label: _amount(value) for label, value in _month_rows(section)}
    assert list(shown) == [f"{MONTHS[m.month - 1]} {m.year}" for m in months]
    assert list(shown.values()) == [by_month.get(f"{m:%Y-%m}", Decimal("0.00")) for m in months]
    assert "Physician services billed to AHCIP and WCB are exempt from GST." in layout


def _rows(section: str, keys: list[str]) -> list[list[str]]:
    """The lines of a breakdown, in the order they appear, for the keys expected there."""
    found = []
    for line in section.splitlines():
        values = re.split(r"\s{2,}", line.strip())
        if values[0] in keys and re.fullmatch(MONEY, values[-1]):
            found.append(values)
    return found


def _month_rows(section: str) -> Iterator[tuple[str, str]]:
    for line in section.splitlines():
        match = re.match(rf"^({'|'.join(MONTHS)}) ([0-9]{{4}})\s.*?({MONEY})$", line.strip())
        if match:
            yield f"{match[1]} {match[2]}", match[3]


def _months(s: date, e: date) -> list[date]:
    months, month = [], s.replace(day=1)
    while month <= e:
        months.append(month)
        month = date(month.year + month.month // 12, month.month % 12 + 1, 1)
    return months


DETAIL_LINE = re.compile(
    rf"^({DAY})\s+(\S+)\s+(?:(\S+)\s+)?({MONEY})\s+({MONEY})\s+({DAY})\s+([0-9]+)\s+(.+?)\s+"
    r"(AHCIP|WCB)$"
)
SUBTOTAL = re.compile(rf"^Subtotal (\w+ [0-9]{{4}})\s+({MONEY})\s+({MONEY})\s+([0-9,]+) claims?$")
GRAND_TOTAL = re.compile(rf"^Total of the period\s+({MONEY})\s+({MONEY})\s+([0-9,]+) claims?$")


@pytest.mark.parametrize("period_name", list(PERIODS))
@pytest.mark.parametrize("index", [0, 1, 2])
def test_detail_lines_and_totals_equal_the_csv(
    engine: Engine, physicians: list[uuid.UUID], index: int, period_name: str
) -> None:
    provider_id = physicians[index]
    s, e = PERIODS[period_name]
    with engine.connect() as conn:
        data = _generate(conn, provider_id, ReportType.ACCOUNTANT_DETAIL, (s, e))
        exported = _generate(
            conn,
            provider_id,
            ReportType.ACCOUNTANT_SUMMARY,
            (s, e),
            report_format=ReportFormat.CSV,
        )
        monthly = {
            f"{MONTHS[int(month) - 1]} {year}": (submitted, assessed, n)
            for year, month, submitted, assessed, n in conn.execute(
                text(
                    "SELECT extract(year FROM payment_date)::int, "
                    "extract(month FROM payment_date)::int, sum(submitted_fee), "
                    f"sum(assessed_fee), count(*) FROM claims WHERE {PAID} GROUP BY 1, 2"
                ),
                {"p": provider_id, "s": s, "e": e},
            )
        }
        legal_name = _identity(conn, provider_id)
        read = _read(data)
        _assert_no_patient_data(conn, provider_id, read)
    rows = list(csv.reader(io.StringIO(exported.decode("utf-8-sig"))))[1:]
    assert rows
    lines = [m for m in map(DETAIL_LINE.match, read.layout.splitlines()) if m]
    assert len(lines) == len(rows)
    for match, row in zip(lines, rows, strict=True):
        served, hsc, modifiers, submitted, assessed, paid, ba, location, kind = match.groups()
        assert (served, hsc, modifiers or "", paid, ba, kind) == (
            row[0], row[1], row[2], row[5], row[6], row[8],
        )  # fmt: skip
        assert (_amount(submitted), _amount(assessed)) == (Decimal(row[3]), Decimal(row[4]))
        assert row[7].startswith(location)  # a long location continues on the next line
    subtotals = {
        m[1]: (_amount(m[2]), _amount(m[3]), int(m[4].replace(",", "")))
        for m in map(SUBTOTAL.match, read.layout.splitlines())
        if m
    }
    assert subtotals == monthly
    grand = [m for m in map(GRAND_TOTAL.match, read.layout.splitlines()) if m]
    assert len(grand) == 1
    assert _amount(grand[0][1]) == sum((Decimal(r[3]) for r in rows), Decimal(0))
    assert _amount(grand[0][2]) == sum((Decimal(r[4]) for r in rows), Decimal(0))
    assert int(grand[0][3].replace(",", "")) == len(rows)
    bas = sorted({row[6] for row in rows})
    _assert_masthead(read, "Accountant detail", legal_name, bas, s, e)
    _assert_metadata(read, "Accountant detail", s, e, provider_id)
    # The column headings are repeated at the top of every page.
    for page in read.pages:
        assert "Date of service" in page
        assert "Assessed fee" in page


def test_the_detail_total_equals_the_summary(engine: Engine, physicians: list[uuid.UUID]) -> None:
    period = PERIODS["two years"]
    with engine.connect() as conn:
        summary = _read(_generate(conn, physicians[0], ReportType.ACCOUNTANT_SUMMARY, period))
        detail = _read(_generate(conn, physicians[0], ReportType.ACCOUNTANT_DETAIL, period))
    grand = next(m for m in map(GRAND_TOTAL.match, detail.layout.splitlines()) if m)
    assert _value(summary.layout, "Total revenue") == grand[2]
    assert _value(summary.layout, "Claim count") == grand[3]
    assert len(detail.pages) > 20


@pytest.mark.parametrize(
    "report_type", [ReportType.ACCOUNTANT_SUMMARY, ReportType.ACCOUNTANT_DETAIL]
)
def test_same_data_gives_the_same_bytes(
    engine: Engine, physicians: list[uuid.UUID], report_type: ReportType
) -> None:
    period = PERIODS["quarter"]
    with engine.connect() as conn:
        first = _generate(conn, physicians[1], report_type, period)
        second = _generate(conn, physicians[1], report_type, period)
        other = _generate(conn, physicians[1], report_type, period, report_id=uuid.uuid4())
    assert first == second
    assert other != first  # another report: another id in its footer and file id


@pytest.mark.parametrize(
    "report_type", [ReportType.ACCOUNTANT_SUMMARY, ReportType.ACCOUNTANT_DETAIL]
)
def test_an_empty_period_is_one_page_that_says_so(
    engine: Engine, physicians: list[uuid.UUID], report_type: ReportType
) -> None:
    period = (date(2020, 1, 1), date(2020, 3, 31))
    with engine.connect() as conn:
        read = _read(_generate(conn, physicians[0], report_type, period))
    assert len(read.pages) == 1
    assert "No paid claims in this period" in read.pages[0]
    assert "page 1 of 1" in read.pages[0]
    assert _line(read.layout, "BA numbers") == [["none (no paid claims)"]]


def test_summary_without_rural_claims_says_rrnp_is_not_applicable(session: Session) -> None:
    provider_id = add_provider(session, first_name="Zoë", last_name="Nguyễn-Łukaszewski")
    add_paid_claims(
        session, provider_id=provider_id, count=30, first_payment=date(2026, 1, 5), days=40
    )
    read = _read(
        _generate(
            session.connection(),
            provider_id,
            ReportType.ACCOUNTANT_SUMMARY,
            (date(2026, 1, 1), date(2026, 3, 31)),
            created_at=datetime(2026, 7, 1, 15, 30, tzinfo=UTC),
        )
    )
    assert _line(read.layout, "Physician") == [["Zoë Nguyễn-Łukaszewski"]]
    assert _line(read.layout, "Generated") == [["2026-07-01 09:30 MDT (America/Edmonton)"]]
    figure = _line(read.layout, "RRNP premium total")[0]
    assert figure[-1] == "$0.00"
    assert figure[0].startswith("not applicable")
    assert _line(read.layout, 'Clinique Saint-Éloi, "Suite" 2')[0][-1] == "$1,203.60"


def test_long_names_and_locations_wrap_instead_of_being_cut(session: Session) -> None:
    long_name = ("Thi Hương Éloïse-Kateřina", "Nguyễn-Łukaszewski Ó Súilleabháin van der Berg, Jr.")
    provider_id = add_provider(session, first_name=long_name[0], last_name=long_name[1])
    add_paid_claims(
        session, provider_id=provider_id, count=60, first_payment=date(2026, 1, 5), days=40
    )
    location = "Fort Vermilion, St. Theresa Health Centre — Northern Lights Regional Wing, Suite 2"
    session.execute(
        text("UPDATE claims SET location = :l, modifiers = 'CMGP,AFHR,EV,BMI,TM,COMP,SURC' "
             "WHERE provider_id = :p AND date_of_service < DATE '2026-01-10'"),
        {"l": location, "p": provider_id},
    )  # fmt: skip
    data = _generate(
        session.connection(),
        provider_id,
        ReportType.ACCOUNTANT_DETAIL,
        (date(2026, 1, 1), date(2026, 3, 31)),
    )
    read = _read(data)
    assert _line(read.layout, "Physician") == [[" ".join(long_name)]]
    words = " ".join(read.pages)
    # Every word of the long location and every modifier is on the page, none cut.
    for word in location.split():
        assert word in words
    # The modifiers break after a comma, never inside a code.
    assert "CMGP,AFHR," in words
    tokens = set(re.split(r"[\s,]+", words))
    assert {"CMGP", "AFHR", "EV", "BMI", "TM", "COMP", "SURC"} <= tokens
    assert len([m for m in map(DETAIL_LINE.match, read.layout.splitlines()) if m]) == 60


def test_a_detail_stopped_early_releases_its_cursor(
    engine: Engine, physicians: list[uuid.UUID]
) -> None:
    request = GenerationRequest(
        report_id=uuid.uuid4(),
        provider_id=physicians[0],
        report_type=ReportType.ACCOUNTANT_DETAIL,
        format=ReportFormat.PDF,
        period_start=PERIODS["two years"][0],
        period_end=PERIODS["two years"][1],
        created_at=CREATED,
    )
    with engine.connect() as conn:
        stream = generator_for(ReportType.ACCOUNTANT_DETAIL, ReportFormat.PDF)(conn, request)
        first = next(stream)
        assert first.startswith(b"%PDF-")
        assert conn.exec_driver_sql("SELECT count(*) FROM pg_cursors").scalar_one() == 1
        cast(Any, stream).close()
        assert conn.exec_driver_sql("SELECT count(*) FROM pg_cursors").scalar_one() == 0


def test_a_long_detail_is_streamed_in_chunks(engine: Engine, physicians: list[uuid.UUID]) -> None:
    request = GenerationRequest(
        report_id=uuid.uuid4(),
        provider_id=physicians[0],
        report_type=ReportType.ACCOUNTANT_DETAIL,
        format=ReportFormat.PDF,
        period_start=PERIODS["two years"][0],
        period_end=PERIODS["two years"][1],
        created_at=CREATED,
    )
    with engine.connect() as conn:
        chunks = list(generator_for(ReportType.ACCOUNTANT_DETAIL, ReportFormat.PDF)(conn, request))
    assert len(chunks) >= 2
    assert all(len(chunk) >= 64 * 1024 for chunk in chunks[:-1])
    _read(b"".join(chunks))
