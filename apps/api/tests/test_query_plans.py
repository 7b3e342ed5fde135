"""With a realistic volume analyzed, each access path uses its intended index."""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from sqlalchemy import Engine, Select, Update, select, text

from meritum_api.context import AuthContext
from meritum_api.db.reads import ReadPool
from meritum_api.domains.analytics import repository
from meritum_shared.constants.analytics import ReportStatus, ReportType
from meritum_shared.schemas.db import GeneratedReport

PROVIDERS = 1_000
PER_PROVIDER = 200

SEED = f"""
INSERT INTO providers (billing_number, first_name, last_name)
SELECT (100000 + g)::text, 'First' || g, 'Last' || g FROM generate_series(1, {PROVIDERS}) g;

INSERT INTO generated_reports (provider_id, report_type, format, period_start, period_end,
    file_path, file_size_bytes, download_link_expires_at, status, created_at)
SELECT provider_id, report_type, 'CSV', created_at::date - 30, created_at::date,
    'reports/' || provider_id || '/' || gen_random_uuid(), 1000,
    created_at + interval '30 days',
    CASE
        WHEN created_at > now() - interval '10 minutes' THEN 'pending'
        WHEN created_at + interval '30 days' > now() - interval '1 day' THEN 'ready'
        ELSE 'expired'
    END,
    created_at
FROM (
    SELECT p.provider_id,
        (ARRAY['ACCOUNTANT_SUMMARY', 'ACCOUNTANT_DETAIL', 'WEEKLY_SUMMARY',
               'MONTHLY_PERFORMANCE', 'RRNP_QUARTERLY', 'WCB_TIMING',
               'REJECTION_DIGEST'])[1 + (n % 7)] AS report_type,
        CASE WHEN n = 1 AND random() < 0.3 THEN now() - random() * interval '10 minutes'
             ELSE now() - interval '10 minutes' - random() * interval '730 days'
        END AS created_at
    FROM providers p CROSS JOIN generate_series(1, {PER_PROVIDER}) n
) rows;
-- A ready report always has its digest (checked by PostgreSQL at commit).
INSERT INTO generated_report_contents (report_id, sha256)
SELECT report_id, sha256(report_id::text::bytea) FROM generated_reports WHERE status = 'ready';
ANALYZE providers;
ANALYZE generated_reports;
"""


@pytest.fixture(scope="module")
def seeded(engine: Engine) -> AuthContext:
    with engine.begin() as conn:
        conn.execute(text(SEED))
        provider_id = conn.execute(
            text("SELECT provider_id FROM providers ORDER BY billing_number OFFSET 500 LIMIT 1")
        ).scalar_one()
        total = conn.execute(text("SELECT count(*) FROM generated_reports")).scalar_one()
    assert total >= 200_000
    return AuthContext(provider_id=uuid.UUID(str(provider_id)))


def _plan(engine: Engine, statement: Select[Any] | Update) -> dict[str, Any]:
    dialect = engine.dialect
    sql = statement.compile(dialect=dialect, compile_kwargs={"literal_binds": True})
    with engine.connect() as conn:
        raw = conn.execute(text(f"EXPLAIN (FORMAT JSON) {sql}")).scalar_one()
    document = raw if isinstance(raw, list) else json.loads(raw)
    plan: dict[str, Any] = document[0]["Plan"]
    return plan


def _nodes(plan: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield plan
    for child in plan.get("Plans", []):
        yield from _nodes(child)


def _assert_uses(plan: dict[str, Any], index: str) -> None:
    _assert_uses_one_of(plan, {index})


PROVIDER_INDEXES = {
    "ix_generated_reports_provider_id_created_at",
    "ix_generated_reports_provider_id_report_type",
}


def _assert_uses_one_of(plan: dict[str, Any], indexes: set[str]) -> None:
    nodes = list(_nodes(plan))
    assert not [n for n in nodes if n["Node Type"] == "Seq Scan"], json.dumps(plan, indent=1)
    used = {n.get("Index Name") for n in nodes}
    assert used & indexes, json.dumps(plan, indent=1)


def _sent_by_list_reports(
    engine: Engine, ctx: AuthContext, **filters: Any
) -> list[tuple[str, dict[str, Any]]]:
    """The statements and parameters ``list_reports`` sends to PostgreSQL, as sent.

    The listing runs on the driver's cursor, below SQLAlchemy's events, so
    the statements are caught at the driver: by the cursor class of a
    connection of the read pool the API lists on.
    """
    sent: list[tuple[str, dict[str, Any]]] = []

    class Capturing(psycopg.AsyncCursor[Any]):
        async def execute(self, query: Any, params: Any = None, **options: Any) -> Capturing:
            sent.append((str(query), dict(params or {})))
            await super().execute(query, params, **options)
            return self

    async def listing() -> None:
        reads = ReadPool(engine.url.render_as_string(hide_password=False), size=1)
        try:
            async with reads.connection() as conn:
                conn.cursor_factory = Capturing
                try:
                    await repository.list_reports(conn=conn, ctx=ctx, **filters)
                finally:
                    conn.cursor_factory = psycopg.AsyncCursor
        finally:
            await reads.close()

    asyncio.run(listing())
    return sent


def _explain_sent(engine: Engine, statement: str, parameters: dict[str, Any]) -> dict[str, Any]:
    """EXPLAIN with the parameter values: the custom plan of the first executions."""
    connection = engine.raw_connection()
    try:
        cursor = connection.cursor()
        cursor.execute(f"EXPLAIN (FORMAT JSON) {statement}", parameters)
        row = cursor.fetchone()
        cursor.close()
    finally:
        connection.close()
    assert row is not None
    (document,) = row
    plan: dict[str, Any] = document[0]["Plan"]
    return plan


def _explain_generic(engine: Engine, statement: str) -> dict[str, Any]:
    """EXPLAIN (GENERIC_PLAN): the plan PostgreSQL may switch to once psycopg prepares it."""
    numbers: dict[str, int] = {}

    def placeholder(match: re.Match[str]) -> str:
        return f"${numbers.setdefault(match.group(1), len(numbers) + 1)}"

    sql = re.sub(r"%\((\w+)\)s", placeholder, statement)
    with engine.connect() as conn:
        document = conn.exec_driver_sql(f"EXPLAIN (GENERIC_PLAN, FORMAT JSON) {sql}").scalar_one()
    plan: dict[str, Any] = document[0]["Plan"]
    return plan


TODAY = datetime.now(UTC).date()
FILTERS = [
    {"report_type": rt, "start_date": start, "end_date": end}
    for rt in (None, ReportType.WEEKLY_SUMMARY)
    for start in (None, TODAY - timedelta(days=365))
    for end in (None, TODAY - timedelta(days=30))
]


@pytest.mark.parametrize(
    "filters", FILTERS, ids=lambda f: "+".join(k for k, v in f.items() if v) or "none"
)
@pytest.mark.parametrize("offset", [0, 100_000], ids=["page", "past-the-end"])
def test_listing_walks_a_provider_index_with_every_filter(
    engine: Engine, seeded: AuthContext, filters: dict[str, Any], offset: int
) -> None:
    # Past the end the page is empty and the count statement runs too.
    sent = _sent_by_list_reports(engine, seeded, limit=20, offset=offset, **filters)
    assert len(sent) == (1 if offset == 0 else 2)
    for statement, parameters in sent:
        for plan in (
            _explain_sent(engine, statement, parameters),
            _explain_generic(engine, statement),
        ):
            _assert_uses_one_of(plan, PROVIDER_INDEXES)


def test_newest_twenty_walk_the_created_at_desc_index(engine: Engine, seeded: AuthContext) -> None:
    ((statement, parameters),) = _sent_by_list_reports(engine, seeded, limit=20, offset=0)
    for plan in (_explain_sent(engine, statement, parameters), _explain_generic(engine, statement)):
        _assert_uses(plan, "ix_generated_reports_provider_id_created_at")
        # Walking the index in its order means no full sort: at most an incremental
        # sort that breaks ties of created_at by report_id.
        assert not [n for n in _nodes(plan) if n["Node Type"] == "Sort"]


def test_reports_of_one_type_use_the_provider_type_index(
    engine: Engine, seeded: AuthContext
) -> None:
    ((statement, parameters),) = _sent_by_list_reports(
        engine, seeded, limit=20, offset=0, report_type=ReportType.WEEKLY_SUMMARY
    )
    for plan in (_explain_sent(engine, statement, parameters), _explain_generic(engine, statement)):
        _assert_uses(plan, "ix_generated_reports_provider_id_report_type")


def test_expired_batch_uses_the_cleanup_index(engine: Engine, seeded: AuthContext) -> None:
    # The partial index holds only settled rows, so a batch never walks past
    # the ~96% of rows that are already expired. EXPLAINed without ANALYZE:
    # the statement the cleanup runs, not run.
    plan = _plan(engine, repository.expire_due_statement(limit=500))
    _assert_uses(plan, "ix_generated_reports_cleanup_due")


def test_oldest_pending_use_the_status_index(engine: Engine, seeded: AuthContext) -> None:
    # The specification's status index serves a queue read: pending reports, oldest first.
    oldest_pending = (
        select(GeneratedReport)
        .where(GeneratedReport.status == ReportStatus.PENDING)
        .order_by(GeneratedReport.created_at)
        .limit(50)
    )
    plan = _plan(engine, oldest_pending)
    _assert_uses(plan, "ix_generated_reports_status")
