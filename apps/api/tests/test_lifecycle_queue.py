"""Every committed report is generated exactly once, whatever dies along the way.

Real worker processes against a real database and real encrypted files.
"""

from __future__ import annotations

import re
import subprocess
import sys
import tempfile
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select, text
from sqlalchemy.orm import Session

from factories import add_paid_claims, add_provider, expected_file
from meritum_api.context import AuthContext
from meritum_api.db.cluster import fast_root
from meritum_api.deps import Deps, Role, build_deps
from meritum_api.domains.analytics import repository, service
from meritum_api.domains.analytics.keys import storage_key
from meritum_api.settings import Settings
from meritum_shared.constants.analytics import (
    GENERATION_FAILED_MESSAGE,
    ReportFormat,
    ReportStatus,
    ReportType,
)
from meritum_shared.schemas.db import GeneratedReport
from polling import wait_until
from workers import FAST_RECOVERY, WorkerProcess, in_process_worker, worker_settings

PERIOD = (date(2026, 1, 1), date(2026, 3, 31))


@pytest.fixture(scope="module")
def workdir() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="meritum-queue-", dir=fast_root()) as path:
        yield Path(path)


@pytest.fixture(scope="module")
def runtime(db_url: str, workdir: Path) -> Iterator[Deps]:
    rt = build_deps(
        worker_settings(db_url, workdir / "reports", **FAST_RECOVERY), db_url, role=Role.COMMAND
    )
    yield rt
    rt.close()


def _provider(engine: Engine, claims: int) -> AuthContext:
    with Session(engine) as session, session.begin():
        provider_id = add_provider(session)
        if claims:
            add_paid_claims(
                session, provider_id=provider_id, count=claims, first_payment=PERIOD[0], days=80
            )
    return AuthContext(provider_id=provider_id)


def _request(runtime: Deps, ctx: AuthContext, count: int = 1) -> list[uuid.UUID]:
    with runtime.session_factory.begin() as session:
        return [
            service.request_report(
                session=session,
                ctx=ctx,
                queue=runtime.queue,
                report_type=ReportType.ACCOUNTANT_SUMMARY,
                format=ReportFormat.CSV,
                period_start=PERIOD[0],
                period_end=PERIOD[1],
            ).report_id
            for _ in range(count)
        ]


def _status(engine: Engine, report_id: uuid.UUID) -> ReportStatus:
    with Session(engine) as session:
        return session.execute(
            select(GeneratedReport.status).where(GeneratedReport.report_id == report_id)
        ).scalar_one()


def _statuses(engine: Engine, ids: list[uuid.UUID]) -> Counter[ReportStatus]:
    with Session(engine) as session:
        return Counter(
            session.scalars(
                select(GeneratedReport.status).where(GeneratedReport.report_id.in_(ids))
            ).all()
        )


def _stored(runtime: Deps, ctx: AuthContext, report_id: uuid.UUID) -> bytes:
    with runtime.session_factory() as session:
        ref, _ = repository.get_download(session=session, ctx=ctx, report_id=report_id)
        assert ref.report.file_size_bytes > 0
        content = b"".join(runtime.storage.read(ref.storage_key))
    assert len(content) == ref.report.file_size_bytes
    return content


def wait_until_or_show(worker: WorkerProcess, predicate: Callable[[], bool], **kw: Any) -> None:
    """wait_until, showing the worker's log when it times out."""
    try:
        wait_until(predicate, **kw)
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n--- worker log ---\n{worker.log()[-4000:]}") from None


def _jobs_for(engine: Engine, report_id: uuid.UUID) -> int:
    with engine.connect() as conn:
        count: int = conn.execute(
            text("SELECT count(*) FROM procrastinate_jobs WHERE args->>'report_id' = :id"),
            {"id": str(report_id)},
        ).scalar_one()
    return count


def test_rolled_back_request_leaves_neither_report_nor_job(runtime: Deps) -> None:
    ctx = _provider(runtime.engine, claims=0)
    with runtime.session_factory() as session:
        report = service.request_report(
            session=session,
            ctx=ctx,
            queue=runtime.queue,
            report_type=ReportType.ACCOUNTANT_SUMMARY,
            format=ReportFormat.CSV,
            period_start=PERIOD[0],
            period_end=PERIOD[1],
        )
        session.rollback()
    assert _jobs_for(runtime.engine, report.report_id) == 0
    with runtime.session_factory() as session:
        assert repository.get_report(session=session, ctx=ctx, report_id=report.report_id) is None


CRASH_AFTER_COMMIT = """
import os, sys, uuid
from datetime import date
from meritum_api.context import AuthContext
from meritum_api.domains.analytics import service
from meritum_api.deps import Role, build_deps
from meritum_shared.constants.analytics import ReportFormat, ReportType
from workers import worker_settings
from pathlib import Path
rt = build_deps(worker_settings(sys.argv[1], Path(sys.argv[2])), sys.argv[1], role=Role.COMMAND)
with rt.session_factory.begin() as session:
    report = service.request_report(
        session=session, ctx=AuthContext(provider_id=uuid.UUID(sys.argv[3])), queue=rt.queue,
        report_type=ReportType.ACCOUNTANT_SUMMARY, format=ReportFormat.CSV,
        period_start=date(2026, 1, 1), period_end=date(2026, 3, 31))
print(report.report_id, flush=True)
os._exit(137)  # die at once: no cleanup, no atexit, nothing after the commit
"""


def test_report_committed_by_a_process_that_dies_at_once_is_generated(
    runtime: Deps, db_url: str, workdir: Path
) -> None:
    ctx = _provider(runtime.engine, claims=50)
    crashed = subprocess.run(
        [
            sys.executable,
            "-c",
            CRASH_AFTER_COMMIT,
            db_url,
            str(workdir / "reports"),
            str(ctx.provider_id),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=Path(__file__).parent,
        check=False,
    )
    assert crashed.returncode == 137, crashed.stderr
    report_id = uuid.UUID(crashed.stdout.strip())
    assert _status(runtime.engine, report_id) is ReportStatus.PENDING
    assert _jobs_for(runtime.engine, report_id) == 1  # committed together with the row
    with WorkerProcess(db_url, workdir / "reports", workdir / "crash.log", **FAST_RECOVERY):
        wait_until(
            lambda: _status(runtime.engine, report_id) is ReportStatus.READY,
            timeout=60,
            what="the orphaned report to become ready",
        )
    assert _stored(runtime, ctx, report_id) == expected_file(runtime.engine, ctx, report_id)


def test_idle_worker_is_woken_by_notification_not_polling(runtime: Deps, db_url: str) -> None:
    ctx = _provider(runtime.engine, claims=5)
    # Polling every 10 minutes: only LISTEN/NOTIFY can explain a prompt pickup.
    with in_process_worker(db_url, runtime, poll_seconds=600):
        wait_until(lambda: True, timeout=1, what="nothing")
        for _ in range(5):
            (report_id,) = _request(runtime, ctx)
            wait_until(
                lambda rid=report_id: _status(runtime.engine, rid) is ReportStatus.READY,  # type: ignore[misc]
                timeout=20,
                what="a notified worker to generate the report",
            )


def test_sigkilled_workers_lose_no_report(runtime: Deps, db_url: str, workdir: Path) -> None:
    """Kill a worker mid-generation, three times over; every report still ends ready."""
    ctx = _provider(runtime.engine, claims=300_000)  # seconds of work per report
    kills = 0
    for round_ in range(3):
        (report_id,) = _request(runtime, ctx)
        key = storage_key(provider_id=ctx.provider_id, report_id=report_id)
        victim = WorkerProcess(
            db_url, workdir / "reports", workdir / f"victim-{round_}.log", **FAST_RECOVERY
        )
        wait_until(
            lambda rid=report_id: _status(runtime.engine, rid) is ReportStatus.GENERATING,  # type: ignore[misc]
            timeout=60,
            what="generation to start",
        )
        victim.kill()
        kills += 1
        assert _status(runtime.engine, report_id) is ReportStatus.GENERATING
        assert not runtime.storage.exists(key), "a half-written file became visible"
        with WorkerProcess(
            db_url, workdir / "reports", workdir / f"rescuer-{round_}.log", **FAST_RECOVERY
        ) as rescuer:
            wait_until_or_show(
                rescuer,
                lambda rid=report_id: _status(runtime.engine, rid) is ReportStatus.READY,  # type: ignore[misc]
                timeout=60,
                what="the killed worker's report to be retried and become ready",
            )
            assert "stalled: retrying it" in rescuer.log()
        assert _stored(runtime, ctx, report_id) == expected_file(runtime.engine, ctx, report_id)
    assert kills == 3


def test_three_workers_generate_each_of_200_reports_exactly_once(
    runtime: Deps, db_url: str, workdir: Path
) -> None:
    ctx = _provider(runtime.engine, claims=20)
    ids = _request(runtime, ctx, count=200)
    logs = [workdir / f"many-{n}.log" for n in range(3)]
    workers = [
        WorkerProcess(db_url, workdir / "reports", log, worker_concurrency="2", **FAST_RECOVERY)
        for log in logs
    ]
    try:
        wait_until(
            lambda: _statuses(runtime.engine, ids)[ReportStatus.READY] == 200,
            timeout=180,
            what="200 reports to become ready",
        )
    finally:
        for worker in workers:
            worker.stop()
    started = Counter(
        match
        for log in logs
        for match in re.findall(r"report ([0-9a-f-]{36}): generating", log.read_text())
    )
    assert set(started) == {str(i) for i in ids}
    assert set(started.values()) == {1}, "a report was generated more than once"
    busy = [log for log in logs if "generating" in log.read_text()]
    assert len(busy) >= 2, "the work was not shared between worker processes"


def test_failing_generation_ends_failed_with_the_generic_message(
    runtime: Deps, db_url: str, workdir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    ctx = _provider(runtime.engine, claims=5)
    broken_root = workdir / "not-a-directory"
    broken_root.write_text("the storage root is a file: every write fails")
    settings = worker_settings(
        db_url, broken_root, generation_retries="2", generation_backoff_seconds="0"
    )
    broken = build_deps(settings, db_url, role=Role.COMMAND)
    try:
        (report_id,) = _request(broken, ctx)
        with in_process_worker(db_url, broken, poll_seconds=0.2):
            wait_until(
                lambda: _status(runtime.engine, report_id) is ReportStatus.FAILED,
                timeout=60,
                what="the report to end failed",
            )
    finally:
        broken.close()
    with runtime.session_factory() as session:
        view = repository.get_report(session=session, ctx=ctx, report_id=report_id)
    assert view is not None
    assert view.error_message == GENERATION_FAILED_MESSAGE
    failures = [r.getMessage() for r in caplog.records if "generation failed" in r.getMessage()]
    assert len(failures) == 3  # the first attempt and two retries
    assert "will retry" in failures[0]
    assert "giving up" in failures[-1]
    key = storage_key(provider_id=ctx.provider_id, report_id=report_id)
    assert all(key not in message for message in failures)


def test_a_dead_worker_holding_the_maintenance_locks_blocks_nothing(
    runtime: Deps, db_url: str
) -> None:
    """A worker killed while running the stalled check and the cleanup (their jobs
    left ``doing``, holding their locks) and a report: a live worker recovers all."""
    ctx = _provider(runtime.engine, claims=5)
    (report_id,) = _request(runtime, ctx)
    with runtime.engine.begin() as conn:
        dead = conn.execute(
            text(
                "INSERT INTO procrastinate_workers (last_heartbeat) "
                "VALUES (now() - interval '1 hour') RETURNING id"
            )
        ).scalar_one()
        stuck = (
            conn.execute(
                text(
                    "INSERT INTO procrastinate_jobs (queue_name, task_name, lock, args)"
                    " VALUES ('maintenance', 'queue.retry_stalled', 'queue.retry_stalled',"
                    " '{\"timestamp\": 1}'), ('maintenance', 'reports.retention_cleanup',"
                    " 'reports.retention_cleanup', '{\"timestamp\": 1}') RETURNING id"
                )
            )
            .scalars()
            .all()
        )
        conn.execute(
            text(
                "UPDATE procrastinate_jobs SET status = 'doing', worker_id = :w "
                "WHERE id = ANY(:ids) OR args->>'report_id' = :r"
            ),
            {"w": dead, "ids": list(stuck), "r": str(report_id)},
        )
        conn.execute(
            text("UPDATE generated_reports SET status = 'generating' WHERE report_id = :r"),
            {"r": report_id},
        )
    with in_process_worker(db_url, runtime, poll_seconds=0.2):
        wait_until(
            lambda: _status(runtime.engine, report_id) is ReportStatus.READY,
            timeout=60,
            what="the dead worker's report to be retried",
        )

        def abandoned() -> bool:
            with runtime.engine.connect() as conn:
                statuses = (
                    conn.execute(
                        text("SELECT status::text FROM procrastinate_jobs WHERE id = ANY(:ids)"),
                        {"ids": list(stuck)},
                    )
                    .scalars()
                    .all()
                )
            return sorted(statuses) == ["failed", "failed"]

        wait_until(abandoned, timeout=30, what="the dead maintenance runs to be finished")


def test_default_settings_retry_a_killed_workers_report_within_the_documented_bound(
    runtime: Deps, db_url: str, workdir: Path
) -> None:
    """With the shipped defaults (no test overrides), a SIGKILLed worker's report is retried.

    Documented bound: stalled after 20 s without a heartbeat, checked every
    5 s, so the retry starts at most 25 s after the kill (a few seconds of
    slack for a loaded machine). A check cron read with seconds in the wrong
    field fires only in every fifth minute and misses this by minutes.
    """
    defaults = Settings()
    bound = defaults.stalled_after_seconds + 5
    ctx = _provider(runtime.engine, claims=300_000)
    (report_id,) = _request(runtime, ctx)
    victim = WorkerProcess(db_url, workdir / "reports", workdir / "default-victim.log")
    wait_until(
        lambda: _status(runtime.engine, report_id) is ReportStatus.GENERATING,
        timeout=60,
        what="generation to start",
    )
    victim.kill()
    with WorkerProcess(db_url, workdir / "reports", workdir / "default-rescuer.log") as rescuer:
        waited = wait_until(
            lambda: "stalled: retrying it" in rescuer.log(),
            timeout=bound + 5,
            what=f"the default stalled check to retry the report (bound {bound:.0f} s)",
        )
        assert waited <= bound + 5
        wait_until_or_show(
            rescuer,
            lambda: _status(runtime.engine, report_id) is ReportStatus.READY,
            timeout=60,
            what="the retried report to become ready",
        )
    assert _stored(runtime, ctx, report_id) == expected_file(runtime.engine, ctx, report_id)
