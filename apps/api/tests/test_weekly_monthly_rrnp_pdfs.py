"""The weekly summary, monthly performance and RRNP quarterly PDFs, read back independently.

Every figure pypdf extracts is compared with a sum written here in plain
SQL over the seed (Edmonton days read with ``AT TIME ZONE``, states at a
period's end with a window over the claim history), and over rows inserted
for the edges: a rejection at 23:30 on a Sunday in Edmonton, deadlines on
the first and last day of the look-ahead. pikepdf (qpdf) checks the
structure; no PHN reaches the text or the metadata.
"""

from __future__ import annotations

import io
import re
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pikepdf
import pypdf
import pytest
from sqlalchemy import Connection, Engine, insert, text
from sqlalchemy.orm import Session

from factories import add_provider, report_values
from meritum_api.db.cluster import fast_root
from meritum_api.deps import Deps, Role, build_deps
from meritum_api.domains.analytics.generation import Outcome, generate_report
from meritum_api.domains.analytics.generators import (
    SCHEDULED,
    GenerationRequest,
    generator_for,
    is_supported,
    supported,
)
from meritum_api.domains.analytics.keys import storage_key
from meritum_api.seed import seed_demo
from meritum_shared.constants.analytics import ReportFormat, ReportType
from meritum_shared.schemas.db import generated_reports
from workers import worker_settings

EDMONTON = ZoneInfo("America/Edmonton")
TODAY = date(2026, 11, 15)
CREATED = datetime(2026, 11, 16, 13, 0, tzinfo=UTC)
GENERATED = "2026-11-16 06:00 MST (America/Edmonton)"
REPORT_ID = uuid.UUID(int=12)
WEEKS = [(date(2026, 11, 2), date(2026, 11, 8)), (date(2026, 10, 26), date(2026, 11, 1))]
MONTH = (date(2026, 10, 1), date(2026, 10, 31))
QUARTER = (date(2026, 7, 1), date(2026, 9, 30))
MONEY = r"−?\$[0-9,]+\.[0-9]{2}"
MONTHS = (
    "January", "February", "March", "April", "May", "June", "July", "August",
    "September", "October", "November", "December",
)  # fmt: skip
EDMONTON_DAY = "(({col}) AT TIME ZONE 'America/Edmonton')::date BETWEEN :s AND :e"
PAID = "provider_id = :p AND state IN ('PAID', 'ADJUSTED') AND payment_date BETWEEN :s AND :e"
SCHEDULED_TYPES = [
    ReportType.WEEKLY_SUMMARY,
    ReportType.MONTHLY_PERFORMANCE,
    ReportType.RRNP_QUARTERLY,
]


@pytest.fixture(scope="module")
def physicians(engine: Engine) -> list[uuid.UUID]:
    seed_demo(engine, physicians=2, years=2, claims_per_month=150, seed=11, today=TODAY)
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
    report_id: uuid.UUID = REPORT_ID,
) -> bytes:
    request = GenerationRequest(
        report_id=report_id,
        provider_id=provider_id,
        report_type=report_type,
        format=ReportFormat.PDF,
        period_start=period[0],
        period_end=period[1],
        created_at=CREATED,
    )
    return b"".join(generator_for(report_type, ReportFormat.PDF)(conn, request))


@dataclass(frozen=True)
class Read:
    """A PDF as the independent tools see it."""

    pages: list[str]
    layout: str
    metadata: dict[str, str]


def _read(data: bytes) -> Read:
    assert data.startswith(b"%PDF-")
    with pikepdf.open(io.BytesIO(data)) as pdf:
        assert pdf.check_pdf_syntax() == []
        pages = len(pdf.pages)
        for page in pdf.pages:  # every font embedded (TrueType subsets)
            for font in page.Resources.Font.values():
                descendant = font.get("/DescendantFonts", [font])[0]
                assert "/FontFile2" in descendant.FontDescriptor, font
    reader = pypdf.PdfReader(io.BytesIO(data))
    assert len(reader.pages) == pages
    return Read(
        pages=[page.extract_text() for page in reader.pages],
        layout="\n".join(page.extract_text(extraction_mode="layout") for page in reader.pages),
        metadata={str(k): str(v) for k, v in (reader.metadata or {}).items()},
    )


def _amount(value: str) -> Decimal:
    return Decimal(value.replace("−", "-").replace("$", "").replace(",", ""))


def _number(value: str) -> int:
    return int(value.replace(",", ""))


def _values(layout: str, label: str) -> list[list[str]]:
    """The values of every line starting with ``label`` (columns split on runs of spaces)."""
    return [
        re.split(r"\s{2,}", line[len(label) :].strip())
        for line in layout.splitlines()
        if line.startswith(label + "  ")
    ]


def _section(layout: str, start: str, end: str | None = None) -> str:
    after = layout.split(start, 1)[1]
    return after.split(end, 1)[0] if end else after


def _scalar(conn: Connection, sql: str, **params: Any) -> Any:
    return conn.execute(text(sql), params).scalar_one()


def _rate(part: int, whole: int) -> str:
    if whole == 0:
        return "n/a"
    return f"{(Decimal(part * 100) / whole).quantize(Decimal('0.1'), ROUND_HALF_UP)}%"


def _assert_frame(read: Read, title: str, period: tuple[date, date], name: str) -> None:
    assert read.layout.startswith(f"Meritum — {title}\n")
    assert _values(read.layout, "Physician")[0] == [name]
    assert _values(read.layout, "Period")[0] == [f"{period[0]} to {period[1]}"]
    assert _values(read.layout, "Basis")
    assert _values(read.layout, "Generated")[0] == [GENERATED]
    total = len(read.pages)
    for number, page in enumerate(read.pages, start=1):
        assert f"page {number} of {total}" in page
        assert "Confidential" in page
        assert f"Report {REPORT_ID}" in page
    assert read.metadata["/Title"] == f"{title}, {period[0]} to {period[1]}"
    assert read.metadata["/Author"] == "Meritum"
    everything = " ".join(
        v for k, v in read.metadata.items() if k not in {"/CreationDate", "/ModDate"}
    )
    assert not re.search(r"[0-9]{9}", everything)  # no PHN, no billing number


def _assert_no_phn(conn: Connection, provider_id: uuid.UUID, read: Read) -> None:
    phns = conn.execute(
        text("SELECT phn FROM patients WHERE provider_id = :p"), {"p": provider_id}
    ).scalars()
    whole = "\n".join(read.pages)
    assert not any(phn in whole for phn in phns)
    # Nor any nine-digit number at all (the footer's report id aside).
    assert not re.search(r"[0-9]{9}", whole.replace(str(REPORT_ID), ""))


def _name(conn: Connection, provider_id: uuid.UUID) -> str:
    name: str = _scalar(
        conn,
        "SELECT first_name || ' ' || last_name FROM providers WHERE provider_id = :p",
        p=provider_id,
    )
    return name


# --- independent sums ------------------------------------------------------------------


def _activity(conn: Connection, p: uuid.UUID, s: date, e: date) -> dict[str, Any]:
    def entered(*states: str) -> int:
        found: int = _scalar(
            conn,
            "SELECT count(*) FROM claim_audit_history WHERE provider_id = :p "
            f"AND to_state = ANY(:states) AND {EDMONTON_DAY.format(col='occurred_at')}",
            p=p,
            s=s,
            e=e,
            states=list(states),
        )
        return found

    created = _scalar(
        conn,
        f"SELECT count(*) FROM claims WHERE provider_id = :p AND "
        f"{EDMONTON_DAY.format(col='created_at')}",
        p=p,
        s=s,
        e=e,
    )
    revenue = _scalar(
        conn, f"SELECT coalesce(sum(assessed_fee), 0) FROM claims WHERE {PAID}", p=p, s=s, e=e
    )
    return {
        "created": created,
        "submitted": entered("SUBMITTED"),
        "assessed": entered("ASSESSED"),
        "paid": entered("PAID", "ADJUSTED"),
        "rejected": entered("REJECTED"),
        "revenue": revenue,
    }


#: Each claim's state at the end of the Edmonton day :asof: its last history entry up to then.
STATE_AT = """
    SELECT DISTINCT ON (h.claim_id) h.claim_id, h.to_state AS state_then
    FROM claim_audit_history h
    WHERE h.provider_id = :p AND h.to_state IS NOT NULL
      AND (h.occurred_at AT TIME ZONE 'America/Edmonton')::date <= :asof
    ORDER BY h.claim_id, h.occurred_at DESC, h.event_id DESC
"""


def _deadlines(conn: Connection, p: uuid.UUID, e: date) -> list[tuple[Any, ...]]:
    rows = conn.execute(
        text(
            f"SELECT c.date_of_service + 90, c.hsc_code, c.submitted_fee, c.claim_id "
            f"FROM claims c JOIN ({STATE_AT}) st USING (claim_id) "
            "WHERE c.provider_id = :p AND c.claim_type = 'AHCIP' "
            "AND st.state_then IN ('DRAFT', 'QUEUED') "
            "AND c.date_of_service + 90 BETWEEN :asof + 1 AND :asof + 14 "
            "ORDER BY c.date_of_service, c.created_at, c.claim_id"
        ),
        {"p": p, "asof": e},
    ).all()
    return [tuple(row) for row in rows]


def _aging(conn: Connection, p: uuid.UUID, e: date) -> dict[str, tuple[int, Decimal]]:
    rows = conn.execute(
        text(
            "SELECT CASE WHEN :asof - c.date_of_service <= 30 THEN '0-30' "
            "WHEN :asof - c.date_of_service <= 60 THEN '31-60' "
            "WHEN :asof - c.date_of_service <= 90 THEN '61-90' ELSE '90+' END, "
            "count(*), sum(c.submitted_fee) "
            f"FROM claims c JOIN ({STATE_AT}) st USING (claim_id) "
            "WHERE c.provider_id = :p AND st.state_then IN ('SUBMITTED', 'ASSESSED') "
            "AND c.date_of_service <= :asof GROUP BY 1"
        ),
        {"p": p, "asof": e},
    ).all()
    return {bracket: (n, amount) for bracket, n, amount in rows}


# --- weekly summary ----------------------------------------------------------------------

DEADLINE_ROW = re.compile(
    rf"^([0-9]{{4}}-[0-9]{{2}}-[0-9]{{2}})\s+([0-9]+)\s+([0-9]{{4}}-[0-9]{{2}}-[0-9]{{2}})\s+"
    rf"(\S+)\s+.+?\s+(DRAFT|QUEUED)\s+([0-9a-f]{{8}})\s+({MONEY})$"
)


@pytest.mark.parametrize("week", WEEKS, ids=["plain week", "week ending on the DST change"])
@pytest.mark.parametrize("index", [0, 1])
def test_weekly_summary_figures_equal_independent_sql(
    engine: Engine, physicians: list[uuid.UUID], index: int, week: tuple[date, date]
) -> None:
    provider_id = physicians[index]
    s, e = week
    before = (s - timedelta(days=7), e - timedelta(days=7))
    with engine.connect() as conn:
        read = _read(_generate(conn, provider_id, ReportType.WEEKLY_SUMMARY, week))
        now, then = _activity(conn, provider_id, s, e), _activity(conn, provider_id, *before)
        deadlines = _deadlines(conn, provider_id, e)
        deadlines_before = _deadlines(conn, provider_id, before[1])
        _assert_frame(read, "Weekly summary", week, _name(conn, provider_id))
        _assert_no_phn(conn, provider_id, read)
    layout = read.layout
    assert now["created"] > 0
    assert now["submitted"] > 0
    assert _values(layout, "Compared with")[0] == [f"the week before, {before[0]} to {before[1]}"]
    for label, key in [
        ("Claims created", "created"),
        ("Claims submitted", "submitted"),
        ("Claims assessed", "assessed"),
        ("Claims paid (PAID or ADJUSTED)", "paid"),
        ("Claims rejected", "rejected"),
    ]:
        assert [_number(v) for v in _values(layout, label)[0]] == [now[key], then[key]], label
    revenue = _values(layout, "Revenue paid (Σ assessed fee)")[0]
    assert [_amount(v) for v in revenue] == [now["revenue"], then["revenue"]]
    outcomes = [d["assessed"] + d["paid"] + d["rejected"] for d in (now, then)]
    assert _values(layout, "Rejection rate")[0] == [
        _rate(now["rejected"], outcomes[0]),
        _rate(then["rejected"], outcomes[1]),
    ]
    approaching = _values(layout, "Claims approaching their AHCIP deadline")[0]
    assert [_number(v) for v in approaching] == [len(deadlines), len(deadlines_before)]
    at_stake = [_amount(v) for v in _values(layout, "Submitted fees at stake")[0]]
    assert at_stake == [
        sum((d[2] for d in deadlines), Decimal("0.00")),
        sum((d[2] for d in deadlines_before), Decimal("0.00")),
    ]
    listed = [m.groups() for m in map(DEADLINE_ROW.match, layout.splitlines()) if m]
    assert [(r[0], r[3], _amount(r[6]), r[5]) for r in listed] == [
        (d[0].isoformat(), d[1], d[2], d[3].hex[:8]) for d in deadlines
    ]
    for row in listed:  # days left from the week's last day, 1 to 14
        assert int(row[1]) == (date.fromisoformat(row[0]) - e).days
        assert 1 <= int(row[1]) <= 14


def _claim(
    session: Session,
    provider_id: uuid.UUID,
    patient_id: uuid.UUID,
    *,
    served: date,
    events: list[tuple[datetime, str | None, str]],
    claim_type: str = "AHCIP",
    fee: str = "41.73",
    rejection_code: str | None = None,
) -> uuid.UUID:
    """A claim with its history: ``events`` are (instant, from state, to state), in order."""
    state = events[-1][2]
    paid = state in ("PAID", "ADJUSTED")
    claim_id: uuid.UUID = session.execute(
        text(
            "INSERT INTO claims (provider_id, patient_id, claim_type, state, date_of_service, "
            "hsc_code, submitted_fee, assessed_fee, payment_date, ba_number, location, "
            "rejection_code, wcb_claim_number, created_at, updated_at) VALUES (:p, :patient, "
            ":kind, :state, :served, '03.03A', :fee, :assessed, :paid_on, '12345', "
            "'Clinique médicale Saint-Éloi, Edmonton', :code, :wcb, :created, :updated) "
            "RETURNING claim_id"
        ),
        {
            "p": provider_id,
            "patient": patient_id,
            "kind": claim_type,
            "state": state,
            "served": served,
            "fee": Decimal(fee),
            "assessed": Decimal(fee) if paid else None,
            "paid_on": events[-1][0].date() if paid else None,
            "code": rejection_code,
            "wcb": "1234567" if claim_type == "WCB" else None,
            "created": events[0][0],
            "updated": events[-1][0],
        },
    ).scalar_one()
    for at, old, new in events:
        session.execute(
            text(
                "INSERT INTO claim_audit_history (claim_id, provider_id, occurred_at, action, "
                "from_state, to_state, actor) VALUES (:c, :p, :at, :action, :old, :new, "
                "'physician')"
            ),
            {
                "c": claim_id,
                "p": provider_id,
                "at": at,
                "action": "CREATED" if old is None else "STATE_CHANGED",
                "old": old,
                "new": new,
            },
        )
    return claim_id


def _patient(session: Session, provider_id: uuid.UUID) -> uuid.UUID:
    patient_id: uuid.UUID = session.execute(
        text(
            "INSERT INTO patients (provider_id, phn, first_name, last_name, date_of_birth) "
            "VALUES (:p, '123456789', 'Zoë', 'D''Arcy', DATE '1970-01-01') RETURNING patient_id"
        ),
        {"p": provider_id},
    ).scalar_one()
    return patient_id


def _edmonton(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=EDMONTON)


def test_a_rejection_at_23_30_on_sunday_belongs_to_that_week(session: Session) -> None:
    provider_id = add_provider(session, first_name="Søren", last_name="Ó Súilleabháin")
    patient_id = _patient(session, provider_id)
    sunday, monday = date(2026, 11, 29), date(2026, 11, 30)
    # 23:30 on Sunday in Edmonton is 06:30 on Monday in UTC.
    late = _edmonton(sunday, 23, 30)
    assert late.astimezone(UTC).date() == monday
    submitted = _edmonton(date(2026, 11, 25), 18)
    _claim(
        session,
        provider_id,
        patient_id,
        served=date(2026, 11, 20),
        events=[
            (_edmonton(date(2026, 11, 20), 9), None, "DRAFT"),
            (_edmonton(date(2026, 11, 20), 10), "DRAFT", "QUEUED"),
            (submitted, "QUEUED", "SUBMITTED"),
            (late, "SUBMITTED", "REJECTED"),
        ],
        rejection_code="31",
    )
    # And one at 00:30 on Monday, which is the next week's.
    _claim(
        session,
        provider_id,
        patient_id,
        served=date(2026, 11, 21),
        events=[
            (_edmonton(date(2026, 11, 21), 9), None, "DRAFT"),
            (_edmonton(date(2026, 11, 21), 10), "DRAFT", "QUEUED"),
            (submitted, "QUEUED", "SUBMITTED"),
            (_edmonton(monday, 0, 30), "SUBMITTED", "REJECTED"),
        ],
        rejection_code="31",
    )
    conn = session.connection()
    week = _read(
        _generate(conn, provider_id, ReportType.WEEKLY_SUMMARY, (date(2026, 11, 23), sunday))
    )
    nxt = _read(
        _generate(conn, provider_id, ReportType.WEEKLY_SUMMARY, (monday, date(2026, 12, 6)))
    )
    assert _values(week.layout, "Claims rejected")[0] == ["1", "0"]
    assert _values(week.layout, "Claims submitted")[0] == ["2", "0"]
    assert _values(week.layout, "Rejection rate")[0] == ["100.0%", "n/a"]
    assert _values(nxt.layout, "Claims rejected")[0] == ["1", "1"]
    assert _values(nxt.layout, "Claims created")[0] == ["0", "0"]


def test_the_deadline_window_is_the_14_days_after_the_week(session: Session) -> None:
    provider_id = add_provider(session, first_name="Renée", last_name="Lévesque")
    patient_id = _patient(session, provider_id)
    s, e = date(2026, 11, 23), date(2026, 11, 29)

    def draft(
        served: date, *, then: list[tuple[datetime, str, str]] | None = None, **kw: Any
    ) -> uuid.UUID:
        created = _edmonton(served, 9)
        return _claim(
            session,
            provider_id,
            patient_id,
            served=served,
            events=[(created, None, "DRAFT"), *(then or [])],
            **kw,
        )

    first = draft(e + timedelta(days=1) - timedelta(days=90), fee="10.00")  # due Monday
    last = draft(e + timedelta(days=14) - timedelta(days=90), fee="20.00")  # due in 14 days
    queued = draft(
        e + timedelta(days=5) - timedelta(days=90),
        fee="30.00",
        then=[(_edmonton(e, 23, 59), "DRAFT", "QUEUED")],
    )
    draft(e - timedelta(days=90), fee="1.00")  # due on the week's last day: past
    draft(e + timedelta(days=15) - timedelta(days=90), fee="2.00")  # beyond the 14 days
    draft(e + timedelta(days=3) - timedelta(days=90), fee="3.00", claim_type="WCB")
    # Submitted at 23:30 on Sunday: no longer waiting when the week ends.
    draft(
        e + timedelta(days=2) - timedelta(days=90),
        fee="4.00",
        then=[
            (_edmonton(e, 23, 0), "DRAFT", "QUEUED"),
            (_edmonton(e, 23, 30), "QUEUED", "SUBMITTED"),
        ],
    )
    # Submitted on Monday 00:30: still a draft-or-queued claim at the week's end.
    late = draft(
        e + timedelta(days=7) - timedelta(days=90),
        fee="5.00",
        then=[
            (_edmonton(e, 22, 0), "DRAFT", "QUEUED"),
            (_edmonton(e + timedelta(days=1), 0, 30), "QUEUED", "SUBMITTED"),
        ],
    )
    read = _read(_generate(session.connection(), provider_id, ReportType.WEEKLY_SUMMARY, (s, e)))
    listed = [m.groups() for m in map(DEADLINE_ROW.match, read.layout.splitlines()) if m]
    assert [(r[1], r[4], r[5], r[6]) for r in listed] == [
        ("1", "DRAFT", first.hex[:8], "$10.00"),
        ("5", "QUEUED", queued.hex[:8], "$30.00"),
        ("7", "QUEUED", late.hex[:8], "$5.00"),
        ("14", "DRAFT", last.hex[:8], "$20.00"),
    ]
    assert _values(read.layout, "Claims approaching their AHCIP deadline")[0][0] == "4"
    assert _values(read.layout, "Submitted fees at stake")[0][0] == "$65.00"
    assert "123456789" not in "\n".join(read.pages)


# --- monthly performance -------------------------------------------------------------------


def _shares(conn: Connection, column: str, p: uuid.UUID, s: date, e: date) -> dict[str, Decimal]:
    rows = conn.execute(
        text(f"SELECT {column}, sum(assessed_fee) FROM claims WHERE {PAID} GROUP BY 1"),
        {"p": p, "s": s, "e": e},
    ).all()
    return dict(rows)


def _table(section: str, keys: list[str]) -> dict[str, list[str]]:
    """The rows of a table by their first cell, in order; a long key may wrap after a word."""
    found: dict[str, list[str]] = {}
    for line in section.splitlines():
        values = re.split(r"\s{2,}", line.strip())
        if len(values) < 2:
            continue
        matches = [k for k in keys if k == values[0]] or [
            k for k in keys if k.startswith(values[0] + " ")
        ]
        if len(matches) == 1:
            found[matches[0]] = values[1:]
    return found


@pytest.mark.parametrize(
    ("period", "before", "names"),
    [
        (MONTH, (date(2026, 9, 1), date(2026, 9, 30)), ("This month", "the month before")),
        (QUARTER, (date(2026, 4, 1), date(2026, 6, 30)), ("This quarter", "the quarter before")),
    ],
    ids=["month", "quarter"],
)
@pytest.mark.parametrize("index", [0, 1])
def test_monthly_performance_figures_equal_independent_sql(
    engine: Engine,
    physicians: list[uuid.UUID],
    index: int,
    period: tuple[date, date],
    before: tuple[date, date],
    names: tuple[str, str],
) -> None:
    p = physicians[index]
    (s, e), (bs, be) = period, before
    with engine.connect() as conn:
        read = _read(_generate(conn, p, ReportType.MONTHLY_PERFORMANCE, period))
        _assert_frame(read, "Monthly performance", period, _name(conn, p))
        _assert_no_phn(conn, p, read)
        kinds = [_shares(conn, "claim_type", p, *span) for span in (period, before)]
        bas = [_shares(conn, "ba_number", p, *span) for span in (period, before)]
        places = [_shares(conn, "location", p, *span) for span in (period, before)]
        totals = [sum(k.values(), Decimal("0.00")) for k in kinds]
        counts = [
            _scalar(conn, f"SELECT count(*) FROM claims WHERE {PAID}", p=p, s=a, e=b)
            for a, b in (period, before)
        ]
        hsc = conn.execute(
            text(
                "SELECT hsc_code, count(*) FILTER (WHERE payment_date BETWEEN :s AND :e), "
                "coalesce(sum(assessed_fee) FILTER (WHERE payment_date BETWEEN :s AND :e), 0), "
                "count(*) FILTER (WHERE payment_date BETWEEN :bs AND :be), "
                "coalesce(sum(assessed_fee) FILTER (WHERE payment_date BETWEEN :bs AND :be), 0) "
                "FROM claims WHERE provider_id = :p AND state IN ('PAID', 'ADJUSTED') "
                "GROUP BY 1 HAVING count(*) FILTER (WHERE payment_date BETWEEN :s AND :e) > 0 "
                "ORDER BY 3 DESC, 1 LIMIT 10"
            ),
            {"p": p, "s": s, "e": e, "bs": bs, "be": be},
        ).all()
        activity = [_activity(conn, p, *span) for span in (period, before)]
        codes = conn.execute(
            text(
                "SELECT c.rejection_code, "
                "count(*) FILTER (WHERE (h.occurred_at AT TIME ZONE 'America/Edmonton')::date "
                "BETWEEN :s AND :e), "
                "count(*) FILTER (WHERE (h.occurred_at AT TIME ZONE 'America/Edmonton')::date "
                "BETWEEN :bs AND :be) "
                "FROM claim_audit_history h JOIN claims c USING (claim_id) "
                "WHERE h.provider_id = :p AND h.to_state = 'REJECTED' GROUP BY 1"
            ),
            {"p": p, "s": s, "e": e, "bs": bs, "be": be},
        ).all()
        described: dict[str, str] = dict(
            conn.execute(text("SELECT code, description FROM rejection_codes")).all()
        )
        coach = [
            conn.execute(
                text(
                    "SELECT count(*), count(*) FILTER (WHERE status = 'accepted'), "
                    "count(*) FILTER (WHERE status = 'dismissed'), "
                    "count(*) FILTER (WHERE status = 'pending'), "
                    "coalesce(sum(revenue_impact) FILTER (WHERE status = 'accepted'), 0) "
                    "FROM ai_coach_suggestions WHERE provider_id = :p AND "
                    + EDMONTON_DAY.format(col="created_at")
                ),
                {"p": p, "s": a, "e": b},
            ).one()
            for a, b in (period, before)
        ]
        aging = [_aging(conn, p, e), _aging(conn, p, be)]
    layout = read.layout
    now_name, phrase = names
    assert _values(layout, "Compared with")[0] == [f"{phrase}, {bs} to {be}"]
    assert counts[0] > 0
    assert counts[1] > 0
    # Revenue by claim type, BA number and location, each beside the previous period.
    section = _section(layout, "Revenue by claim type", "Revenue by BA number")
    assert now_name in section
    zero = Decimal("0.00")
    for kind in ("AHCIP", "WCB"):
        assert [_amount(v) for v in _values(section, kind)[0]] == [
            kinds[0].get(kind, zero),
            kinds[1].get(kind, zero),
        ]
    assert [_number(v) for v in _values(section, "Paid claims")[0]] == counts
    assert [_amount(v) for v in _values(section, "Total revenue")[0]] == totals
    for title, end, shares in (
        ("Revenue by BA number", "Revenue by location", bas),
        ("Revenue by location", "Top 10 HSC codes", places),
    ):
        section = _section(layout, title, end)
        keys = sorted(set(shares[0]) | set(shares[1]))
        shown = _table(section, keys)
        assert set(shown) == set(keys), title
        for key in keys:
            assert [_amount(v) for v in shown[key]] == [
                shares[0].get(key, zero),
                shares[1].get(key, zero),
            ]
        assert [_amount(v) for v in _values(section, "Total revenue")[0]] == totals
    # The top ten HSC codes, in order.
    section = _section(layout, "Top 10 HSC codes", "Rejection analysis")
    rows = [
        re.split(r"\s{2,}", line.strip())
        for line in section.splitlines()
        if re.match(r"^[0-9]{2}\.[0-9]{2}[A-Z]+\s", line.strip())
    ]
    assert [(r[0], _number(r[1]), _amount(r[2]), _number(r[3]), _amount(r[4])) for r in rows] == [
        tuple(row) for row in hsc
    ]
    # Rejections: the rate, and the codes most frequent first.
    section = _section(layout, "Rejection analysis", "AI Coach summary")
    outcomes = [a["assessed"] + a["paid"] + a["rejected"] for a in activity]
    assert [_number(v) for v in _values(section, "Assessed outcomes")[0]] == outcomes
    assert [_number(v) for v in _values(section, "Rejected")[0]] == [
        a["rejected"] for a in activity
    ]
    assert _values(section, "Rejection rate")[0] == [
        _rate(activity[0]["rejected"], outcomes[0]),
        _rate(activity[1]["rejected"], outcomes[1]),
    ]
    expected_codes = sorted(
        [(code, n, m) for code, n, m in codes if n > 0], key=lambda c: (-c[1], c[0])
    )[:10]
    assert expected_codes
    shown_codes = _table(section, [c[0] for c in expected_codes])
    assert [(code, *map(_number, shown_codes[code][-2:])) for code, _, _ in expected_codes] == (
        expected_codes
    )
    assert list(shown_codes) == [c[0] for c in expected_codes]
    for code, _, _ in expected_codes:  # the description's first line, as the seed's table has it
        assert described[code].startswith(shown_codes[code][0]), code
        assert len(shown_codes[code][0]) >= min(20, len(described[code]))
    # The AI Coach.
    section = _section(layout, "AI Coach summary", "Claim aging of unpaid claims")
    for position, label in enumerate(
        ["Suggestions made", "Accepted", "Dismissed", "Still pending"]
    ):
        assert [_number(v) for v in _values(section, label)[0]] == [
            coach[0][position],
            coach[1][position],
        ], label
    recovered = _values(section, "Revenue recovered by accepted ones")[0]
    assert [_amount(v) for v in recovered] == [coach[0][4], coach[1][4]]
    # Aging of the claims unpaid at each period's end.
    section = _section(layout, "Claim aging of unpaid claims")
    assert f"Claims at {e}" in section
    assert f"Claims at {be}" in section
    for bracket in ("0-30", "31-60", "61-90", "90+"):
        values = _values(section, f"{bracket} days")[0]
        want = [aging[0].get(bracket, (0, zero)), aging[1].get(bracket, (0, zero))]
        assert (_number(values[0]), _amount(values[1])) == want[0], bracket
        assert (_number(values[2]), _amount(values[3])) == want[1], bracket
    total = _values(section, "Total unpaid")[0]
    for position, ages in enumerate(aging):
        assert _number(total[2 * position]) == sum(n for n, _ in ages.values())
        assert _amount(total[2 * position + 1]) == sum((a for _, a in ages.values()), zero)
    assert sum(n for n, _ in aging[0].values()) > 0
    assert 1 <= len(read.pages) <= 4


def test_rejection_codes_are_described_from_the_reference_table(session: Session) -> None:
    provider_id = add_provider(session)
    patient_id = _patient(session, provider_id)
    for code, day in (("Q31", 3), ("Q31", 4), ("QEB", 5), ("QZZ", 6)):
        served = date(2026, 10, day)
        _claim(
            session,
            provider_id,
            patient_id,
            served=served,
            events=[
                (_edmonton(served, 9), None, "DRAFT"),
                (_edmonton(served, 10), "DRAFT", "QUEUED"),
                (_edmonton(served, 18), "QUEUED", "SUBMITTED"),
                (_edmonton(served + timedelta(days=9), 12), "SUBMITTED", "REJECTED"),
            ],
            rejection_code=code,
        )
    session.execute(
        text(
            "INSERT INTO rejection_codes (code, claim_type, description, corrective_guidance) "
            "VALUES ('Q31', 'AHCIP', 'Service not covered for the patient''s age', 'Check it'), "
            "('QEB', 'AHCIP', 'Patient not eligible on the date of service', 'Confirm coverage')"
        )
    )
    read = _read(
        _generate(session.connection(), provider_id, ReportType.MONTHLY_PERFORMANCE, MONTH)
    )
    # A code the reference table lacks is still counted, and says so.
    assert _table(read.layout, ["Q31", "QEB", "QZZ"]) == {
        "Q31": ["Service not covered for the patient's age", "2", "0"],
        "QEB": ["Patient not eligible on the date of service", "1", "0"],
        "QZZ": ["not in the reference table of codes", "1", "0"],
    }


# --- RRNP quarterly -------------------------------------------------------------------------


@pytest.mark.parametrize("quarter", [QUARTER, (date(2026, 4, 1), date(2026, 6, 30))])
@pytest.mark.parametrize("index", [0, 1])
def test_rrnp_quarterly_figures_equal_independent_sql(
    engine: Engine, physicians: list[uuid.UUID], index: int, quarter: tuple[date, date]
) -> None:
    p = physicians[index]
    s, e = quarter
    params = {"p": p, "s": s, "e": e}
    with engine.connect() as conn:
        read = _read(_generate(conn, p, ReportType.RRNP_QUARTERLY, quarter))
        _assert_frame(read, "RRNP quarterly", quarter, _name(conn, p))
        _assert_no_phn(conn, p, read)
        cells = conn.execute(
            text(
                "SELECT location, extract(month FROM payment_date)::int, sum(rrnp_premium) "
                f"FROM claims WHERE {PAID} AND rrnp_premium > 0 GROUP BY 1, 2"
            ),
            params,
        ).all()
        by_location = conn.execute(
            text(
                "SELECT location, count(*), sum(rrnp_premium) FROM claims "
                f"WHERE {PAID} AND rrnp_premium > 0 GROUP BY 1 ORDER BY 3 DESC, 1"
            ),
            params,
        ).all()
        by_month: dict[int, Decimal] = dict(
            conn.execute(
                text(
                    "SELECT extract(month FROM payment_date)::int, sum(rrnp_premium) "
                    f"FROM claims WHERE {PAID} GROUP BY 1"
                ),
                params,
            ).all()
        )
        total = _scalar(conn, f"SELECT sum(rrnp_premium) FROM claims WHERE {PAID}", **params)
        claims = _scalar(
            conn, f"SELECT count(*) FROM claims WHERE {PAID} AND rrnp_premium > 0", **params
        )
    layout = read.layout
    assert total > 0
    assert by_location
    assert "payment date" in _values(layout, "Basis")[0][0]
    assert [_amount(v) for v in _values(layout, "Total RRNP premium")[0]] == [total]
    assert _values(layout, "Paid claims with an RRNP premium")[0] == [f"{claims:,}"]
    months = [s.month, s.month + 1, s.month + 2]
    zero = Decimal("0.00")
    section = _section(layout, "RRNP premium by location", "RRNP premium by month")
    for name in (f"{MONTHS[m - 1][:3]} {s.year}" for m in months):
        assert name in section
    shown = _table(section, [row[0] for row in by_location] + ["Total"])
    assert list(shown) == [row[0] for row in by_location] + ["Total"]
    premium = {(loc, month): amount for loc, month, amount in cells}
    for location, n, amount in by_location:
        values = shown[location]
        assert [_amount(v) for v in values[:3]] == [
            premium.get((location, m), zero) for m in months
        ]
        assert (_number(values[3]), _amount(values[4])) == (n, amount)
    assert [_amount(v) for v in shown["Total"][:3]] == [by_month.get(m, zero) for m in months]
    assert (_number(shown["Total"][3]), _amount(shown["Total"][4])) == (claims, total)
    section = _section(layout, "RRNP premium by month")
    for m in months:
        assert _amount(_values(section, f"{MONTHS[m - 1]} {s.year}")[0][-1]) == by_month.get(
            m, zero
        )
    assert _values(section, "Total")[0] == [f"{claims:,}", f"${total:,}"]


# --- every scheduled kind --------------------------------------------------------------------

EMPTY = {
    ReportType.WEEKLY_SUMMARY: (
        (date(2020, 1, 6), date(2020, 1, 12)),
        "No claim activity in this week",
    ),
    ReportType.MONTHLY_PERFORMANCE: (
        (date(2020, 1, 1), date(2020, 1, 31)),
        "No claim activity in this period",
    ),
    ReportType.RRNP_QUARTERLY: (
        (date(2020, 1, 1), date(2020, 3, 31)),
        "No RRNP premium in this period",
    ),
}
PERIOD_OF = {
    ReportType.WEEKLY_SUMMARY: WEEKS[0],
    ReportType.MONTHLY_PERFORMANCE: MONTH,
    ReportType.RRNP_QUARTERLY: QUARTER,
}


@pytest.mark.parametrize("report_type", SCHEDULED_TYPES)
def test_an_empty_period_is_one_valid_page_that_says_so(
    engine: Engine, physicians: list[uuid.UUID], report_type: ReportType
) -> None:
    period, message = EMPTY[report_type]
    with engine.connect() as conn:
        read = _read(_generate(conn, physicians[0], report_type, period))
    assert len(read.pages) == 1
    assert message in read.pages[0]
    assert "page 1 of 1" in read.pages[0]


@pytest.mark.parametrize("report_type", SCHEDULED_TYPES)
def test_same_data_gives_the_same_bytes(
    engine: Engine, physicians: list[uuid.UUID], report_type: ReportType
) -> None:
    period = PERIOD_OF[report_type]
    with engine.connect() as conn:
        first = _generate(conn, physicians[1], report_type, period)
        second = _generate(conn, physicians[1], report_type, period)
        other = _generate(conn, physicians[1], report_type, period, report_id=uuid.uuid4())
    assert first == second
    assert other != first


@pytest.mark.parametrize("report_type", SCHEDULED_TYPES)
def test_a_table_that_turns_a_page_repeats_its_headings(
    session: Session, report_type: ReportType
) -> None:
    provider_id = add_provider(session)
    patient_id = _patient(session, provider_id)
    period = PERIOD_OF[report_type]
    # Sixty locations: each kind's longest table runs over a page.
    for n in range(60):
        if report_type is ReportType.WEEKLY_SUMMARY:  # still a draft, due soon after the week
            served = period[1] + timedelta(days=1 + n % 14) - timedelta(days=90)
            events: list[tuple[datetime, str | None, str]] = [(_edmonton(served, 9), None, "DRAFT")]
        else:  # paid in the period
            served = period[0] - timedelta(days=20)
            paid_on = _edmonton(period[0] + timedelta(days=n % 28), 6)
            events = [
                (_edmonton(served, 9), None, "DRAFT"),
                (_edmonton(served, 10), "DRAFT", "QUEUED"),
                (_edmonton(served, 18), "QUEUED", "SUBMITTED"),
                (paid_on - timedelta(hours=1), "SUBMITTED", "ASSESSED"),
                (paid_on, "ASSESSED", "PAID"),
            ]
        claim_id = _claim(session, provider_id, patient_id, served=served, events=events)
        session.execute(
            text("UPDATE claims SET location = :l, rrnp_premium = 5.07 WHERE claim_id = :c"),
            {"l": f"Clinique rurale n° {n:02d}, Fort Vermilion", "c": claim_id},
        )
    read = _read(_generate(session.connection(), provider_id, report_type, period))
    assert len(read.pages) >= 2
    title, heading = {
        ReportType.WEEKLY_SUMMARY: (
            "Claims approaching their AHCIP submission deadline",
            "Deadline",
        ),
        ReportType.MONTHLY_PERFORMANCE: ("Revenue by location", "Location"),
        ReportType.RRNP_QUARTERLY: ("RRNP premium by location", "Location"),
    }[report_type]
    assert f"{title} (continued)\n{heading}" in read.pages[1]
    text_ = "\n".join(read.pages)
    for n in range(60):
        assert f"Clinique rurale n° {n:02d}" in text_


def test_scheduled_kinds_are_generated_but_never_requested_on_demand() -> None:
    assert not set(SCHEDULED) & supported()
    for report_type in SCHEDULED_TYPES:
        pair = (report_type, ReportFormat.PDF)
        assert pair in SCHEDULED
        assert generator_for(*pair) is SCHEDULED[pair]
        assert not is_supported(*pair)
        assert pair not in supported()


@pytest.fixture(scope="module")
def deps(db_url: str) -> Iterator[Deps]:
    with tempfile.TemporaryDirectory(prefix="meritum-scheduled-", dir=fast_root()) as path:
        built = build_deps(
            worker_settings(db_url, Path(path) / "reports"), db_url, role=Role.COMMAND
        )
        yield built
        built.close()


@pytest.mark.parametrize("report_type", SCHEDULED_TYPES)
def test_a_scheduled_report_row_is_generated_by_the_worker_path(
    deps: Deps, physicians: list[uuid.UUID], report_type: ReportType
) -> None:
    provider_id = physicians[0]
    period = PERIOD_OF[report_type]
    report_id = uuid.uuid4()
    key = storage_key(provider_id=provider_id, report_id=report_id)
    with deps.session_factory.begin() as session:
        session.execute(
            insert(generated_reports).values(
                **report_values(
                    provider_id,
                    report_id=report_id,
                    file_path=key,
                    report_type=report_type,
                    format=ReportFormat.PDF,
                    period_start=period[0],
                    period_end=period[1],
                    scheduled=True,
                    download_link_expires_at=datetime.now(UTC) + timedelta(days=90),
                )
            )
        )
    outcome = generate_report(deps=deps, report_id=report_id, is_final_attempt=lambda exc: True)
    assert outcome is Outcome.READY
    with deps.engine.connect() as conn:
        status = _scalar(
            conn, "SELECT status FROM generated_reports WHERE report_id = :r", r=report_id
        )
    assert status == "ready"
    read = _read(b"".join(deps.storage.read(key)))
    assert read.metadata["/Title"].endswith(f"{period[0]} to {period[1]}")
    assert f"Report {report_id}" in read.pages[0]
