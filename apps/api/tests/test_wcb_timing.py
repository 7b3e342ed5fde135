"""WCB timing: the tier deadline rule, the tier table, and the PDF read back with pypdf.

Deadlines are checked against dates written out by hand around Good Friday, a
weekend and Remembrance Day; the PDF's rows against an independent
computation (the ``holidays`` package and SQL, no code of the product's
calendar or figures) over the seed and over claims made for the purpose.
"""

from __future__ import annotations

import io
import re
import uuid
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import holidays
import pikepdf
import pypdf
import pytest
from sqlalchemy import Connection, Engine, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from factories import add_provider
from meritum_api.calendar import ALBERTA, BusinessCalendar
from meritum_api.context import AuthContext
from meritum_api.domains.analytics import figures
from meritum_api.domains.analytics.generators import (
    SCHEDULED,
    GenerationRequest,
    generator_for,
    is_supported,
    supported,
)
from meritum_api.seed import seed_demo
from meritum_shared.constants.analytics import ReportFormat, ReportType
from meritum_shared.constants.claims import WcbFeeTier

EDMONTON = ZoneInfo("America/Edmonton")
TODAY = date(2026, 11, 15)
MONEY = r"−?\$[0-9,]+\.[0-9]{2}"
REPORT_ID = uuid.UUID("5f0c3e2a-9b7d-4c1e-8a6f-d2b4e1c7a9f3")
C050E = figures.TierRule("C050E", 1, 4, time(10))
C151 = figures.TierRule("C151", 1, 5, time(10))


def _at(day: date, hour: int = 10, minute: int = 0) -> datetime:
    return datetime.combine(day, time(hour, minute), tzinfo=EDMONTON)


# --- the rule, around holidays and weekends -----------------------------------------


def test_an_exam_on_the_thursday_before_good_friday() -> None:
    # Good Friday 2026 is 3 April; Easter Monday is a working day unless a setting says not.
    exam = date(2026, 4, 2)
    assert C050E.deadlines(exam, ALBERTA) == (
        (WcbFeeTier.SAME_DAY, _at(date(2026, 4, 6))),
        (WcbFeeTier.ON_TIME, _at(date(2026, 4, 9))),
    )
    assert C151.deadlines(exam, ALBERTA)[1] == (WcbFeeTier.ON_TIME, _at(date(2026, 4, 10)))
    optional = BusinessCalendar(optional_holidays=True)
    assert C050E.deadlines(exam, optional) == (
        (WcbFeeTier.SAME_DAY, _at(date(2026, 4, 7))),
        (WcbFeeTier.ON_TIME, _at(date(2026, 4, 10))),
    )
    assert C151.deadlines(exam, optional)[1][1] == _at(date(2026, 4, 13))


def test_an_exam_on_a_friday_or_a_weekend_waits_for_monday() -> None:
    for exam in (date(2026, 11, 13), date(2026, 11, 14), date(2026, 11, 15)):
        same_day, on_time = C050E.deadlines(exam, ALBERTA)
        assert same_day[1] == _at(date(2026, 11, 16))
        assert on_time[1] == _at(date(2026, 11, 19))
    # 10:00 in Edmonton is 17:00 UTC in winter and 16:00 UTC in summer.
    assert C050E.deadlines(date(2026, 11, 13), ALBERTA)[0][1].astimezone(UTC).hour == 17
    assert C050E.deadlines(date(2026, 7, 10), ALBERTA)[0][1].astimezone(UTC).hour == 16


def test_remembrance_day_is_skipped() -> None:
    # Wednesday 11 November 2026 is a general holiday.
    same_day, on_time = C151.deadlines(date(2026, 11, 10), ALBERTA)
    assert same_day[1] == _at(date(2026, 11, 12))
    assert on_time[1] == _at(date(2026, 11, 18))


def test_the_current_tier_changes_at_ten_oclock() -> None:
    exam = date(2026, 11, 16)  # Monday
    same_day, on_time = _at(date(2026, 11, 17)), _at(date(2026, 11, 20))
    cases = [
        (_at(exam, 15), WcbFeeTier.SAME_DAY, same_day),
        (_at(date(2026, 11, 17), 9, 59), WcbFeeTier.SAME_DAY, same_day),
        (_at(date(2026, 11, 17), 10, 0), WcbFeeTier.ON_TIME, on_time),
        (_at(date(2026, 11, 20), 9, 59), WcbFeeTier.ON_TIME, on_time),
        (_at(date(2026, 11, 20), 10, 0), WcbFeeTier.LATE, None),
    ]
    for as_of, tier, deadline in cases:
        assert C050E.current_tier(exam, as_of, ALBERTA) == (tier, deadline)


def test_a_form_without_an_on_time_tier_goes_from_same_day_to_late() -> None:
    rule = figures.TierRule("X1", 1, None, time(10))
    exam = date(2026, 11, 16)
    assert rule.deadlines(exam, ALBERTA) == ((WcbFeeTier.SAME_DAY, _at(date(2026, 11, 17))),)
    assert rule.current_tier(exam, _at(date(2026, 11, 17), 11), ALBERTA) == (
        WcbFeeTier.LATE,
        None,
    )


# --- the tier table ------------------------------------------------------------------


def test_the_migration_seeds_the_platforms_tiers(engine: Engine) -> None:
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT form_type, same_day_business_days, on_time_business_days, "
                "deadline_local_time, same_day_fee, on_time_fee, late_fee, fee_schedule_year "
                "FROM wcb_timing_tiers ORDER BY form_type"
            )
        ).all()
    d = Decimal
    ten = time(10)
    assert [tuple(r) for r in rows] == [
        ("C050E", 1, 4, ten, d("94.15"), d("85.80"), d("54.08"), 2025),
        ("C151", 1, 5, ten, d("57.19"), d("52.12"), d("32.86"), 2025),
        ("C568A", 1, 5, ten, None, None, None, None),
        ("RF01E", 1, 4, ten, d("115.05"), d("104.87"), d("66.09"), 2025),
        ("RF03E", 1, 4, ten, d("57.19"), d("52.12"), d("32.86"), 2025),
    ]


@pytest.mark.parametrize(
    ("values", "rule"),
    [
        ("('X1', 0, NULL, NULL, NULL, NULL, NULL)", "same_day_after_the_exam"),
        ("('X1', 3, 2, NULL, NULL, NULL, NULL)", "on_time_after_same_day"),
        ("('X1', 1, 4, 10, NULL, 5, 2025)", "fees_match_tiers"),
        ("('X1', 1, NULL, 10, 8, 5, 2025)", "fees_match_tiers"),
        ("('X1', 1, 4, 10, 12, 5, 2025)", "fees_fall_with_lateness"),
        ("('X1', 1, 4, 10, 8, 5, NULL)", "fees_have_a_year"),
        ("('x', 1, 4, 10, 8, 5, 2025)", "form_type_shape"),
    ],
)
def test_the_tier_table_refuses_rules_that_make_no_sense(
    session: Session, values: str, rule: str
) -> None:
    insert = text(
        "INSERT INTO wcb_timing_tiers (form_type, same_day_business_days, "
        "on_time_business_days, same_day_fee, on_time_fee, late_fee, "
        f"fee_schedule_year) VALUES {values}"
    )
    with (
        pytest.raises(IntegrityError, match=f"ck_wcb_timing_tiers_{rule}"),
        session.begin_nested(),
    ):
        session.execute(insert)


# --- an independent computation of what the report must list -------------------------

_AB = holidays.country_holidays("CA", subdiv="AB", years=range(2024, 2029), observed=True)


def _nth_business_day(day: date, n: int) -> date:
    while n:
        day += timedelta(days=1)
        if day.weekday() < 5 and day not in _AB:
            n -= 1
    return day


def _expected(
    conn: Connection, provider_id: uuid.UUID, s: date, e: date, as_of: datetime
) -> list[tuple[Any, ...]]:
    """(deadline, tier, claim number, form, date of service, state, fee, at stake), in order."""
    rows = conn.execute(
        text(
            "SELECT c.claim_id, c.wcb_claim_number, c.wcb_form_type, c.date_of_service, c.state, "
            "t.same_day_business_days, t.on_time_business_days, t.same_day_fee, t.on_time_fee, "
            "t.late_fee, t.same_day_fee - coalesce(t.on_time_fee, t.late_fee), "
            "t.on_time_fee - t.late_fee "
            "FROM claims c JOIN wcb_timing_tiers t ON t.form_type = c.wcb_form_type "
            "WHERE c.provider_id = :p AND c.claim_type = 'WCB' AND c.state IN ('DRAFT', 'QUEUED')"
        ),
        {"p": provider_id},
    ).all()
    opens = datetime.combine(s, time(0), tzinfo=EDMONTON)
    found = []
    for claim_id, number, form, served, state, n1, n2, f1, f2, _f3, stake1, stake2 in rows:
        tiers = [("Same day", _at(_nth_business_day(served, n1)), f1, stake1)]
        if n2 is not None:
            tiers.append(("On time", _at(_nth_business_day(served, n2)), f2, stake2))
        current = next((t for t in tiers if as_of < t[1]), None)
        if current is None or current[1] < opens or current[1].date() > e:
            continue
        name, deadline, fee, stake = current
        found.append((deadline, served, number, str(claim_id), name, form, state, fee, stake))
    found.sort()
    return [
        (f"{d:%Y-%m-%d %H:%M} {d.tzname()}", name, number, form, served.isoformat(), state, fee,
         stake)
        for d, served, number, _, name, form, state, fee, stake in found
    ]  # fmt: skip


ROW = re.compile(
    r"^([0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2} M[SD]T)\s+(Same day|On time)\s+([0-9]+)\s+"
    rf"([A-Z0-9]+)\s+([0-9]{{4}}-[0-9]{{2}}-[0-9]{{2}})\s+(DRAFT|QUEUED)\s+({MONEY}|not configured)"
    rf"\s+({MONEY}|not configured)$"
)


def _amount(value: str) -> Decimal | None:
    if value == "not configured":
        return None
    return Decimal(value.replace("−", "-").replace("$", "").replace(",", ""))


def _generate(
    conn: Connection,
    provider_id: uuid.UUID,
    s: date,
    created_at: datetime,
    *,
    report_id: uuid.UUID | None = None,
) -> bytes:
    request = GenerationRequest(
        report_id=report_id or REPORT_ID,
        provider_id=provider_id,
        report_type=ReportType.WCB_TIMING,
        format=ReportFormat.PDF,
        period_start=s,
        period_end=s + timedelta(days=7),
        created_at=created_at,
    )
    return b"".join(generator_for(ReportType.WCB_TIMING, ReportFormat.PDF)(conn, request))


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


def _field(layout: str, label: str) -> str:
    """The value of the header line ``label`` (label, a gap, the value)."""
    values = [
        line[len(label) :].strip() for line in layout.splitlines() if line.startswith(label + "  ")
    ]
    assert len(values) == 1, (label, values)
    return values[0]


def _rows(layout: str) -> list[tuple[Any, ...]]:
    found = []
    for line in layout.splitlines():
        match = ROW.match(line.strip())
        if match:
            *head, fee, stake = match.groups()
            found.append((*head, _amount(fee), _amount(stake)))
    return found


def _check(
    conn: Connection, provider_id: uuid.UUID, s: date, created_at: datetime
) -> tuple[list[tuple[Any, ...]], str, list[str]]:
    data = _generate(conn, provider_id, s, created_at)
    pages, layout, metadata = _read(data)
    as_of = max(created_at, datetime.combine(s, time(0), tzinfo=EDMONTON))
    want = _expected(conn, provider_id, s, s + timedelta(days=7), as_of)
    assert _rows(layout) == want
    total = sum((row[-1] for row in want if row[-1] is not None), Decimal("0.00"))
    if want:
        totals = re.findall(rf"Total at stake, ([0-9,]+) claims?\s+({MONEY})", layout)
        assert totals == [(f"{len(want):,}", f"${total:,.2f}")]
        assert re.search(rf"Fees at stake\s.*\s{re.escape(f'${total:,.2f}')}\n", layout)
        for page in pages:
            assert "Deadline (Edmonton)" in page  # the table's header, on every page
    # The header: period, basis and the moment the tiers are read at.
    e = s + timedelta(days=7)
    assert _field(layout, "Period") == f"{s} to {e}"
    assert _field(layout, "Basis") == (
        "by tier deadline: unsent WCB claims whose current fee tier ends in the period"
    )
    assert _field(layout, "Tiers as of") == (
        f"{as_of.astimezone(EDMONTON):%Y-%m-%d %H:%M %Z} (America/Edmonton)"
    )
    for number, page in enumerate(pages, start=1):
        assert f"page {number} of {len(pages)}" in page
    # No PHI: no PHN or patient name in the text, nothing nine digits long in the metadata.
    whole = "\n".join(pages)
    patients = conn.execute(
        text("SELECT phn, first_name, last_name FROM patients WHERE provider_id = :p"),
        {"p": provider_id},
    ).all()
    assert not any(phn in whole for phn, _, _ in patients)
    assert not re.search(r"[0-9]{9}", whole)
    physician = _field(layout, "Physician")
    # The seed draws patients' and physicians' names from the same lists.
    names = {f"{first} {last}" for _, first, last in patients} - {physician}
    assert not any(name in whole for name in names)
    assert metadata["/Title"] == f"WCB timing, {s} to {e}"
    described = " ".join(v for k, v in metadata.items() if k not in {"/CreationDate", "/ModDate"})
    assert not re.search(r"[0-9]{9}", described)
    assert str(provider_id) not in described
    return want, layout, pages


# --- over claims made for the purpose -------------------------------------------------


def _wcb_claim(
    session: Session,
    provider_id: uuid.UUID,
    patient_id: uuid.UUID,
    *,
    number: str,
    form: str,
    served: date,
    state: str = "DRAFT",
) -> None:
    session.execute(
        text(
            "INSERT INTO claims (provider_id, patient_id, claim_type, state, date_of_service, "
            "hsc_code, submitted_fee, ba_number, location, wcb_claim_number, wcb_form_type) "
            "VALUES (:p, :patient, 'WCB', :state, :served, '03.04A', 94.15, '12345', "
            "'Clinique médicale Saint-Éloi, Edmonton', :number, :form)"
        ),
        {
            "p": provider_id,
            "patient": patient_id,
            "state": state,
            "served": served,
            "number": number,
            "form": form,
        },
    )


def _patient(session: Session, provider_id: uuid.UUID, phn: str) -> uuid.UUID:
    patient_id: uuid.UUID = session.execute(
        text(
            "INSERT INTO patients (provider_id, phn, first_name, last_name, date_of_birth) "
            "VALUES (:p, :phn, 'Siobhán', 'Ó Súilleabháin', DATE '1980-05-01') "
            "RETURNING patient_id"
        ),
        {"p": provider_id, "phn": phn},
    ).scalar_one()
    return patient_id


def test_claims_around_good_friday_are_listed_by_deadline(session: Session) -> None:
    provider_id = add_provider(session, first_name="Zoë", last_name="Nguyễn")
    other = add_provider(session)
    patient = _patient(session, provider_id, "123456789")
    # The window opens on Wednesday 1 April 2026 at 06:00; Good Friday is 3 April.
    made = [
        ("1000001", "C050E", date(2026, 4, 2), "DRAFT"),  # same day ends Mon 6 April
        ("1000002", "C151", date(2026, 3, 30), "QUEUED"),  # same day ended: on time to Tue 7
        ("1000003", "C050E", date(2026, 3, 30), "DRAFT"),  # on time ends Mon 6 April
        ("1000004", "C568A", date(2026, 4, 1), "DRAFT"),  # same day to Thu 2; no fees
        ("1000005", "RF01E", date(2026, 4, 6), "DRAFT"),  # same day ends Tue 7 April
        ("1000006", "C151", date(2026, 4, 2), "SUBMITTED"),  # sent: its tier is settled
        ("1000007", "C050E", date(2026, 3, 20), "DRAFT"),  # already late
        ("1000008", "C151", date(2026, 4, 7), "QUEUED"),  # same day ends Wed 8, the last day
        ("1000009", "C050E", date(2026, 4, 8), "DRAFT"),  # same day ends Thu 9: past the window
    ]
    for number, form, served, state in made:
        _wcb_claim(session, provider_id, patient, number=number, form=form, served=served,
                   state=state)  # fmt: skip
    # Another physician's claim with the most urgent deadline of all is never listed.
    _wcb_claim(session, other, _patient(session, other, "987654321"), number="2000001",
               form="C050E", served=date(2026, 4, 1))  # fmt: skip
    created = datetime(2026, 4, 1, 12, 0, tzinfo=UTC)  # 06:00 MDT
    want, layout, pages = _check(session.connection(), provider_id, date(2026, 4, 1), created)
    assert [row[2] for row in want] == [
        "1000004", "1000003", "1000001", "1000002", "1000005", "1000008",
    ]  # fmt: skip
    assert want[1][:2] == ("2026-04-06 10:00 MDT", "On time")
    assert want[2][:2] == ("2026-04-06 10:00 MDT", "Same day")
    assert want[1][-1] == Decimal("31.72")  # 85.80 - 54.08
    assert want[2][-1] == Decimal("8.35")  # 94.15 - 85.80
    assert want[0][-2:] == (None, None)
    assert want[3][:2] == ("2026-04-07 10:00 MDT", "On time")
    assert want[3][-1] == Decimal("19.26")  # 52.12 - 32.86
    assert want[5][:2] == ("2026-04-08 10:00 MDT", "Same day")
    assert "Fees not configured" in layout
    assert len(pages) == 1


def test_a_report_asked_for_later_looks_from_then_on(session: Session) -> None:
    provider_id = add_provider(session)
    patient = _patient(session, provider_id, "111222333")
    _wcb_claim(session, provider_id, patient, number="3000001", form="C050E",
               served=date(2026, 11, 16))  # fmt: skip
    conn = session.connection()
    # At 06:00 on Tuesday the same-day tier (ends 10:00) is still open ...
    early, _, _ = _check(
        conn, provider_id, date(2026, 11, 17), datetime(2026, 11, 17, 13, 0, tzinfo=UTC)
    )
    assert [row[1] for row in early] == ["Same day"]
    # ... asked for at 11:00 the same day, the claim is in its on-time tier.
    late, _, _ = _check(
        conn, provider_id, date(2026, 11, 17), datetime(2026, 11, 17, 18, 0, tzinfo=UTC)
    )
    assert [row[:2] for row in late] == [("2026-11-20 10:00 MST", "On time")]


def test_an_empty_window_is_one_page_that_says_so(session: Session) -> None:
    provider_id = add_provider(session)
    data = _generate(session.connection(), provider_id, date(2026, 11, 18),
                     datetime(2026, 11, 18, 13, 0, tzinfo=UTC))  # fmt: skip
    pages, _, _ = _read(data)
    assert len(pages) == 1
    assert "No WCB fee tier ends in this window" in pages[0]
    assert "page 1 of 1" in pages[0]


# --- over the seed --------------------------------------------------------------------


@pytest.fixture(scope="module")
def physicians(engine: Engine) -> list[uuid.UUID]:
    seed_demo(engine, physicians=3, years=1, claims_per_month=150, seed=5, today=TODAY)
    with engine.connect() as conn:
        return list(
            conn.execute(text("SELECT provider_id FROM providers ORDER BY billing_number"))
            .scalars()
            .all()
        )


@pytest.mark.parametrize("offset", [-12, -5, 0])
def test_every_row_of_the_seed_equals_the_independent_computation(
    engine: Engine, physicians: list[uuid.UUID], offset: int
) -> None:
    s = TODAY + timedelta(days=offset)
    created = datetime.combine(s, time(6), tzinfo=EDMONTON)
    listed = 0
    with engine.connect() as conn:
        for provider_id in physicians:
            want, _, _ = _check(conn, provider_id, s, created)
            listed += len(want)
    if offset == 0:
        assert listed > 0  # the seed's unsent WCB claims of the last days are due this week


def test_same_data_gives_the_same_bytes(engine: Engine, physicians: list[uuid.UUID]) -> None:
    created = datetime(2026, 11, 15, 13, 0, tzinfo=UTC)
    with engine.connect() as conn:
        first = _generate(conn, physicians[0], TODAY, created)
        second = _generate(conn, physicians[0], TODAY, created)
        other = _generate(conn, physicians[0], TODAY, created, report_id=uuid.uuid4())
    assert first == second
    assert other != first


def test_scheduled_kinds_are_generated_but_not_requested_on_demand() -> None:
    for report_type in (ReportType.WCB_TIMING, ReportType.REJECTION_DIGEST):
        pair = (report_type, ReportFormat.PDF)
        assert generator_for(*pair) is SCHEDULED[pair]
        assert not is_supported(*pair)
        assert pair not in supported()


def test_a_report_stopped_early_releases_its_cursor(
    engine: Engine, physicians: list[uuid.UUID]
) -> None:
    request = GenerationRequest(
        report_id=REPORT_ID,
        provider_id=physicians[0],
        report_type=ReportType.WCB_TIMING,
        format=ReportFormat.PDF,
        period_start=TODAY,
        period_end=TODAY + timedelta(days=7),
        created_at=datetime(2026, 11, 15, 13, 0, tzinfo=UTC),
    )
    with engine.connect() as conn:
        stream = generator_for(ReportType.WCB_TIMING, ReportFormat.PDF)(conn, request)
        assert next(stream).startswith(b"%PDF-")
        assert conn.exec_driver_sql("SELECT count(*) FROM pg_cursors").scalar_one() == 1
        stream.close()  # type: ignore[attr-defined]
        assert conn.exec_driver_sql("SELECT count(*) FROM pg_cursors").scalar_one() == 0


def test_a_window_without_a_business_day_lists_nothing(session: Session) -> None:
    provider_id = add_provider(session)
    patient = _patient(session, provider_id, "444555666")
    _wcb_claim(session, provider_id, patient, number="4000001", form="C050E",
               served=date(2026, 11, 13))  # fmt: skip
    saturday = figures.Period(date(2026, 11, 14), date(2026, 11, 14))
    as_of = datetime(2026, 11, 14, 13, 0, tzinfo=UTC)
    rules = figures.tier_rules(conn=session.connection())
    assert figures.tiers_ending(rules, as_of=as_of, until=saturday.end, calendar=ALBERTA) == []
    with figures.wcb_due(
        conn=session.connection(),
        ctx=AuthContext(provider_id=provider_id),
        period=saturday,
        as_of=as_of,
        calendar=ALBERTA,
    ) as reader:
        assert reader.totals() == figures.WcbTimingTotals(
            claims=0, at_stake=Decimal("0.00"), unpriced=0
        )
        assert list(reader.lines()) == []
