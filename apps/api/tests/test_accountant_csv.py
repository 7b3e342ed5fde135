"""The accountant CSV on real PostgreSQL: rows chosen, RFC 4180 bytes, exact money, streaming."""

from __future__ import annotations

import csv
import io
import itertools
import re
import uuid
from collections.abc import Generator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any, cast

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import Connection, Engine, insert, text
from sqlalchemy.orm import Session

from factories import add_provider
from meritum_api.domains.analytics.exceptions import UnsupportedReport
from meritum_api.domains.analytics.generators import (
    LEGACY,
    SCHEDULED,
    GenerationRequest,
    generator_for,
    is_supported,
    supported,
)
from meritum_api.domains.analytics.generators.accountant_csv import CHUNK_SIZE
from meritum_shared.constants.analytics import ReportFormat, ReportType
from meritum_shared.constants.claims import ClaimState, ClaimType
from meritum_shared.schemas.db import claims, patients, providers
from meritum_shared.schemas.validation.analytics import ACCOUNTANT_OUTPUT

BOM = b"\xef\xbb\xbf"
# Exactly the header of the report contents specification, section 1.
HEADER = [
    "date_of_service",
    "hsc_code",
    "modifiers",
    "submitted_fee",
    "assessed_fee",
    "payment_date",
    "ba_number",
    "location",
    "claim_type",
]
MARCH = (date(2026, 3, 1), date(2026, 3, 31))
MONEY = re.compile(r"^[0-9]+\.[0-9]{2}$")


def _request(provider_id: uuid.UUID, period: tuple[date | None, date | None]) -> GenerationRequest:
    return GenerationRequest(
        report_id=uuid.uuid4(),
        provider_id=provider_id,
        report_type=ReportType.ACCOUNTANT_SUMMARY,
        format=ReportFormat.CSV,
        period_start=period[0],
        period_end=period[1],
        created_at=datetime(2026, 4, 1, 15, 0, tzinfo=UTC),
    )


def _chunks(
    conn: Connection, provider_id: uuid.UUID, period: tuple[date, date] = MARCH
) -> list[bytes]:
    generate = generator_for(ReportType.ACCOUNTANT_SUMMARY, ReportFormat.CSV)
    return list(generate(conn, _request(provider_id, period)))


def _parse(data: bytes) -> list[list[str]]:
    assert data.startswith(BOM)
    # newline="" keeps CR and LF inside quoted fields exactly as written.
    return list(csv.reader(io.StringIO(data[len(BOM) :].decode("utf-8"), newline=""), strict=True))


def _patient(conn: Connection, provider_id: uuid.UUID) -> uuid.UUID:
    patient_id: uuid.UUID = conn.execute(
        insert(patients)
        .values(
            provider_id=provider_id,
            phn=f"{uuid.uuid4().int % 10**9:09d}",
            first_name="Zoë",
            last_name="O'Brien, Jr.",
            date_of_birth=date(1970, 1, 1),
        )
        .returning(patients.c.patient_id)
    ).scalar_one()
    return patient_id


def _claim(conn: Connection, provider_id: uuid.UUID, patient_id: uuid.UUID, **over: Any) -> None:
    values: dict[str, Any] = {
        "provider_id": provider_id,
        "patient_id": patient_id,
        "claim_type": ClaimType.AHCIP,
        "state": ClaimState.PAID,
        "date_of_service": date(2026, 3, 2),
        "hsc_code": "03.03A",
        "modifiers": "",
        "submitted_fee": Decimal("41.73"),
        "assessed_fee": Decimal("41.73"),
        "payment_date": date(2026, 3, 12),
        "ba_number": "12345",
        "location": "Clinic",
    }
    values.update(over)
    if values["claim_type"] is ClaimType.WCB:
        values.setdefault("wcb_claim_number", "7654321")
        values.setdefault("wcb_form_type", "C050E")
    conn.execute(insert(claims).values(**values))


def _paid_in_bulk(conn: Connection, provider_id: uuid.UUID, count: int) -> None:
    """``count`` paid claims in March with awkward cents, some zero, some large."""
    conn.execute(
        text(
            "INSERT INTO claims (provider_id, patient_id, claim_type, state, date_of_service, "
            "hsc_code, modifiers, submitted_fee, assessed_fee, payment_date, ba_number, location) "
            "SELECT :p, :patient, 'AHCIP', CASE WHEN g % 5 = 0 THEN 'ADJUSTED' ELSE 'PAID' END, "
            "DATE '2026-02-20' + g % 30, '03.03A', 'CMGP,AFHR', "
            "((g * 7919) % 2000003)::numeric / 100, "
            "greatest(((g * 7919) % 2000003)::numeric / 100 - (g % 97)::numeric / 100, 0), "
            "DATE '2026-03-01' + g % 31, '12345', 'Clinique Saint-Éloi, \"Suite\" 2' "
            "FROM generate_series(1, :n) g"
        ),
        {"p": provider_id, "patient": _patient(conn, provider_id), "n": count},
    )


def test_empty_period_is_the_bom_and_the_header(session: Session) -> None:
    provider_id = add_provider(session)
    data = b"".join(_chunks(session.connection(), provider_id))
    assert data == BOM + (",".join(HEADER) + "\r\n").encode()


def test_only_this_providers_paid_claims_inside_the_period(session: Session) -> None:
    conn = session.connection()
    mine, theirs = add_provider(session), add_provider(session)
    patient = _patient(conn, mine)
    start, end = MARCH
    # Same payment day and service day: the claim id decides the order.
    low, high = uuid.UUID(int=1), uuid.UUID(int=2)
    _claim(conn, mine, patient, location="first day", payment_date=start, date_of_service=start)
    _claim(conn, mine, patient, location="last day", payment_date=end, state=ClaimState.ADJUSTED)
    _claim(conn, mine, patient, location="mid, later service", date_of_service=date(2026, 3, 5))
    _claim(conn, mine, patient, location="mid, id 2", claim_id=high)
    _claim(conn, mine, patient, location="mid, id 1", claim_id=low)
    _claim(conn, mine, patient, location="wcb", claim_type=ClaimType.WCB)
    _claim(conn, mine, patient, location="day before", payment_date=start - timedelta(days=1))
    _claim(conn, mine, patient, location="day after", payment_date=end + timedelta(days=1))
    for state in set(ClaimState) - {ClaimState.PAID, ClaimState.ADJUSTED}:
        _claim(conn, mine, patient, location=f"state {state.value}", state=state)
    _claim(conn, theirs, _patient(conn, theirs), location="another provider")

    header, *rows = _parse(b"".join(_chunks(conn, mine)))

    assert header == HEADER
    assert [row[7] for row in rows] == [
        "first day",
        "mid, id 1",
        "mid, id 2",
        "wcb",
        "mid, later service",
        "last day",
    ]
    assert rows[0] == [
        "2026-03-01",
        "03.03A",
        "",
        "41.73",
        "41.73",
        "2026-03-01",
        "12345",
        "first day",
        "AHCIP",
    ]
    assert rows[3][8] == "WCB"


def test_awkward_text_round_trips_exactly(session: Session) -> None:
    conn = session.connection()
    provider_id = add_provider(session)
    patient = _patient(conn, provider_id)
    awkward = [
        ('Clinique Saint-Éloi, "Suite" 2', "CMGP,AFHR"),
        ("Line one\r\nLine two", "EV"),
        ("bare\nLF", ""),
        ("bare\rCR", "TM,BMI"),
        ("Nguyễn Family Practice — Fort Vermilion", 'A"B'),
        ('"', ","),
        (" leading and trailing ", "CMGP"),
        ("emoji 🩺 and ß", "ÉV"),
    ]
    for day, (location, modifiers) in enumerate(awkward, start=1):
        _claim(
            conn,
            provider_id,
            patient,
            location=location,
            modifiers=modifiers,
            payment_date=date(2026, 3, day),
        )

    data = b"".join(_chunks(conn, provider_id))
    rows = _parse(data)[1:]

    assert [(row[7], row[2]) for row in rows] == awkward
    assert 'Clinique Saint-Éloi, "Suite" 2'.encode() not in data  # it was quoted
    assert b'"Clinique Saint-\xc3\x89loi, ""Suite"" 2"' in data
    assert b",03.03A," in data  # plain fields stay unquoted


def test_records_end_with_crlf_and_start_with_a_bom(session: Session) -> None:
    conn = session.connection()
    provider_id = add_provider(session)
    patient = _patient(conn, provider_id)
    for day in range(1, 11):
        _claim(conn, provider_id, patient, payment_date=date(2026, 3, day))
    data = b"".join(_chunks(conn, provider_id))
    assert data.startswith(BOM)
    assert data.count(BOM) == 1
    assert data.endswith(b"\r\n")
    assert data.count(b"\n") == data.count(b"\r\n") == data.count(b"\r") == 11


def test_money_is_exact_to_the_cent(session: Session) -> None:
    conn = session.connection()
    provider_id = add_provider(session)
    _paid_in_bulk(conn, provider_id, 5_000)
    patient = _patient(conn, provider_id)
    for fee in ("0.00", "0.01", "0.10", "1000.05", "99999999.99"):
        _claim(conn, provider_id, patient, submitted_fee=Decimal(fee), assessed_fee=Decimal(fee))

    rows = _parse(b"".join(_chunks(conn, provider_id)))[1:]

    assert len(rows) == 5_005
    assert all(MONEY.match(row[3]) and MONEY.match(row[4]) for row in rows)
    assert {"0.00", "0.01", "0.10", "1000.05", "99999999.99"} <= {row[3] for row in rows}
    submitted = sum((Decimal(row[3]) for row in rows), Decimal(0))
    assessed = sum((Decimal(row[4]) for row in rows), Decimal(0))
    expected = conn.execute(
        text(
            "SELECT sum(submitted_fee), sum(assessed_fee) FROM claims WHERE provider_id = :p "
            "AND state IN ('PAID', 'ADJUSTED') AND payment_date BETWEEN :start AND :end"
        ),
        {"p": provider_id, "start": MARCH[0], "end": MARCH[1]},
    ).one()
    assert (submitted, assessed) == (expected[0], expected[1])


def test_large_output_is_streamed_in_chunks(session: Session) -> None:
    conn = session.connection()
    provider_id = add_provider(session)
    _paid_in_bulk(conn, provider_id, 20_000)
    generate = generator_for(ReportType.ACCOUNTANT_SUMMARY, ReportFormat.CSV)
    stream = generate(conn, _request(provider_id, MARCH))

    first = next(stream)
    # Rows are still coming from a server-side cursor, not a fully fetched result.
    open_cursors = conn.exec_driver_sql("SELECT count(*) FROM pg_cursors").scalar_one()
    chunks = [first, *stream]

    assert open_cursors == 1
    assert conn.exec_driver_sql("SELECT count(*) FROM pg_cursors").scalar_one() == 0
    assert len(chunks) > 10
    # Every chunk but the last is about 64 KiB: full, and over by less than a row.
    assert all(CHUNK_SIZE <= len(c) < CHUNK_SIZE + 1024 for c in chunks[:-1])
    assert len(_parse(b"".join(chunks))) == 20_001


def test_a_stream_stopped_early_releases_its_cursor(session: Session) -> None:
    conn = session.connection()
    provider_id = add_provider(session)
    _paid_in_bulk(conn, provider_id, 5_000)
    generate = generator_for(ReportType.ACCOUNTANT_SUMMARY, ReportFormat.CSV)
    stream = cast(Generator[bytes], generate(conn, _request(provider_id, MARCH)))
    next(stream)
    stream.close()
    assert conn.exec_driver_sql("SELECT count(*) FROM pg_cursors").scalar_one() == 0


def test_a_request_without_a_period_is_refused(session: Session) -> None:
    provider_id = add_provider(session)
    generate = generator_for(ReportType.ACCOUNTANT_SUMMARY, ReportFormat.CSV)
    with pytest.raises(ValueError, match="period"):
        next(generate(session.connection(), _request(provider_id, (None, None))))


_text = st.text(st.characters(codec="utf-8", exclude_characters="\x00"))
_fee = st.decimals(min_value=0, max_value=Decimal("99999999.99"), places=2)


@settings(max_examples=40, deadline=None)
@given(rows=st.lists(st.tuples(_text.filter(lambda s: len(s) <= 100), _fee, _fee), max_size=12))
def test_any_location_and_fee_round_trips(
    engine: Engine, rows: list[tuple[str, Decimal, Decimal]]
) -> None:
    with engine.connect() as conn, conn.begin() as transaction:
        provider_id = conn.execute(
            insert(providers)
            .values(billing_number=str(uuid.uuid4().int % 10**9), first_name="A", last_name="B")
            .returning(providers.c.provider_id)
        ).scalar_one()
        patient = _patient(conn, provider_id)
        for day, (location, submitted, assessed) in enumerate(rows, start=1):
            _claim(
                conn,
                provider_id,
                patient,
                location=location,
                submitted_fee=submitted,
                assessed_fee=assessed,
                payment_date=date(2026, 3, 1) + timedelta(days=day),
            )
        parsed = _parse(b"".join(_chunks(conn, provider_id, (date(2026, 3, 1), date(2026, 4, 30)))))
        transaction.rollback()
    assert [(r[7], Decimal(r[3]), Decimal(r[4])) for r in parsed[1:]] == rows
    assert all(MONEY.match(r[3]) and MONEY.match(r[4]) for r in parsed[1:])


# --- the registry ------------------------------------------------------------------


def test_the_accountant_csv_both_pdfs_and_the_data_export_can_be_requested() -> None:
    assert supported() == {
        (ReportType.ACCOUNTANT_SUMMARY, ReportFormat.CSV),
        (ReportType.ACCOUNTANT_SUMMARY, ReportFormat.PDF),
        (ReportType.ACCOUNTANT_DETAIL, ReportFormat.PDF),
        (ReportType.DATA_PORTABILITY, ReportFormat.ZIP),
    }
    assert set(ACCOUNTANT_OUTPUT.values()) == supported() - {
        (ReportType.DATA_PORTABILITY, ReportFormat.ZIP)
    }


def test_csvs_stored_under_the_old_type_are_still_generated_but_never_requested() -> None:
    legacy = (ReportType.ACCOUNTANT_DETAIL, ReportFormat.CSV)
    assert set(LEGACY) == {legacy}
    assert not is_supported(*legacy)
    assert generator_for(*legacy) is generator_for(ReportType.ACCOUNTANT_SUMMARY, ReportFormat.CSV)


@pytest.mark.parametrize(
    ("report_type", "report_format"), list(itertools.product(ReportType, ReportFormat))
)
def test_registry_agrees_with_itself_for_every_pair(
    report_type: ReportType, report_format: ReportFormat
) -> None:
    pair = (report_type, report_format)
    expected = pair in supported()
    assert is_supported(report_type, report_format) is expected
    # Scheduled kinds are generated, but never requested on demand.
    assert not (expected and pair in SCHEDULED)
    if expected or pair in LEGACY or pair in SCHEDULED:
        assert callable(generator_for(report_type, report_format))
    else:
        with pytest.raises(UnsupportedReport) as refused:
            generator_for(report_type, report_format)
        assert str(refused.value) == (
            f"{report_type.value} reports in {report_format.value} format are not available yet"
        )
