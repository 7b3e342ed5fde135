"""Notification fan-out: what the notification rows add to the ready transaction.

Run: ``uv run python -m benchmarks.bench_notifications [--reports N]``

One physician with four delegates (two of them holding REPORT_VIEW), among
10,000 other providers' users and 200,000 existing notifications. Each
sample is one whole ready transaction as the worker runs it (the status
move, the digest, the settle effects, the commit with its deferred
trigger), timed from ``begin`` to the end of the commit. Three variants,
interleaved sample by sample in the same run and database:

- baseline: no settle effect (what the transaction cost before notifications);
- in-app: the notification effect writing three rows (physician + two viewers);
- email: the same, every recipient preferring email, so three outbox jobs are
  deferred in the transaction too.

The time spent inside the effect alone is reported beside the difference of
medians.
"""

from __future__ import annotations

import argparse
import base64
import os
import tempfile
import time
import uuid
from pathlib import Path

import psycopg
from sqlalchemy import text

from benchmarks.machine import RESULTS, describe, percentile, stamp
from meritum_api.context import AuthContext
from meritum_api.db.cluster import ThrowawayCluster, libpq_dsn
from meritum_api.deps import Deps, Role, build_deps
from meritum_api.domains.analytics import repository
from meritum_api.domains.analytics.effects import report_settled
from meritum_api.domains.analytics.schemas import ReportView
from meritum_api.domains.notifications.service import notify_settled
from meritum_api.settings import Settings

SEED = """
INSERT INTO providers (billing_number, first_name, last_name)
SELECT (200000 + g)::text, 'First' || g, 'Last' || g FROM generate_series(1, 10000) g;
INSERT INTO users (email, password_hash, provider_id, role)
SELECT 'u' || row_number() OVER () || '@bench.example', '$argon2id$bench', provider_id, 'physician'
FROM providers;
INSERT INTO generated_reports (provider_id, report_type, format, period_start, period_end,
    file_path, file_size_bytes, download_link_expires_at, status)
SELECT p.provider_id, 'ACCOUNTANT_DETAIL', 'CSV', DATE '2026-01-01', DATE '2026-01-31',
    'reports/' || p.provider_id || '/' || gen_random_uuid(), 0, now() + interval '30 days',
    'pending'
FROM providers p CROSS JOIN generate_series(1, 20);
INSERT INTO notifications (user_id, provider_id, event, report_id)
SELECT u.user_id, r.provider_id, 'REPORT_READY', r.report_id
FROM generated_reports r JOIN users u USING (provider_id)
"""

TEAM = """
WITH p AS (
    INSERT INTO providers (billing_number, first_name, last_name)
    VALUES (:billing, 'Bench', 'Physician') RETURNING provider_id
), u AS (
    INSERT INTO users (email, password_hash, provider_id, role, permissions)
    SELECT :prefix || n || '@team.example', '$argon2id$bench', p.provider_id,
        CASE WHEN n = 0 THEN 'physician' ELSE 'delegate' END,
        CASE WHEN n IN (1, 2) THEN ARRAY['REPORT_VIEW', 'REPORT_EXPORT']::varchar(20)[]
             WHEN n = 3 THEN ARRAY['REPORT_EXPORT']::varchar(20)[]
             WHEN n = 4 THEN ARRAY['DATA_EXPORT']::varchar(20)[]
             ELSE '{}'::varchar(20)[] END
    FROM p, generate_series(0, 4) n
    RETURNING user_id
)
SELECT provider_id FROM p
"""


def _team(deps: Deps, *, billing: str, email: bool) -> uuid.UUID:
    with deps.session_factory.begin() as session:
        provider_id: uuid.UUID = session.execute(
            text(TEAM), {"billing": billing, "prefix": f"b{billing}-"}
        ).scalar_one()
        if email:
            session.execute(
                text(
                    "INSERT INTO notification_preferences (user_id, delivery_method) "
                    "SELECT user_id, 'EMAIL' FROM users WHERE provider_id = :p"
                ),
                {"p": provider_id},
            )
    return provider_id


GENERATING = """
INSERT INTO generated_reports (provider_id, report_type, format, period_start, period_end,
    file_path, file_size_bytes, download_link_expires_at)
SELECT :p, 'ACCOUNTANT_DETAIL', 'CSV', DATE '2026-03-01', DATE '2026-03-31',
    'reports/' || :p || '/' || gen_random_uuid(), 0, now() + interval '30 days'
FROM generate_series(1, :n) RETURNING report_id
"""


def _generating(deps: Deps, provider_id: uuid.UUID, count: int) -> list[ReportView]:
    """``count`` reports of the provider in ``generating``, ready to be made ready."""
    ctx = AuthContext(provider_id=provider_id)
    with deps.session_factory.begin() as session:
        ids = list(session.execute(text(GENERATING), {"p": provider_id, "n": count}).scalars())
        session.execute(
            text("UPDATE generated_reports SET status = 'generating' WHERE report_id = ANY(:ids)"),
            {"ids": ids},
        )
    views = []
    with deps.session_factory() as session:
        for report_id in ids:
            found = repository.get_report(session=session, ctx=ctx, report_id=report_id)
            assert found is not None
            views.append(found)
    return views


def _ready(deps: Deps, report: ReportView) -> tuple[float, float]:
    """One ready transaction: (whole transaction, inside the effects), in seconds."""
    started = time.perf_counter()
    with deps.session_factory.begin() as session:
        ready = repository.finish_ready(session=session, report=report, size=1000, sha256=bytes(32))
        effect_started = time.perf_counter()
        report_settled(deps=deps, session=session, report=ready)
        effect = time.perf_counter() - effect_started
    return time.perf_counter() - started, effect


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--reports", type=int, default=1000, help="samples per variant")
    args = parser.parse_args()
    cluster = ThrowawayCluster()
    cluster.start()
    try:
        url = cluster.clone("bench_notifications")
        with psycopg.connect(libpq_dsn(url), autocommit=True) as conn:
            for statement in SEED.split(";"):
                conn.execute(statement)
            conn.execute("VACUUM ANALYZE")
        with tempfile.TemporaryDirectory() as tmp:
            settings = Settings(
                database_url=url,
                data_dir=Path(tmp),
                master_keys={"bench": base64.b64encode(os.urandom(32)).decode()},
                environment="test",
            )
            deps = build_deps(settings, url, role=Role.COMMAND)
            try:
                samples = _measure(deps, args.reports)
                rows = _count(deps)
            finally:
                deps.close()
    finally:
        cluster.stop()
    _write(samples, args.reports, rows)


def _measure(deps: Deps, count: int) -> dict[str, tuple[list[float], list[float]]]:
    variants = {
        "baseline (no effect)": (deps.replace(settle_effects=()), False),
        "in-app (3 rows)": (deps.replace(settle_effects=(notify_settled,)), False),
        "email (3 rows + 3 jobs)": (deps.replace(settle_effects=(notify_settled,)), True),
    }
    queues: dict[str, list[ReportView]] = {}
    for index, (name, (variant, email)) in enumerate(variants.items()):
        provider = _team(variant, billing=f"9{index:05d}", email=email)
        queues[name] = _generating(variant, provider, count + 50)
    samples: dict[str, tuple[list[float], list[float]]] = {n: ([], []) for n in variants}
    for i in range(count + 50):
        for name, (variant, _) in variants.items():
            whole, effect = _ready(variant, queues[name][i])
            if i >= 50:  # the first 50 warm the pool, the caches and the plans
                samples[name][0].append(whole)
                samples[name][1].append(effect)
    return samples


def _count(deps: Deps) -> int:
    with deps.engine.connect() as conn:
        return int(conn.execute(text("SELECT count(*) FROM notifications")).scalar_one())


def _write(samples: dict[str, tuple[list[float], list[float]]], count: int, rows: int) -> None:
    base = percentile(samples["baseline (no effect)"][0], 0.5)
    lines = [
        "# Notification fan-out: time added to the ready transaction",
        "",
        f"- run: {stamp()}; machine: {describe()}",
        f"- {count} ready transactions per variant, interleaved; 10,000 other providers, "
        f"{rows:,} notifications in the table at the end",
        "- one physician, two delegates with REPORT_VIEW (notified), two without (not)",
        "",
        "| variant | p50 ms | p95 ms | effect p50 ms | effect p95 ms | p50 − baseline ms |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name, (whole, effect) in samples.items():
        p50 = percentile(whole, 0.5)
        lines.append(
            f"| {name} | {p50 * 1e3:.3f} | {percentile(whole, 0.95) * 1e3:.3f} | "
            f"{percentile(effect, 0.5) * 1e3:.3f} | {percentile(effect, 0.95) * 1e3:.3f} | "
            f"{(p50 - base) * 1e3:+.3f} |"
        )
    lines.append("")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "notifications.md").write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
