"""Retention cleanup throughput over 1,000,000 rows.

Run: ``uv run python -m benchmarks.bench_cleanup [--rows N] [--due N]``

The table holds ``rows`` reports of which ``due`` are ready with a link
that has just expired and the rest expired long ago (the steady state of a
table that has been cleaned for years). Each variant starts from a fresh
clone of the same seeded database, in one run:

- the cleanup as shipped: batches of 500 through the partial index;
- the same batches with only the spec's four indexes (the partial index
  dropped): every batch re-walks the rows already expired;
- one single UPDATE of every due row: the lower bound, but one long
  transaction holding every lock, which the cleanup avoids on purpose.
"""

from __future__ import annotations

import argparse
import base64
import os
import tempfile
import time
from pathlib import Path

import psycopg

from benchmarks.machine import RESULTS, describe, stamp
from meritum_api.db.cluster import ThrowawayCluster, libpq_dsn
from meritum_api.deps import Role, build_deps
from meritum_api.domains.analytics.cleanup import expire_reports
from meritum_api.settings import Settings

SEED = """
INSERT INTO providers (billing_number, first_name, last_name)
SELECT (100000 + g)::text, 'First' || g, 'Last' || g FROM generate_series(1, 10000) g;
INSERT INTO generated_reports (provider_id, report_type, format, period_start, period_end,
    file_path, file_size_bytes, download_link_expires_at, status, created_at)
SELECT p.provider_id, 'ACCOUNTANT_DETAIL', 'CSV', DATE '2025-01-01', DATE '2025-01-31',
    'reports/' || p.provider_id || '/' || gen_random_uuid(), 1000,
    CASE WHEN n <= {due_per} THEN now() - interval '1 hour' * n
         ELSE now() - interval '400 days' + interval '1 minute' * n END,
    CASE WHEN n <= {due_per} THEN 'ready' ELSE 'expired' END,
    now() - interval '500 days'
FROM providers p CROSS JOIN generate_series(1, {per}) n
"""


def _variant(cluster: ThrowawayCluster, name: str, storage_dir: Path, mode: str, due: int) -> float:
    url = cluster.clone(name, template="bench_cleanup_seed")
    dsn = libpq_dsn(url)
    settings = Settings(
        database_url=url,
        storage_dir=storage_dir,
        master_keys={"bench": base64.b64encode(os.urandom(32)).decode()},
        environment="test",
        cleanup_batch_size=500,
    )
    if mode == "spec-indexes-only":
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute("DROP INDEX ix_generated_reports_cleanup_due")
            conn.execute("ANALYZE generated_reports")
    started = time.perf_counter()
    if mode == "single-update":
        with psycopg.connect(dsn, autocommit=True) as conn:
            done = conn.execute(
                "UPDATE generated_reports SET status = 'expired' "
                "WHERE status IN ('ready', 'failed') AND download_link_expires_at <= now()"
            ).rowcount
    else:
        runtime = build_deps(settings, url, role=Role.COMMAND)
        try:
            done, _ = expire_reports(deps=runtime)
        finally:
            runtime.close()
    elapsed = time.perf_counter() - started
    if done != due:
        raise SystemExit(f"{name}: expired {done} rows, expected {due}")
    cluster.drop(name)
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--due", type=int, default=200_000)
    args = parser.parse_args()
    per, due_per = args.rows // 10_000, args.due // 10_000
    cluster = ThrowawayCluster()
    cluster.start()
    try:
        seeded_url = cluster.clone("bench_cleanup_seed")
        with psycopg.connect(libpq_dsn(seeded_url), autocommit=True) as conn:
            for statement in SEED.format(per=per, due_per=due_per).split(";"):
                conn.execute(statement)
            conn.execute("VACUUM ANALYZE generated_reports")
            conn.execute("CHECKPOINT")
        cluster.make_template("bench_cleanup_seed")
        timings: dict[str, float] = {}
        with tempfile.TemporaryDirectory() as tmp:
            for mode in ("shipped", "spec-indexes-only", "single-update"):
                name = "bench_" + mode.replace("-", "_")
                timings[mode] = _variant(
                    cluster, name, Path(tmp) / "reports", mode, due_per * 10_000
                )
    finally:
        cluster.stop()
    due = due_per * 10_000
    base = timings["shipped"]
    lines = [
        "# Cleanup benchmark: expiring reports",
        "",
        f"- run: {stamp()}; machine: {describe()}",
        f"- {per * 10_000:,} rows over 10,000 providers; {due:,} due (ready, link just "
        f"expired), the rest expired long ago; batches of 500; files absent (each batch "
        "still asks storage to delete its files)",
        "",
        "| variant | seconds | rows/s | time ÷ shipped |",
        "| --- | ---: | ---: | ---: |",
    ]
    for mode, seconds in timings.items():
        lines.append(f"| {mode} | {seconds:.2f} | {due / seconds:,.0f} | {seconds / base:.2f}× |")
    lines.append("")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "cleanup.md").write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
