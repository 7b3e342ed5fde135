"""Retention cleanup on real rows and real encrypted files."""

from __future__ import annotations

import tempfile
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import delete, select, text, update

from factories import add_provider, report_values
from meritum_api.clock import ManualClock
from meritum_api.db.cluster import fast_root
from meritum_api.deps import Deps, Role, build_deps
from meritum_api.domains.analytics.cleanup import CleanupResult, run_cleanup, sweep_orphans
from meritum_api.domains.analytics.keys import storage_key
from meritum_shared.constants.analytics import ReportStatus
from meritum_shared.schemas.db import GeneratedReport, generated_report_contents, generated_reports
from polling import wait_until
from workers import worker_settings


@pytest.fixture
def runtime(db_url: str) -> Iterator[Deps]:
    with tempfile.TemporaryDirectory(prefix="meritum-cleanup-", dir=fast_root()) as path:
        rt = build_deps(worker_settings(db_url, Path(path) / "reports"), db_url, role=Role.COMMAND)
        with rt.session_factory.begin() as session:
            session.execute(delete(GeneratedReport))
        yield rt
        rt.close()


def _deps(runtime: Deps, *, now: datetime | None = None, **overrides: object) -> Deps:
    settings = runtime.settings.model_copy(update=overrides)
    if now is None:
        return runtime.replace(settings=settings)
    return runtime.replace(settings=settings, clock=ManualClock(now))


def _report(
    runtime: Deps, *, status: ReportStatus, expired: bool, with_file: bool = True
) -> tuple[uuid.UUID, str]:
    with runtime.session_factory.begin() as session:
        provider_id = add_provider(session)
        report_id = uuid.uuid4()
        key = storage_key(provider_id=provider_id, report_id=report_id)
        expires = datetime.now(UTC) + (timedelta(days=-1) if expired else timedelta(days=5))
        session.execute(
            generated_reports.insert().values(
                **report_values(
                    provider_id,
                    report_id=report_id,
                    file_path=key,
                    status=status,
                    file_size_bytes=12,
                    download_link_expires_at=expires,
                )
            )
        )
        if status is ReportStatus.READY:  # a ready report always has its digest
            session.execute(
                generated_report_contents.insert().values(report_id=report_id, sha256=bytes(32))
            )
    if with_file:
        runtime.storage.write(key, [b"date,fee\r\n", b"x\r\n"])
    return report_id, key


def _status(runtime: Deps, report_id: uuid.UUID) -> ReportStatus:
    with runtime.session_factory() as session:
        return session.execute(
            select(GeneratedReport.status).where(GeneratedReport.report_id == report_id)
        ).scalar_one()


def test_cleanup_expires_due_reports_deletes_their_files_and_nothing_else(
    runtime: Deps,
) -> None:
    due_ready = [_report(runtime, status=ReportStatus.READY, expired=True) for _ in range(3)]
    due_failed = _report(runtime, status=ReportStatus.FAILED, expired=True, with_file=False)
    live_ready = _report(runtime, status=ReportStatus.READY, expired=False)
    pending_past = _report(runtime, status=ReportStatus.PENDING, expired=True, with_file=False)
    generating = _report(runtime, status=ReportStatus.GENERATING, expired=True)

    result = run_cleanup(deps=_deps(runtime, cleanup_batch_size=2))

    assert result == CleanupResult(expired=4, files_deleted=3, orphans_deleted=0)
    for report_id, key in due_ready:
        assert _status(runtime, report_id) is ReportStatus.EXPIRED
        assert not runtime.storage.exists(key)
    assert _status(runtime, due_failed[0]) is ReportStatus.EXPIRED
    # Still downloadable, or still being produced: untouched, files kept.
    assert _status(runtime, live_ready[0]) is ReportStatus.READY
    assert runtime.storage.exists(live_ready[1])
    assert _status(runtime, pending_past[0]) is ReportStatus.PENDING
    assert _status(runtime, generating[0]) is ReportStatus.GENERATING
    assert runtime.storage.exists(generating[1])

    again = run_cleanup(deps=_deps(runtime, cleanup_batch_size=2))
    assert again == CleanupResult(expired=0, files_deleted=0, orphans_deleted=0)
    assert runtime.storage.exists(live_ready[1])


def test_cleanup_tolerates_files_already_missing(runtime: Deps) -> None:
    report_id, key = _report(runtime, status=ReportStatus.READY, expired=True)
    assert runtime.storage.delete(key)
    result = run_cleanup(deps=_deps(runtime))
    assert result.expired == 1
    assert result.files_deleted == 0
    assert _status(runtime, report_id) is ReportStatus.EXPIRED


def test_orphans_are_swept_only_after_the_grace_period(runtime: Deps) -> None:
    orphan_key = f"reports/{uuid.uuid4()}/{uuid.uuid4()}"
    runtime.storage.write(orphan_key, [b"left behind by a crash"])
    expired_id, expired_key = _report(runtime, status=ReportStatus.READY, expired=True)
    # The row moved to expired but the process died before deleting the file.
    with runtime.session_factory.begin() as session:
        session.execute(
            update(GeneratedReport)
            .where(GeneratedReport.report_id == expired_id)
            .values(status=ReportStatus.EXPIRED)
        )
    _, live_key = _report(runtime, status=ReportStatus.READY, expired=False)
    _, pending_key = _report(runtime, status=ReportStatus.PENDING, expired=False)

    young = run_cleanup(deps=_deps(runtime, orphan_grace_seconds=3600))
    assert young.orphans_deleted == 0
    assert runtime.storage.exists(orphan_key)

    later = datetime.now(UTC) + timedelta(hours=2)
    swept = sweep_orphans(deps=_deps(runtime, orphan_grace_seconds=3600, now=later))
    assert swept == 2
    assert not runtime.storage.exists(orphan_key)
    assert not runtime.storage.exists(expired_key)
    assert runtime.storage.exists(live_key)
    assert runtime.storage.exists(pending_key)
    assert sweep_orphans(deps=_deps(runtime, orphan_grace_seconds=3600, now=later)) == 0


def test_concurrent_cleanups_expire_each_report_once(runtime: Deps) -> None:
    due = [_report(runtime, status=ReportStatus.READY, expired=True) for _ in range(40)]
    results: list[CleanupResult] = []
    deps = _deps(runtime, cleanup_batch_size=3)

    def run() -> None:
        results.append(run_cleanup(deps=deps))

    threads = [threading.Thread(target=run) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sum(r.expired for r in results) == len(due)
    assert sum(r.files_deleted for r in results) == len(due)
    with runtime.session_factory() as session:
        left = session.execute(
            text("SELECT count(*) FROM generated_reports WHERE status <> 'expired'")
        ).scalar_one()
    assert left == 0


def test_cleanup_discards_abandoned_partial_writes_after_the_grace_period(
    runtime: Deps,
) -> None:
    # A writer that stops mid-file (as a killed worker does) leaves a partial.
    release = threading.Event()
    failures: list[BaseException] = []

    def stalled_chunks() -> Iterator[bytes]:
        yield b"first rows\r\n" * 10_000
        release.wait(30)
        yield b"never finished"

    def write() -> None:
        try:
            runtime.storage.write(f"reports/{uuid.uuid4()}/{uuid.uuid4()}", stalled_chunks())
        except Exception as exc:  # its partial was discarded under it
            failures.append(exc)

    writer = threading.Thread(target=write, daemon=True)
    writer.start()
    partials = Path(runtime.settings.resolved_storage_dir()) / ".partial"
    wait_until(lambda: any(partials.glob("*")), timeout=10, what="the partial write")
    young = run_cleanup(deps=_deps(runtime, orphan_grace_seconds=3600))
    assert young.partials_discarded == 0
    later = datetime.now(UTC) + timedelta(hours=2)
    old = run_cleanup(deps=_deps(runtime, orphan_grace_seconds=3600, now=later))
    assert old.partials_discarded == 1
    assert not any(partials.glob("*"))
    release.set()
    writer.join(timeout=30)
    assert len(failures) == 1  # the stalled write could not publish a file any more
    assert list(runtime.storage.list("reports/")) == []
