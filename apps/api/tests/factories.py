"""Small builders of valid rows for tests."""

from __future__ import annotations

import asyncio
import itertools
import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

import psycopg
from sqlalchemy import Engine, insert, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from meritum_api.context import AuthContext
from meritum_api.db.reads import ReadPool
from meritum_api.domains.analytics import repository
from meritum_api.domains.analytics.generation import request_for
from meritum_api.domains.analytics.generators import generator_for
from meritum_api.domains.analytics.schemas import ReportPage
from meritum_shared.constants.analytics import ReportFormat, ReportType
from meritum_shared.schemas.db import providers

_billing = itertools.count(100000)


def refusal(exc: DBAPIError) -> psycopg.Error:
    """PostgreSQL's own error behind a refused statement: its SQLSTATE and diagnostics."""
    orig = exc.orig
    assert isinstance(orig, psycopg.Error)
    return orig


def add_provider(session: Session, **overrides: Any) -> uuid.UUID:
    """Insert a provider and return its id."""
    values: dict[str, Any] = {
        "billing_number": str(next(_billing)),
        "first_name": "Amélie",
        "last_name": "O'Brien-Côté",
    }
    values.update(overrides)
    provider_id: uuid.UUID = session.execute(
        insert(providers).values(**values).returning(providers.c.provider_id)
    ).scalar_one()
    return provider_id


def report_values(provider_id: uuid.UUID, **overrides: Any) -> dict[str, Any]:
    """The required columns of a valid on-demand accountant CSV report."""
    values: dict[str, Any] = {
        "provider_id": provider_id,
        "report_type": ReportType.ACCOUNTANT_DETAIL,
        "format": ReportFormat.CSV,
        "period_start": date(2026, 1, 1),
        "period_end": date(2026, 1, 31),
        "file_path": f"reports/{provider_id}/{uuid.uuid4()}",
        "file_size_bytes": 0,
        "download_link_expires_at": datetime.now(UTC) + timedelta(days=30),
    }
    values.update(overrides)
    return values


def add_paid_claims(
    session: Session,
    *,
    provider_id: uuid.UUID,
    count: int,
    first_payment: date,
    days: int,
) -> None:
    """Insert ``count`` paid AHCIP claims with payment dates over ``days`` days."""
    patient_id = session.execute(
        text(
            "INSERT INTO patients (provider_id, phn, first_name, last_name, date_of_birth) "
            "VALUES (:p, lpad((floor(random() * 1e9))::bigint::text, 9, '0'), 'Zoë', "
            "'D''Arcy, Jr.', DATE '1970-01-01') RETURNING patient_id"
        ),
        {"p": provider_id},
    ).scalar_one()
    session.execute(
        text(
            "INSERT INTO claims (provider_id, patient_id, claim_type, state, date_of_service, "
            "hsc_code, modifiers, submitted_fee, assessed_fee, payment_date, ba_number, "
            "location) "
            "SELECT :p, :patient, 'AHCIP', 'PAID', :first - 7 + (g % :days), '03.03A', "
            "'CMGP', 41.73, 40.12, :first + (g % :days), '12345', "
            "'Clinique Saint-Éloi, \"Suite\" 2' FROM generate_series(1, :n) g"
        ),
        {"p": provider_id, "patient": patient_id, "first": first_payment, "days": days, "n": count},
    )


def expected_file(engine: Engine, ctx: AuthContext, report_id: uuid.UUID) -> bytes:
    """What the generator makes of this report's row and data (an accountant CSV, a PDF)."""
    with Session(engine) as session:
        report = repository.get_report(session=session, ctx=ctx, report_id=report_id)
    assert report is not None
    generate = generator_for(report.report_type, report.format)
    with engine.connect() as conn:
        return b"".join(generate(conn, request_for(report)))


def listed(engine: Engine, ctx: AuthContext, **filters: Any) -> ReportPage:
    """A page of ``ctx``'s committed reports, read as the API reads it (its read pool)."""

    async def listing() -> ReportPage:
        reads = ReadPool(engine.url.render_as_string(hide_password=False), size=1)
        try:
            async with reads.connection() as conn:
                return await repository.list_reports(conn=conn, ctx=ctx, **filters)
        finally:
            await reads.close()

    return asyncio.run(listing())
