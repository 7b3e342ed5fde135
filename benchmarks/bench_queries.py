"""Index-backed reads of generated_reports at 1,000,000 rows over 10,000 providers.

Run: ``uv run python -m benchmarks.bench_queries [--rows N] [--providers N] [--samples N]``

Measures, in one run and interleaved so that machine noise hits all alike,
the latency of a page of a provider's reports (the statements
``list_reports`` sends, prepared: no filter, one type, a period, both)
against a primary-key lookup, and writes ``results/queries.md``.
"""

from __future__ import annotations

import argparse
import random
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg

from benchmarks.machine import RESULTS, describe, percentile, stamp
from meritum_api.context import AuthContext
from meritum_api.db.cluster import ThrowawayCluster, libpq_dsn
from meritum_api.domains.analytics import repository
from meritum_shared.constants.analytics import ReportType

TYPES = [t for t in ReportType if t is not ReportType.DATA_PORTABILITY]
NO_FILTER: dict[str, Any] = {"report_type": None, "start_date": None, "end_date": None}
TODAY = datetime.now(UTC).date()

SEED = """
INSERT INTO providers (billing_number, first_name, last_name)
SELECT (100000 + g)::text, 'First' || g, 'Last' || g FROM generate_series(1, {providers}) g;
INSERT INTO generated_reports (provider_id, report_type, format, period_start, period_end,
    file_path, file_size_bytes, download_link_expires_at, status, created_at)
SELECT provider_id, report_type, 'CSV', created_at::date - 30, created_at::date,
    'reports/' || provider_id || '/' || gen_random_uuid(), 1000,
    created_at + interval '30 days',
    CASE WHEN created_at + interval '30 days' > now() THEN 'ready' ELSE 'expired' END,
    created_at
FROM (
    SELECT p.provider_id,
        (ARRAY['ACCOUNTANT_SUMMARY', 'ACCOUNTANT_DETAIL', 'WEEKLY_SUMMARY',
               'MONTHLY_PERFORMANCE', 'RRNP_QUARTERLY', 'WCB_TIMING',
               'REJECTION_DIGEST'])[1 + (n % 7)] AS report_type,
        now() - random() * interval '730 days' AS created_at
    FROM providers p CROSS JOIN generate_series(1, {per_provider}) n
) rows;
-- A ready report always has its digest (checked by PostgreSQL at commit).
INSERT INTO generated_report_contents (report_id, sha256)
SELECT report_id, sha256(report_id::text::bytea) FROM generated_reports WHERE status = 'ready'
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--providers", type=int, default=10_000)
    parser.add_argument("--samples", type=int, default=20_000)
    args = parser.parse_args()

    cluster = ThrowawayCluster()
    cluster.start()
    try:
        url = cluster.clone("bench_queries")
        with psycopg.connect(libpq_dsn(url), autocommit=True) as conn:
            started = time.perf_counter()
            seed = SEED.format(providers=args.providers, per_provider=args.rows // args.providers)
            with conn.transaction():  # the digests' check runs at commit
                for statement in seed.split(";"):
                    conn.execute(statement)
            conn.execute("VACUUM ANALYZE generated_reports")
            conn.execute("VACUUM ANALYZE providers")
            seeded = time.perf_counter() - started
            providers = [r[0] for r in conn.execute("SELECT provider_id FROM providers")]
            report_ids = [r[0] for r in conn.execute("SELECT report_id FROM generated_reports")]
            total = len(report_ids)

            def listing(ctx: AuthContext, **filters: Any) -> tuple[str, dict[str, object]]:
                # The statement and parameters list_reports sends for these filters.
                page, _ = repository.page_query(
                    ctx=ctx, limit=20, offset=0, **{**NO_FILTER, **filters}
                )
                return page

            def compiled(ctx: AuthContext) -> dict[str, tuple[str, dict[str, object]]]:
                start = TODAY - timedelta(days=365)
                return {
                    "newest 20": listing(ctx),
                    "one type, newest 20": listing(ctx, report_type=random.choice(TYPES)),
                    "period of the last year, newest 20": listing(
                        ctx, start_date=start, end_date=TODAY
                    ),
                    "type and period, newest 20": listing(
                        ctx, report_type=random.choice(TYPES), start_date=start, end_date=TODAY
                    ),
                    "primary key": (
                        "SELECT * FROM generated_reports WHERE report_id = %(id)s",
                        {"id": random.choice(report_ids)},
                    ),
                }

            samples: dict[str, list[float]] = {}
            for round_ in range(args.samples + 500):
                queries = list(compiled(AuthContext(provider_id=random.choice(providers))).items())
                random.shuffle(queries)
                for name, (sql, params) in queries:
                    t0 = time.perf_counter_ns()
                    conn.execute(sql, params, prepare=True).fetchall()
                    elapsed = (time.perf_counter_ns() - t0) / 1000
                    if round_ >= 500:  # the first rounds warm caches and plans
                        samples.setdefault(name, []).append(elapsed)
            version = conn.execute("SHOW server_version").fetchone()
    finally:
        cluster.stop()

    base50 = percentile(samples["primary key"], 0.50)
    base99 = percentile(samples["primary key"], 0.99)
    lines = [
        "# Query benchmark: generated_reports reads",
        "",
        f"- run: {stamp()}; machine: {describe()}",
        f"- PostgreSQL {version[0] if version else '?'} (embedded), {total:,} rows over "
        f"{len(providers):,} providers, seeded and analyzed in {seeded:.1f} s",
        f"- {args.samples:,} samples per query, interleaved in random order, after 500 warm-up "
        "rounds; prepared statements over a unix socket, rows fetched; microseconds",
        "",
        "| query | p50 µs | p99 µs | p50 ÷ PK p50 | p99 ÷ PK p99 |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for name, values in sorted(samples.items()):
        p50, p99 = percentile(values, 0.50), percentile(values, 0.99)
        lines.append(
            f"| {name} | {p50:.0f} | {p99:.0f} | {p50 / base50:.2f}× | {p99 / base99:.2f}× |"
        )
    lines += [
        "",
        "Goal: p99 under 2,000 µs and within 3× the primary-key lookup.",
        "",
    ]
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "queries.md").write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
