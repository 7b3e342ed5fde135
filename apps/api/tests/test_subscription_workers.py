"""The scheduler as deployed: a periodic task in real worker processes, killed and restarted.

The workers run on the wall clock, so the subscriptions are made due in real
time: each one's next run is set to the latest run instant before now.
"""

from __future__ import annotations

import itertools
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from meritum_api.calendar import ALBERTA
from meritum_api.db.cluster import fast_root
from meritum_api.domains.analytics.jobs import GENERATE
from meritum_shared.constants.analytics import ReportType, SubscriptionFrequency
from polling import wait_until
from workers import FAST_RECOVERY, WorkerProcess

_BILLING = itertools.count(500)

#: Workers that run the scheduler every second and give up a report at once
#: (the scheduled kinds' generators are not what these tests are about).
SETTINGS = {
    **FAST_RECOVERY,
    "subscription_schedule_cron": "* * * * * *",
    "generation_retries": "0",
}


@pytest.fixture(scope="module")
def workdir() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="meritum-sched-workers-", dir=fast_root()) as path:
        yield Path(path)


def _due_subscriptions(engine: Engine, count: int) -> datetime:
    """``count`` physicians' daily WCB timing subscriptions, due now; returns the due instant."""
    due = ALBERTA.next_run(
        SubscriptionFrequency.DAILY,
        ReportType.WCB_TIMING,
        after=datetime.now(UTC) - timedelta(days=1),
    ).at
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM report_subscriptions"))
        conn.execute(
            text(
                "WITH p AS (INSERT INTO providers (billing_number, first_name, last_name) "
                "SELECT (:base + g)::text, 'First', 'Last' FROM generate_series(1, :n) g "
                "RETURNING provider_id) "
                "INSERT INTO report_subscriptions (provider_id, report_type, frequency, "
                "next_run_at) SELECT provider_id, 'WCB_TIMING', 'DAILY', :due FROM p"
            ),
            {"n": count, "due": due, "base": next(_BILLING) * 10_000},
        )
    return due


def _state(engine: Engine, due: datetime) -> dict[str, int]:
    with engine.connect() as conn:
        row = conn.execute(
            text(
                """
                SELECT
                  (SELECT count(*) FROM report_subscriptions) AS subscriptions,
                  (SELECT count(*) FROM report_subscriptions
                   WHERE next_run_at <= now()) AS still_due,
                  (SELECT count(*) FROM subscription_runs) AS runs,
                  (SELECT count(DISTINCT subscription_id) FROM subscription_runs
                   WHERE period_start = (:due AT TIME ZONE 'America/Edmonton')::date
                  ) AS first_period_done,
                  (SELECT count(*) FROM subscription_runs sr
                   JOIN generated_reports r USING (report_id)
                   WHERE r.scheduled AND r.period_start = sr.period_start
                     AND r.period_end = sr.period_end) AS runs_with_their_report,
                  (SELECT count(*) FROM generated_reports r
                   JOIN report_subscriptions s ON s.provider_id = r.provider_id
                   WHERE r.scheduled) AS reports,
                  (SELECT count(*) FROM generated_reports r
                   JOIN report_subscriptions s ON s.provider_id = r.provider_id
                   WHERE r.scheduled AND (r.status <> 'pending' OR EXISTS (
                     SELECT 1 FROM procrastinate_jobs j
                     WHERE j.task_name = :generate AND j.args->>'report_id' = r.report_id::text
                   ))) AS reports_with_a_job,
                  (SELECT count(*) FROM (
                     SELECT 1 FROM generated_reports r
                     JOIN report_subscriptions s ON s.provider_id = r.provider_id
                     WHERE r.scheduled
                     GROUP BY r.provider_id, r.period_start, r.period_end HAVING count(*) > 1
                   ) d) AS doubled
                """
            ),
            {"due": due, "generate": GENERATE},
        ).one()
    return dict(row._mapping)


def _consistent(state: dict[str, int]) -> None:
    """Nothing half done: every run has its report, every report its job, none doubled.

    A report's job is in the queue, or it has run (a worker deletes a finished job).
    """
    assert state["doubled"] == 0, state
    assert state["runs"] == state["runs_with_their_report"] == state["reports"], state
    assert state["reports_with_a_job"] == state["reports"], state


def _show(workers: list[WorkerProcess]) -> str:
    return "\n".join(f"--- {w.log_path.name} ---\n{w.log()[-3000:]}" for w in workers)


def test_two_worker_processes_produce_each_of_500_periods_once(
    engine: Engine, db_url: str, workdir: Path
) -> None:
    due = _due_subscriptions(engine, 500)
    logs = [workdir / f"pair-{n}.log" for n in range(2)]
    workers = [
        WorkerProcess(db_url, workdir / "reports", log, worker_concurrency="2", **SETTINGS)
        for log in logs
    ]
    try:
        try:
            wait_until(
                lambda: _state(engine, due)["still_due"] == 0,
                timeout=180,
                what="every subscription to be scheduled",
            )
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{_show(workers)}") from None
        state = _state(engine, due)
    finally:
        for worker in workers:
            worker.stop()
    _consistent(state)
    # 0 lost: every subscription produced its due period; 0 doubled (checked above).
    assert state["first_period_done"] == 500, state
    assert "scheduler: " in "".join(log.read_text() for log in logs)


def test_a_scheduler_killed_mid_batch_loses_and_doubles_nothing(
    engine: Engine, db_url: str, workdir: Path
) -> None:
    due = _due_subscriptions(engine, 3000)
    victim = WorkerProcess(db_url, workdir / "reports", workdir / "victim.log", **SETTINGS)
    try:
        wait_until(
            lambda: _state(engine, due)["runs"] >= 50,
            timeout=120,
            what="the scheduler to be under way",
        )
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{_show([victim])}") from None
    finally:
        victim.kill()
    at_kill = _state(engine, due)
    assert 0 < at_kill["runs"] < 3000, "the scheduler was not killed mid-batch"
    _consistent(at_kill)  # each subscription is either untouched or completely done
    with WorkerProcess(db_url, workdir / "reports", workdir / "rescuer.log", **SETTINGS) as rescuer:
        try:
            wait_until(
                lambda: _state(engine, due)["still_due"] == 0,
                timeout=240,
                what="the rest to be scheduled after the kill",
            )
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{_show([victim, rescuer])}") from None
        # The killed run held the scheduler's lock; the stalled check gave it up.
        assert "stalled: abandoned" in rescuer.log()
    final = _state(engine, due)
    _consistent(final)
    assert final["first_period_done"] == 3000, final
    assert final["runs"] >= 3000
