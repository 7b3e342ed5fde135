"""The subscription scheduler at 06:00: 10,000 subscriptions of 2,000 physicians due at once.

Run: ``uv run python -m benchmarks.bench_scheduler [--physicians N]``

Each physician subscribes to all five subscribable types, on Monday
5 April 2027, when every one of them runs at 06:00 (a Monday, the third
business day of a quarter's first month): weekly summary, monthly
performance, RRNP quarterly, WCB timing daily and rejection digest daily
(every physician had a rejection the day before, so no digest is skipped).
The database is on disk with ``fsync`` and ``synchronous_commit`` as
PostgreSQL ships them (the test clusters turn them off).

Measured in one run, on the same rows (each variant starts from the same due
state):

- ``scheduler``: ``run_due`` as the periodic job runs it, one transaction per
  subscription (claim, run row, report, generation job, audit entry,
  advance), timed until every report row exists; once alone, once as two
  overlapping runs on two connections.
- ``bare claim loop``: the baseline, a loop that only claims the same rows
  with the same ``FOR UPDATE SKIP LOCKED`` statement and advances
  ``next_run_at``, one transaction each, with a durable commit and with the
  scheduler's asynchronous commit.
- the notification fan-out of a scheduled report: the ready transaction
  (status, digest, settle effects, commit) with and without the notification
  effect, interleaved sample by sample; the effect looks the subscription's
  delivery up and writes three notices (physician and two delegates holding
  REPORT_VIEW), with three email jobs when the subscription says EMAIL.
"""

from __future__ import annotations

import argparse
import base64
import os
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path

import psycopg
from sqlalchemy import text

from benchmarks.machine import RESULTS, describe, percentile, stamp
from meritum_api.calendar import ALBERTA, at_local
from meritum_api.clock import ManualClock
from meritum_api.context import AuthContext
from meritum_api.db.cluster import ThrowawayCluster, libpq_dsn
from meritum_api.deps import Deps, Role, build_deps
from meritum_api.domains.analytics import repository as reports
from meritum_api.domains.analytics.effects import report_settled
from meritum_api.domains.analytics.schemas import ReportView
from meritum_api.domains.notifications.service import notify_settled
from meritum_api.domains.subscriptions import repository
from meritum_api.domains.subscriptions.scheduler import SchedulerResult, run_due
from meritum_api.settings import Settings
from meritum_shared.constants.analytics import SUBSCRIPTION_FREQUENCIES, SubscriptionFrequency

RUN_DAY = date(2027, 4, 5)
DUE = at_local(RUN_DAY)
#: The scheduler's clock: half a minute after 06:00, as the first tick finds it.
NOW = datetime(2027, 4, 5, 12, 0, 30, tzinfo=UTC)
#: Each type at the frequency that runs on RUN_DAY.
PLAN = {
    "WEEKLY_SUMMARY": SubscriptionFrequency.WEEKLY,
    "MONTHLY_PERFORMANCE": SubscriptionFrequency.MONTHLY,
    "RRNP_QUARTERLY": SubscriptionFrequency.QUARTERLY,
    "WCB_TIMING": SubscriptionFrequency.DAILY,
    "REJECTION_DIGEST": SubscriptionFrequency.DAILY,
}

SEED = """
INSERT INTO providers (billing_number, first_name, last_name)
SELECT (300000 + g)::text, 'First' || g, 'Last' || g FROM generate_series(1, :n) g;
INSERT INTO users (email, password_hash, provider_id, role)
SELECT 'p' || row_number() OVER () || '@bench.example', '$argon2id$bench', provider_id, 'physician'
FROM providers;
INSERT INTO patients (provider_id, phn, first_name, last_name, date_of_birth)
SELECT provider_id, lpad((100000000 + row_number() OVER ())::text, 9, '0'), 'Pat', 'Ient',
    DATE '1970-01-01' FROM providers;
INSERT INTO claims (provider_id, patient_id, claim_type, state, date_of_service, hsc_code,
    modifiers, submitted_fee, ba_number, location)
SELECT provider_id, patient_id, 'AHCIP', 'REJECTED', DATE '2027-03-29', '03.03A', '', 41.73,
    '12345', 'Clinic' FROM patients;
INSERT INTO claim_audit_history (claim_id, provider_id, occurred_at, action, from_state,
    to_state, actor)
SELECT claim_id, provider_id, TIMESTAMPTZ '2027-04-04 17:00:00+00', 'STATE_CHANGED',
    'SUBMITTED', 'REJECTED', 'system:assessment' FROM claims;
INSERT INTO report_subscriptions (provider_id, report_type, frequency, next_run_at, created_at,
    updated_at)
SELECT p.provider_id, t.report_type, t.frequency, :due, :created, :created
FROM providers p CROSS JOIN (VALUES {plan}) AS t (report_type, frequency)
"""

#: Back to the due state of 06:00 (between variants).
RESET = """
DELETE FROM subscription_runs;
DELETE FROM procrastinate_jobs;
DELETE FROM generated_reports;
UPDATE report_subscriptions SET next_run_at = :due, last_run_at = NULL;
VACUUM ANALYZE
"""


def _durable(cluster: ThrowawayCluster) -> None:
    """Undo the test clusters' fast settings: fsync and durable commits as shipped."""
    with psycopg.connect(libpq_dsn(cluster.admin_url), autocommit=True) as conn:
        for name in ("fsync", "synchronous_commit", "full_page_writes"):
            conn.execute(f"ALTER SYSTEM RESET {name}")
        conn.execute("SELECT pg_reload_conf()")


def _exec(url: str, script: str, params: dict[str, object]) -> None:
    with psycopg.connect(libpq_dsn(url), autocommit=True) as conn:
        for statement in script.split(";"):
            if statement.strip():
                conn.execute(_psycopg_params(statement), params)


def _psycopg_params(statement: str) -> str:
    for name in ("n", "due", "created"):
        statement = statement.replace(f":{name}", f"%({name})s")
    return statement


def _seed(url: str, physicians: int) -> None:
    for report_type, frequency in PLAN.items():
        assert frequency in SUBSCRIPTION_FREQUENCIES[report_type]  # type: ignore[index]
        assert ALBERTA.is_run_day(frequency, report_type, RUN_DAY)  # type: ignore[arg-type]
    plan = ", ".join(f"('{t}', '{f.value}')" for t, f in PLAN.items())
    params = {"n": physicians, "due": DUE, "created": datetime(2027, 1, 1, tzinfo=UTC)}
    _exec(url, SEED.format(plan=plan), params)
    _exec(url, "VACUUM ANALYZE", {})


def _reset(url: str) -> None:
    _exec(url, RESET, {"due": DUE})


def _count(deps: Deps, sql: str) -> int:
    with deps.engine.connect() as conn:
        return int(conn.execute(text(sql)).scalar_one())


def _time_schedulers(deps: Deps, runs: int) -> tuple[float, list[SchedulerResult]]:
    """Wall time of ``runs`` overlapping scheduler runs until none finds work."""
    results: list[SchedulerResult] = []
    barrier = threading.Barrier(runs + 1)

    def one() -> None:
        barrier.wait()
        results.append(run_due(deps=deps))

    threads = [threading.Thread(target=one) for _ in range(runs)]
    for thread in threads:
        thread.start()
    barrier.wait()
    started = time.perf_counter()
    for thread in threads:
        thread.join()
    return time.perf_counter() - started, results


_ASYNC = text("SET LOCAL synchronous_commit = off")


def _bare_loop(deps: Deps, *, asynchronous: bool) -> tuple[float, int]:
    """Claim and advance every due row, one transaction each, doing nothing else."""
    now = NOW
    claimed = 0
    started = time.perf_counter()
    while True:
        with deps.session_factory.begin() as session:
            if asynchronous:
                session.execute(_ASYNC)
            row = repository.claim_due(session=session, now=now)
            if row is None:
                break
            repository.advance(
                session=session,
                subscription_id=row.subscription_id,
                next_run_at=ALBERTA.next_run(row.frequency, row.report_type, after=now).at,
                last_run_at=DUE,
            )
            claimed += 1
    return time.perf_counter() - started, claimed


# --- notification fan-out ---------------------------------------------------------------

TEAM = """
WITH p AS (
    INSERT INTO providers (billing_number, first_name, last_name)
    VALUES (:billing, 'Bench', 'Physician') RETURNING provider_id
), u AS (
    INSERT INTO users (email, password_hash, provider_id, role, permissions)
    SELECT :prefix || n || '@team.example', '$argon2id$bench', p.provider_id,
        CASE WHEN n = 0 THEN 'physician' ELSE 'delegate' END,
        CASE WHEN n IN (1, 2) THEN ARRAY['REPORT_VIEW', 'REPORT_EXPORT']::varchar(20)[]
             WHEN n = 3 THEN ARRAY['DATA_EXPORT']::varchar(20)[]
             ELSE '{}'::varchar(20)[] END
    FROM p, generate_series(0, 3) n
    RETURNING user_id
)
SELECT provider_id FROM p
"""

SCHEDULED = """
WITH s AS (
    INSERT INTO report_subscriptions (provider_id, report_type, frequency, delivery_method,
        next_run_at)
    VALUES (:p, 'WCB_TIMING', 'DAILY', :delivery, now() + interval '1 day')
    RETURNING subscription_id
), r AS (
    INSERT INTO generated_reports (provider_id, report_type, format, period_start, period_end,
        file_path, file_size_bytes, download_link_expires_at, scheduled, status)
    SELECT :p, 'WCB_TIMING', 'PDF', DATE '2027-01-01' + g, DATE '2027-01-08' + g,
        'reports/' || :p || '/' || gen_random_uuid(), 0, now() + interval '90 days', true,
        'pending'
    FROM generate_series(1, :n) g
    RETURNING report_id, period_start, period_end
), runs AS (
    INSERT INTO subscription_runs (subscription_id, period_start, period_end, outcome, report_id)
    SELECT s.subscription_id, r.period_start, r.period_end, 'generated', r.report_id
    FROM s, r
)
SELECT report_id FROM r
"""


def _scheduled_reports(deps: Deps, *, billing: str, delivery: str, count: int) -> list[ReportView]:
    """``count`` scheduled reports of a subscription, generating, ready to be made ready."""
    with deps.session_factory.begin() as session:
        provider_id: uuid.UUID = session.execute(
            text(TEAM), {"billing": billing, "prefix": f"s{billing}-"}
        ).scalar_one()
        ids = list(
            session.execute(
                text(SCHEDULED), {"p": provider_id, "delivery": delivery, "n": count}
            ).scalars()
        )
        session.execute(
            text("UPDATE generated_reports SET status = 'generating' WHERE report_id = ANY(:ids)"),
            {"ids": ids},
        )
    ctx = AuthContext(provider_id=provider_id)
    with deps.session_factory() as session:
        found = [reports.get_report(session=session, ctx=ctx, report_id=i) for i in ids]
    return [view for view in found if view is not None]


def _ready(deps: Deps, report: ReportView) -> tuple[float, float]:
    started = time.perf_counter()
    with deps.session_factory.begin() as session:
        ready = reports.finish_ready(session=session, report=report, size=1000, sha256=bytes(32))
        effect_started = time.perf_counter()
        report_settled(deps=deps, session=session, report=ready)
        effect = time.perf_counter() - effect_started
    return time.perf_counter() - started, effect


def _fan_out(deps: Deps, samples: int) -> dict[str, tuple[list[float], list[float]]]:
    variants: dict[str, tuple[Deps, str]] = {
        "baseline (no effect)": (deps.replace(settle_effects=()), "IN_APP"),
        "in-app (3 notices)": (deps.replace(settle_effects=(notify_settled,)), "IN_APP"),
        "email (3 notices + 3 jobs)": (deps.replace(settle_effects=(notify_settled,)), "EMAIL"),
    }
    queues = {
        name: _scheduled_reports(
            variant, billing=f"8{index:05d}", delivery=delivery, count=samples + 50
        )
        for index, (name, (variant, delivery)) in enumerate(variants.items())
    }
    out: dict[str, tuple[list[float], list[float]]] = {name: ([], []) for name in variants}
    for i in range(samples + 50):
        for name, (variant, _) in variants.items():
            whole, effect = _ready(variant, queues[name][i])
            if i >= 50:  # warming the pool, caches and plans
                out[name][0].append(whole)
                out[name][1].append(effect)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--physicians", type=int, default=2000)
    parser.add_argument("--samples", type=int, default=1000, help="fan-out samples per variant")
    args = parser.parse_args()
    total = args.physicians * len(PLAN)
    # On disk, not tmpfs: commits pay for their fsync as in production.
    cluster = ThrowawayCluster(root=Path(tempfile.gettempdir()))
    cluster.start()
    _durable(cluster)
    lines: list[str] = []
    try:
        url = cluster.clone("bench_scheduler")
        _seed(url, args.physicians)
        with tempfile.TemporaryDirectory() as tmp:
            settings = Settings(
                database_url=url,
                data_dir=Path(tmp),
                master_keys={"bench": base64.b64encode(os.urandom(32)).decode()},
                environment="test",
            )
            deps = build_deps(settings, url, role=Role.WORKER, clock=ManualClock(NOW))
            try:
                lines = _run(deps, url, total, args.samples)
            finally:
                deps.close()
    finally:
        cluster.stop()
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "scheduler.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


def _run(deps: Deps, url: str, total: int, samples: int) -> list[str]:
    rows: list[tuple[str, float, int]] = []

    def variant(name: str, measure: Callable[[], tuple[float, int]]) -> None:
        _reset(url)
        seconds, done = measure()
        assert done == total, (name, done, total)
        rows.append((name, seconds, done))

    def scheduler(runs: int) -> Callable[[], tuple[float, int]]:
        def measure() -> tuple[float, int]:
            seconds, results = _time_schedulers(deps, runs)
            made = sum(r.generated for r in results)
            reports_made = _count(deps, "SELECT count(*) FROM generated_reports WHERE scheduled")
            runs_made = _count(deps, "SELECT count(*) FROM subscription_runs")
            assert made == reports_made == runs_made == total, (made, reports_made, runs_made)
            doubled = _count(
                deps,
                "SELECT count(*) FROM (SELECT 1 FROM generated_reports GROUP BY provider_id, "
                "report_type, period_start, period_end HAVING count(*) > 1) d",
            )
            assert doubled == 0
            return seconds, sum(r.subscriptions for r in results)

        return measure

    variant("bare claim loop, durable commit", lambda: _bare_loop(deps, asynchronous=False))
    variant("bare claim loop, asynchronous commit", lambda: _bare_loop(deps, asynchronous=True))
    variant("scheduler, one run", scheduler(1))
    variant("scheduler, two overlapping runs", scheduler(2))
    fan_out = _fan_out(deps, samples)

    bare = rows[1][1]
    lines = [
        "# Scheduler: 10,000 subscriptions due at 06:00",
        "",
        f"- run: {stamp()}; machine: {describe()}",
        f"- {total:,} subscriptions of {total // len(PLAN):,} physicians, all five types, due "
        f"{DUE:%Y-%m-%d %H:%M %Z}; PostgreSQL on disk with fsync and durable commits on",
        "- each variant starts from the same due rows; counts checked by SQL after each "
        "(every report row exists, none doubled)",
        "",
        "| variant | seconds | subscriptions/s | time vs bare loop (async commit) |",
        "| --- | ---: | ---: | ---: |",
    ]
    for name, seconds, done in rows:
        lines.append(f"| {name} | {seconds:.2f} | {done / seconds:,.0f} | {seconds / bare:.2f}× |")
    base = percentile(fan_out["baseline (no effect)"][0], 0.5)
    lines += [
        "",
        "## Notification fan-out of a scheduled report",
        "",
        f"- {samples} ready transactions per variant, interleaved; the subscription's delivery "
        "is looked up in the transaction",
        "",
        "| variant | p50 ms | p95 ms | effect p50 ms | effect p95 ms | p50 − baseline ms |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name, (whole, effect) in fan_out.items():
        p50 = percentile(whole, 0.5)
        lines.append(
            f"| {name} | {p50 * 1e3:.3f} | {percentile(whole, 0.95) * 1e3:.3f} | "
            f"{percentile(effect, 0.5) * 1e3:.3f} | {percentile(effect, 0.95) * 1e3:.3f} | "
            f"{(p50 - base) * 1e3:+.3f} |"
        )
    return lines


if __name__ == "__main__":
    main()
