"""The rejection digest and ``has_rejections``, read back with tools that share no code with them.

Every line and figure of the PDF is compared with plain SQL over the seed
that takes the rejection day with ``AT TIME ZONE`` (the product uses a range
of instants); pikepdf checks the structure.
"""

from __future__ import annotations

import io
import re
import uuid
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pikepdf
import pypdf
import pytest
from sqlalchemy import Connection, Engine, text
from sqlalchemy.orm import Session

from factories import add_provider
from meritum_api.context import AuthContext
from meritum_api.domains.analytics import figures
from meritum_api.domains.analytics.generators import GenerationRequest, generator_for
from meritum_api.seed import seed_demo
from meritum_shared.constants.analytics import ReportFormat, ReportType

TODAY = date(2026, 11, 15)
CREATED = datetime(2026, 11, 16, 13, 0, tzinfo=UTC)  # 06:00 MST
REPORT_ID = uuid.UUID("5f0c3e2a-9b7d-4c1e-8a6f-d2b4e1c7a9f3")
MONEY = r"−?\$[0-9,]+\.[0-9]{2}"
DAY = r"[0-9]{4}-[0-9]{2}-[0-9]{2}"
LINE = re.compile(
    rf"^({DAY} [0-9]{{2}}:[0-9]{{2}} M[SD]T)\s+({DAY})\s+(AHCIP|WCB)\s+(\S+)\s+(?:(\S+)\s+)?"
    rf"({MONEY})\s+([A-Z0-9]+)$"
)
EXPECTED = """
SELECT to_char(h.occurred_at AT TIME ZONE 'America/Edmonton', 'YYYY-MM-DD HH24:MI'),
    c.date_of_service::text, c.claim_type, c.hsc_code, c.modifiers, c.submitted_fee,
    c.rejection_code, r.description, r.corrective_guidance, c.claim_id::text,
    c.wcb_claim_number, c.location
FROM claim_audit_history h JOIN claims c ON c.claim_id = h.claim_id
LEFT JOIN rejection_codes r ON r.code = c.rejection_code
WHERE h.provider_id = :p AND h.to_state = 'REJECTED'
    AND (h.occurred_at AT TIME ZONE 'America/Edmonton')::date BETWEEN :s AND :e
ORDER BY h.occurred_at, h.event_id
"""


@pytest.fixture(scope="module")
def physicians(engine: Engine) -> list[uuid.UUID]:
    seed_demo(engine, physicians=3, years=1, claims_per_month=150, seed=5, today=TODAY)
    with engine.connect() as conn:
        return list(
            conn.execute(text("SELECT provider_id FROM providers ORDER BY billing_number"))
            .scalars()
            .all()
        )


def _busiest_day(conn: Connection, provider_id: uuid.UUID) -> date:
    day: date = conn.execute(
        text(
            "SELECT (occurred_at AT TIME ZONE 'America/Edmonton')::date FROM claim_audit_history "
            "WHERE provider_id = :p AND to_state = 'REJECTED' GROUP BY 1 "
            "ORDER BY count(*) DESC, 1 LIMIT 1"
        ),
        {"p": provider_id},
    ).scalar_one()
    return day


def _generate(
    conn: Connection, provider_id: uuid.UUID, s: date, e: date, *, report_id: uuid.UUID = REPORT_ID
) -> bytes:
    request = GenerationRequest(
        report_id=report_id,
        provider_id=provider_id,
        report_type=ReportType.REJECTION_DIGEST,
        format=ReportFormat.PDF,
        period_start=s,
        period_end=e,
        created_at=CREATED,
    )
    return b"".join(generator_for(ReportType.REJECTION_DIGEST, ReportFormat.PDF)(conn, request))


def _read(data: bytes) -> tuple[list[str], str, dict[str, str]]:
    with pikepdf.open(io.BytesIO(data)) as pdf:
        assert pdf.check_pdf_syntax() == []
        for page in pdf.pages:
            for font in page.Resources.Font.values():
                descendant = font.get("/DescendantFonts", [font])[0]
                assert "/FontFile2" in descendant.FontDescriptor
    reader = pypdf.PdfReader(io.BytesIO(data))
    pages = [page.extract_text() for page in reader.pages]
    layout = "\n".join(page.extract_text(extraction_mode="layout") for page in reader.pages)
    metadata = {str(k): str(v) for k, v in (reader.metadata or {}).items()}
    return pages, layout, metadata


def _amount(value: str) -> Decimal:
    return Decimal(value.replace("−", "-").replace("$", "").replace(",", ""))


def _field(layout: str, label: str) -> str:
    values = [
        line[len(label) :].strip() for line in layout.splitlines() if line.startswith(label + "  ")
    ]
    assert len(values) == 1, (label, values)
    return values[0]


def _flat(text_: str) -> str:
    return " ".join(text_.split())


def _check(conn: Connection, provider_id: uuid.UUID, s: date, e: date) -> list[Any]:
    """Generate the digest and compare every line and figure with SQL; the expected lines."""
    want = conn.execute(text(EXPECTED), {"p": provider_id, "s": s, "e": e}).all()
    pages, layout, metadata = _read(_generate(conn, provider_id, s, e))
    shown = [m.groups() for m in map(LINE.match, map(str.strip, layout.splitlines())) if m]
    assert len(shown) == len(want)
    for got, row in zip(shown, want, strict=True):
        at, served, kind, hsc, modifiers, fee, code = got
        assert at[:16] == row[0]
        assert (served, kind, hsc, modifiers or "", code) == (
            row[1],
            row[2],
            row[3],
            row[4],
            row[6],
        )
        assert _amount(fee) == row[5]
    # Each rejection's description, guidance and claim reference, in order, none cut.
    whole = _flat("\n".join(pages))
    at = 0
    for row in want:
        if row[7] is None:
            parts = [f"Code {row[6]} is not in the reference table of explanatory codes."]
        else:
            parts = [row[7], f"To correct: {row[8]}"]
        for part in (*parts, f"Claim {row[9]}", row[11]):
            found = whole.find(_flat(part), at)
            assert found >= 0, part
            at = found
        if row[10] is not None:
            assert f"WCB claim {row[10]}" in whole
    # The summary: count and Σ submitted fee, overall and per code, from SQL.
    total = sum((row[5] for row in want), Decimal("0.00"))
    if want:
        assert re.search(rf"^Rejections\s.*\s{len(want):,}$", layout, re.M)
        submitted = re.findall(rf"^Submitted fees\s.*\s({MONEY})$", layout, re.M)
        assert [_amount(v) for v in submitted] == [total]
        per_code: dict[str, tuple[int, Decimal]] = {}
        for row in want:
            n, fees = per_code.get(row[6], (0, Decimal("0.00")))
            per_code[row[6]] = (n + 1, fees + row[5])
        section = layout.split("By explanatory code")[1].split("Rejected claims")[0]
        rows = re.findall(rf"^\s*([A-Z0-9]+)\s{{2,}}.*?\s([0-9,]+)\s+({MONEY})$", section, re.M)
        assert [(c, int(n), _amount(v)) for c, n, v in rows] == sorted(
            ((c, n, v) for c, (n, v) in per_code.items()), key=lambda t: (-t[1], t[0])
        )
        for page in pages:
            # The table's header repeats on every page.
            assert "HSC code" in page
            assert "Date of service" in page
    # The header and footer.
    assert pages[0].startswith("Meritum — Rejection digest")
    assert _field(layout, "Period") == f"{s} to {e}"
    days = f"on {s}" if s == e else f"from {s} to {e}"
    assert (
        _field(layout, "Basis") == f"by rejection date: claims rejected {days} (America/Edmonton)"
    )
    assert _field(layout, "Generated") == "2026-11-16 06:00 MST (America/Edmonton)"
    for number, page in enumerate(pages, start=1):
        assert f"page {number} of {len(pages)}" in page
        assert "Confidential" in page
    # No PHI: no PHN of the physician's patients in the text, none in the metadata.
    phns = conn.execute(
        text("SELECT phn FROM patients WHERE provider_id = :p"), {"p": provider_id}
    ).scalars()
    assert not any(phn in whole for phn in phns)
    assert metadata["/Title"] == f"Rejection digest, {s} to {e}"
    described = " ".join(v for k, v in metadata.items() if k not in {"/CreationDate", "/ModDate"})
    assert not re.search(r"[0-9]{9}", described)
    assert str(provider_id) not in described
    return list(want)


@pytest.mark.parametrize("index", [0, 1, 2])
def test_the_busiest_day_equals_independent_sql(
    engine: Engine, physicians: list[uuid.UUID], index: int
) -> None:
    with engine.connect() as conn:
        day = _busiest_day(conn, physicians[index])
        want = _check(conn, physicians[index], day, day)
        ctx = AuthContext(provider_id=physicians[index])
        assert figures.has_rejections(conn=conn, ctx=ctx, period=figures.Period(day, day))
    assert len(want) >= 2


@pytest.mark.parametrize(
    "period", [(date(2026, 10, 1), date(2026, 10, 31)), (date(2026, 11, 9), date(2026, 11, 15))]
)
def test_a_week_and_a_month_equal_independent_sql(
    engine: Engine, physicians: list[uuid.UUID], period: tuple[date, date]
) -> None:
    with engine.connect() as conn:
        want = _check(conn, physicians[0], *period)
    assert want
    assert {row[2] for row in want} <= {"AHCIP", "WCB"}


def test_an_empty_period_is_one_page_that_says_so(
    engine: Engine, physicians: list[uuid.UUID]
) -> None:
    day = date(2020, 1, 6)
    with engine.connect() as conn:
        assert not figures.has_rejections(
            conn=conn, ctx=AuthContext(provider_id=physicians[0]), period=figures.Period(day, day)
        )
        assert _check(conn, physicians[0], day, day) == []
        pages, _, _ = _read(_generate(conn, physicians[0], day, day))
    assert len(pages) == 1
    assert "No claims rejected in this period" in pages[0]


def test_same_data_gives_the_same_bytes(engine: Engine, physicians: list[uuid.UUID]) -> None:
    period = (date(2026, 10, 1), date(2026, 10, 31))
    with engine.connect() as conn:
        first = _generate(conn, physicians[1], *period)
        second = _generate(conn, physicians[1], *period)
        other = _generate(conn, physicians[1], *period, report_id=uuid.uuid4())
    assert first == second
    assert other != first


# --- the day of a rejection is Edmonton's ---------------------------------------------


def _claim(session: Session, provider_id: uuid.UUID, code: str, phn: str) -> uuid.UUID:
    patient = session.execute(
        text(
            "INSERT INTO patients (provider_id, phn, first_name, last_name, date_of_birth) "
            "VALUES (:p, :phn, 'Renée', 'Lévesque', DATE '1975-02-03') RETURNING patient_id"
        ),
        {"p": provider_id, "phn": phn},
    ).scalar_one()
    claim_id: uuid.UUID = session.execute(
        text(
            "INSERT INTO claims (provider_id, patient_id, claim_type, state, date_of_service, "
            "hsc_code, modifiers, submitted_fee, assessed_fee, ba_number, location, "
            "rejection_code) VALUES (:p, :patient, 'AHCIP', 'REJECTED', DATE '2026-11-10', "
            "'03.04A', 'CMGP,AFHR', 150.04, 0, '12345', "
            "'Fort Vermilion, St. Theresa Health Centre — Northern Lights Wing', :code) "
            "RETURNING claim_id"
        ),
        {"p": provider_id, "patient": patient, "code": code},
    ).scalar_one()
    return claim_id


def _change(
    session: Session, claim_id: uuid.UUID, provider_id: uuid.UUID, at: str, old: str, new: str
) -> None:
    session.execute(
        text(
            "INSERT INTO claim_audit_history (claim_id, provider_id, occurred_at, action, "
            "from_state, to_state, actor) VALUES (:c, :p, :at, 'STATE_CHANGED', :old, :new, "
            "'system:ahcip')"
        ),
        {"c": claim_id, "p": provider_id, "at": at, "old": old, "new": new},
    )


def test_has_rejections_counts_by_the_day_in_edmonton(session: Session) -> None:
    mine, other = add_provider(session), add_provider(session)
    claim = _claim(session, mine, "ZZ9", "123456789")
    # 23:30 MST on 14 November is 06:30 UTC on the 15th: rejected on the 14th.
    _change(session, claim, mine, "2026-11-15 06:30:00+00", "SUBMITTED", "REJECTED")
    # Written off on the 16th: not a rejection.
    _change(session, claim, mine, "2026-11-16 18:00:00+00", "REJECTED", "WRITTEN_OFF")
    # Another physician's rejection on the 15th.
    theirs = _claim(session, other, "05A", "987654321")
    _change(session, theirs, other, "2026-11-15 18:00:00+00", "SUBMITTED", "REJECTED")
    conn = session.connection()
    ctx = AuthContext(provider_id=mine)

    def rejected(s: date, e: date) -> bool:
        return figures.has_rejections(conn=conn, ctx=ctx, period=figures.Period(s, e))

    assert rejected(date(2026, 11, 14), date(2026, 11, 14))
    assert not rejected(date(2026, 11, 15), date(2026, 11, 15))
    assert not rejected(date(2026, 11, 16), date(2026, 11, 16))
    assert not rejected(date(2026, 11, 13), date(2026, 11, 13))
    assert rejected(date(2026, 11, 9), date(2026, 11, 15))
    assert figures.has_rejections(
        conn=conn,
        ctx=AuthContext(provider_id=other),
        period=figures.Period(*[date(2026, 11, 15)] * 2),
    )
    # The digest of the 14th lists it, with a code the reference table does not know.
    want = _check(conn, mine, date(2026, 11, 14), date(2026, 11, 14))
    assert [row[0] for row in want] == ["2026-11-14 23:30"]
    pages, _, _ = _read(_generate(conn, mine, date(2026, 11, 14), date(2026, 11, 14)))
    flat = _flat(pages[0])
    assert "Code ZZ9 is not in the reference table of explanatory codes." in flat
    assert "Fort Vermilion, St. Theresa Health Centre — Northern Lights Wing" in flat
    assert "Renée" not in flat
    assert "123456789" not in flat


def test_a_digest_stopped_early_releases_its_cursor(
    engine: Engine, physicians: list[uuid.UUID]
) -> None:
    request = GenerationRequest(
        report_id=REPORT_ID,
        provider_id=physicians[0],
        report_type=ReportType.REJECTION_DIGEST,
        format=ReportFormat.PDF,
        period_start=date(2026, 10, 1),
        period_end=date(2026, 10, 31),
        created_at=CREATED,
    )
    with engine.connect() as conn:
        stream = generator_for(ReportType.REJECTION_DIGEST, ReportFormat.PDF)(conn, request)
        assert next(stream).startswith(b"%PDF-")
        assert conn.exec_driver_sql("SELECT count(*) FROM pg_cursors").scalar_one() == 1
        stream.close()  # type: ignore[attr-defined]
        assert conn.exec_driver_sql("SELECT count(*) FROM pg_cursors").scalar_one() == 0
