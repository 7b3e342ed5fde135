"""`meritum seed` on real PostgreSQL: realistic, valid, deterministic, idempotent, quiet."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from sqlalchemy import Connection, Engine, text

from meritum_api.db.cluster import ThrowawayCluster
from meritum_api.db.engine import make_engine
from meritum_api.domains.analytics.generators import GenerationRequest, generator_for
from meritum_api.seed import FIRST_NAMES, LAST_NAMES, SeedSummary, seed_demo
from meritum_shared.constants.analytics import ReportFormat, ReportType
from meritum_shared.constants.claims import ClaimState, ClaimType

TODAY = date(2026, 11, 15)

# Every row of the seed except the insertion timestamps, in a stable order.
FINGERPRINT = """
SELECT md5(string_agg(row_text, '|' ORDER BY row_text)) FROM (
    SELECT concat_ws(',', provider_id, billing_number, first_name, last_name) AS row_text
    FROM providers
    UNION ALL
    SELECT concat_ws(',', patient_id, provider_id, phn, first_name, last_name, date_of_birth)
    FROM patients
    UNION ALL
    SELECT concat_ws(',', claim_id, provider_id, patient_id, claim_type, state,
        date_of_service, hsc_code, modifiers, submitted_fee, assessed_fee, payment_date,
        ba_number, location, rrnp_premium, rejection_code, wcb_claim_number, wcb_form_type,
        batch_id, created_at, updated_at)
    FROM claims
    UNION ALL
    SELECT concat_ws(',', batch_id, provider_id, claim_type, ba_number, submitted_at,
        claim_count, total_submitted, status)
    FROM submission_batches
    UNION ALL
    SELECT concat_ws(',', event_id, claim_id, occurred_at, action, from_state, to_state, actor,
        details)
    FROM claim_audit_history
    UNION ALL
    SELECT concat_ws(',', suggestion_id, claim_id, created_at, category, suggestion, status,
        dismissed_reason, revenue_impact)
    FROM ai_coach_suggestions
    UNION ALL
    SELECT concat_ws(',', provider_id, ba_number, ba_type, active_from) FROM provider_ba_numbers
    UNION ALL
    SELECT concat_ws(',', location_id, name, functional_centre, default_ba_number, rrnp_rate)
    FROM practice_locations
    UNION ALL
    SELECT concat_ws(',', provider_id, section, key, value) FROM provider_settings
) everything
"""


def _seed(engine: Engine, *, physicians: int = 3) -> SeedSummary:
    return seed_demo(
        engine, physicians=physicians, years=2, claims_per_month=80, seed=7, today=TODAY
    )


@pytest.fixture(scope="module")
def seeded(engine: Engine) -> SeedSummary:
    return _seed(engine)


def _counts(conn: Connection) -> tuple[int, int, int]:
    row = conn.execute(
        text(
            "SELECT (SELECT count(*) FROM providers), (SELECT count(*) FROM patients), "
            "(SELECT count(*) FROM claims)"
        )
    ).one()
    return row[0], row[1], row[2]


def _scalar(conn: Connection, sql: str) -> int:
    value: int = conn.execute(text(sql)).scalar_one()
    return value


def test_several_physicians_each_with_every_state_and_both_claim_types(
    engine: Engine, seeded: SeedSummary
) -> None:
    assert seeded.physicians_created == 3
    with engine.connect() as conn:
        assert _counts(conn) == (3, seeded.patients, seeded.claims)
        per_provider = conn.execute(
            text(
                "SELECT provider_id, array_agg(DISTINCT state), array_agg(DISTINCT claim_type), "
                "count(DISTINCT ba_number), count(DISTINCT location), count(*) "
                "FROM claims GROUP BY provider_id"
            )
        ).all()
    assert len(per_provider) == 3
    months = 24
    for _, states, types, bas, locations, total in per_provider:
        assert set(states) == set(ClaimState)
        assert set(types) == set(ClaimType)
        assert 1 <= bas <= 3
        assert 2 <= locations <= 4
        assert 80 * 0.5 <= total / months <= 80 * 1.6


#: Each query counts the rows that break one rule of the claims' activity; all must be 0.
ACTIVITY_RULES = {
    "every claim has its creation, first": """
        SELECT count(*) FROM claims c WHERE NOT EXISTS (
            SELECT 1 FROM claim_audit_history h WHERE h.claim_id = c.claim_id
            AND h.action = 'CREATED' AND h.occurred_at = c.created_at)
    """,
    "the last state change names the claim's state": """
        SELECT count(*) FROM claims c WHERE c.state <> (
            SELECT h.to_state FROM claim_audit_history h
            WHERE h.claim_id = c.claim_id AND h.to_state IS NOT NULL
            ORDER BY h.occurred_at DESC LIMIT 1)
    """,
    "each change starts where the one before ended": """
        SELECT count(*) FROM (
            SELECT from_state, lag(to_state) OVER (PARTITION BY claim_id ORDER BY occurred_at)
                AS before
            FROM claim_audit_history WHERE to_state IS NOT NULL) steps
        WHERE from_state IS DISTINCT FROM before
    """,
    "updated_at is the last change": """
        SELECT count(*) FROM claims c WHERE c.updated_at <> (
            SELECT max(occurred_at) FROM claim_audit_history h WHERE h.claim_id = c.claim_id)
    """,
    "claims sent have a batch, the others none": """
        SELECT count(*) FROM claims WHERE (batch_id IS NOT NULL)
            <> (state NOT IN ('DRAFT', 'QUEUED', 'EXPIRED'))
    """,
    "a batch lists exactly its claims, count and total": """
        SELECT count(*) FROM submission_batches b LEFT JOIN LATERAL (
            SELECT count(*) AS n, sum(submitted_fee) AS total, bool_and(
                c.provider_id = b.provider_id AND c.claim_type = b.claim_type
                AND c.ba_number = b.ba_number) AS same
            FROM claims c WHERE c.batch_id = b.batch_id) listed ON true
        WHERE listed.n <> b.claim_count OR listed.total <> b.total_submitted
            OR NOT listed.same
    """,
    "a claim is sent in its batch's moment": """
        SELECT count(*) FROM claims c JOIN submission_batches b USING (batch_id)
        WHERE NOT EXISTS (SELECT 1 FROM claim_audit_history h WHERE h.claim_id = c.claim_id
            AND h.to_state = 'SUBMITTED' AND h.occurred_at = b.submitted_at)
    """,
    "a suggestion follows its claim's creation": """
        SELECT count(*) FROM ai_coach_suggestions s JOIN claims c USING (claim_id)
        WHERE s.created_at < c.created_at OR s.provider_id <> c.provider_id
    """,
    "every refused claim names a code of the reference table, for its payer": """
        SELECT count(*) FROM claims c WHERE c.rejection_code IS NOT NULL AND NOT EXISTS (
            SELECT 1 FROM rejection_codes r
            WHERE r.code = c.rejection_code AND r.claim_type = c.claim_type)
    """,
    "a claim carries a code exactly when it was refused": """
        SELECT count(*) FROM claims
        WHERE (rejection_code IS NOT NULL) <> (state IN ('REJECTED', 'WRITTEN_OFF'))
    """,
    "every refused claim's history has its change to REJECTED": """
        SELECT count(*) FROM claims c WHERE c.state IN ('REJECTED', 'WRITTEN_OFF')
        AND NOT EXISTS (SELECT 1 FROM claim_audit_history h WHERE h.claim_id = c.claim_id
            AND h.action = 'STATE_CHANGED' AND h.to_state = 'REJECTED')
    """,
    "WCB claims use forms with timing tiers": """
        SELECT count(*) FROM claims c WHERE c.claim_type = 'WCB' AND NOT EXISTS (
            SELECT 1 FROM wcb_timing_tiers t WHERE t.form_type = c.wcb_form_type)
    """,
    "claims bill at the profile's locations and BA numbers": """
        SELECT count(*) FROM claims c WHERE NOT EXISTS (
            SELECT 1 FROM practice_locations l
            WHERE l.provider_id = c.provider_id AND l.name = c.location)
        OR NOT EXISTS (SELECT 1 FROM provider_ba_numbers b
            WHERE b.provider_id = c.provider_id AND b.ba_number = c.ba_number)
    """,
}


@pytest.mark.parametrize("rule", list(ACTIVITY_RULES))
def test_claims_activity_is_consistent(engine: Engine, seeded: SeedSummary, rule: str) -> None:
    with engine.connect() as conn:
        assert _scalar(conn, ACTIVITY_RULES[rule]) == 0


def test_every_physician_has_batches_history_suggestions_and_a_profile(
    engine: Engine, seeded: SeedSummary
) -> None:
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT p.provider_id, "
                "(SELECT count(*) FROM submission_batches b WHERE b.provider_id = p.provider_id), "
                "(SELECT count(*) FROM claim_audit_history h WHERE h.provider_id = p.provider_id),"
                " (SELECT count(*) FROM ai_coach_suggestions s "
                "WHERE s.provider_id = p.provider_id), "
                "(SELECT count(DISTINCT status) FROM ai_coach_suggestions s "
                "WHERE s.provider_id = p.provider_id), "
                "(SELECT count(*) FROM provider_settings s WHERE s.provider_id = p.provider_id) "
                "FROM providers p"
            )
        ).all()
    assert len(rows) == 3
    for _, batches, history, suggestions, statuses, settings in rows:
        assert batches > 0
        assert history > 0
        assert suggestions > 0
        assert statuses == 3
        assert settings > 0


def test_names_carry_accents_apostrophes_hyphens_and_commas(
    engine: Engine, seeded: SeedSummary
) -> None:
    with engine.connect() as conn:
        names = conn.execute(
            text(
                "SELECT first_name || ' ' || last_name FROM patients UNION ALL "
                "SELECT first_name || ' ' || last_name FROM providers"
            )
        ).scalars()
        joined = list(names)
    assert any(not name.isascii() for name in joined)
    assert any("ễ" in name for name in joined)
    for mark in ("'", "-", ","):
        assert any(mark in name for name in joined), mark


def test_claims_look_like_alberta_billing(engine: Engine, seeded: SeedSummary) -> None:
    with engine.connect() as conn:
        violations = {
            "paid before service or after today": _scalar(
                conn,
                "SELECT count(*) FROM claims WHERE state IN ('PAID', 'ADJUSTED') "
                f"AND NOT (payment_date > date_of_service AND payment_date <= DATE '{TODAY}')",
            ),
            "unpaid with a payment date": _scalar(
                conn,
                "SELECT count(*) FROM claims "
                "WHERE state NOT IN ('PAID', 'ADJUSTED') AND payment_date IS NOT NULL",
            ),
            "paid above the bill": _scalar(
                conn,
                "SELECT count(*) FROM claims WHERE state = 'PAID' AND assessed_fee > submitted_fee",
            ),
            "adjusted unchanged": _scalar(
                conn,
                "SELECT count(*) FROM claims "
                "WHERE state = 'ADJUSTED' AND assessed_fee = submitted_fee",
            ),
            "refused without a code": _scalar(
                conn,
                "SELECT count(*) FROM claims "
                "WHERE state IN ('REJECTED', 'WRITTEN_OFF') AND rejection_code IS NULL",
            ),
            "WCB without a form": _scalar(
                conn,
                "SELECT count(*) FROM claims WHERE claim_type = 'WCB' AND wcb_form_type IS NULL",
            ),
            "served outside the years": _scalar(
                conn,
                "SELECT count(*) FROM claims WHERE date_of_service "
                f"NOT BETWEEN DATE '{seeded.first_day}' AND DATE '{TODAY}'",
            ),
        }
        assert violations == dict.fromkeys(violations, 0)
        assert _scalar(conn, "SELECT count(*) FROM claims WHERE rrnp_premium > 0") > 0
        assert _scalar(conn, "SELECT count(*) FROM claims WHERE assessed_fee < submitted_fee") > 0
        forms = set(conn.execute(text("SELECT DISTINCT wcb_form_type FROM claims")).scalars())
        modifiers = set(conn.execute(text("SELECT DISTINCT modifiers FROM claims")).scalars())
        codes = set(conn.execute(text("SELECT DISTINCT hsc_code FROM claims")).scalars())
        cents = set(conn.execute(text("SELECT DISTINCT submitted_fee % 1 FROM claims")).scalars())
    assert {"C050E", "C151", "C568A", "RF03E"} <= forms
    assert "" in modifiers
    assert any("," in m for m in modifiers)
    assert {"03.03A", "03.04A", "03.08A", "08.19A"} <= codes
    assert len(cents) > 20  # fees carry real cents, not round numbers
    assert all(isinstance(c, Decimal) for c in cents)


def test_seeding_again_adds_nothing(engine: Engine, seeded: SeedSummary) -> None:
    with engine.connect() as conn:
        before = _counts(conn)
        codes = conn.execute(text("SELECT * FROM rejection_codes ORDER BY code")).all()
    again = _seed(engine)
    with engine.connect() as conn:
        assert _counts(conn) == before
        assert conn.execute(text("SELECT * FROM rejection_codes ORDER BY code")).all() == codes
    assert (again.physicians_created, again.physicians_existing) == (0, 3)
    assert (again.patients, again.claims) == (0, 0)


def test_accountant_csv_of_a_seeded_physician_has_a_month_of_rows(
    engine: Engine, seeded: SeedSummary
) -> None:
    start, end = date(2026, 9, 1), date(2026, 9, 30)
    with engine.connect() as conn:
        provider_id: uuid.UUID = conn.execute(
            text("SELECT provider_id FROM providers ORDER BY billing_number LIMIT 1")
        ).scalar_one()
        expected = _scalar(
            conn,
            f"SELECT count(*) FROM claims WHERE provider_id = '{provider_id}' AND state IN "
            f"('PAID', 'ADJUSTED') AND payment_date BETWEEN DATE '{start}' AND DATE '{end}'",
        )
        request = GenerationRequest(
            report_id=uuid.uuid4(),
            provider_id=provider_id,
            report_type=ReportType.ACCOUNTANT_SUMMARY,
            format=ReportFormat.CSV,
            period_start=start,
            period_end=end,
            created_at=datetime(2026, 4, 1, 15, 0, tzinfo=UTC),
        )
        data = b"".join(generator_for(request.report_type, request.format)(conn, request))
    lines = data.split(b"\r\n")
    assert expected > 20
    assert len(lines) == expected + 2  # the header, the rows, and the empty tail


@pytest.fixture
def twin(pg_cluster: ThrowawayCluster) -> Iterator[str]:
    """A second fresh database, seeded by the test itself."""
    url = pg_cluster.clone("t_seed_twin")
    yield url
    pg_cluster.drop("t_seed_twin")


def test_same_arguments_give_the_same_rows_and_more_physicians_add_only_new_ones(
    engine: Engine, seeded: SeedSummary, twin: str
) -> None:
    twin_engine = make_engine(twin, pool_size=1)
    try:
        _seed(twin_engine)
        with engine.connect() as conn, twin_engine.connect() as other:
            assert (
                other.execute(text(FINGERPRINT)).scalar()
                == conn.execute(text(FINGERPRINT)).scalar()
            )
        grown = _seed(twin_engine, physicians=4)
        assert (grown.physicians_created, grown.physicians_existing) == (1, 3)
        with twin_engine.connect() as other:
            assert _counts(other)[0] == 4
    finally:
        twin_engine.dispose()


def _meritum(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "meritum_api.cli", *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_command_prints_one_line_of_counts_only(twin: str) -> None:
    done = _meritum(
        "seed", "--physicians", "2", "--years", "1", "--claims-per-month", "30", "--seed", "3",
        env={"DATABASE_URL": twin, "MERITUM_ENVIRONMENT": "development"},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    out = done.stdout.strip()
    assert len(out.splitlines()) == 1
    assert out.startswith("seeded 2 physicians (0 already present, skipped)")
    assert not re.search(r"\d{9}", out.replace(",", ""))  # no PHN, no billing number
    assert not any(name in done.stdout + done.stderr for name in FIRST_NAMES + LAST_NAMES)


def test_command_refuses_production(twin: str) -> None:
    done = _meritum("seed", env={"DATABASE_URL": twin, "MERITUM_ENVIRONMENT": "production"})
    assert done.returncode == 1
    assert "refusing to seed a production database" in done.stderr
    engine = make_engine(twin, pool_size=1)
    try:
        with engine.connect() as conn:
            assert _counts(conn) == (0, 0, 0)
    finally:
        engine.dispose()


def test_command_rejects_a_zero_count() -> None:
    done = _meritum("seed", "--physicians", "0", env={})
    assert done.returncode == 2
    assert "at least 1" in done.stderr
