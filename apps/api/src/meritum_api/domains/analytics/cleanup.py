"""Retention cleanup: expire reports past their link and delete their files.

Order matters for safety: a row is first moved to ``expired`` (and
committed), and only then is its file deleted. A crash in between leaves a
file whose row is expired; the orphan sweep removes it later. A file whose
row may still be downloaded is never touched.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from meritum_api.domains.analytics import repository
from meritum_api.domains.analytics.generation import WorkerDeps

log = logging.getLogger(__name__)

REPORTS_PREFIX = "reports/"


@dataclass(frozen=True, slots=True)
class CleanupResult:
    """What one cleanup run did."""

    expired: int
    files_deleted: int
    orphans_deleted: int
    #: Unfinished writes of killed workers (temporary files, incomplete uploads).
    partials_discarded: int = 0


def _report_id_of(key: str) -> uuid.UUID | None:
    parts = key.split("/")
    if len(parts) != 3 or parts[0] != "reports":
        return None
    try:
        return uuid.UUID(parts[2])
    except ValueError:
        return None


def expire_reports(*, deps: WorkerDeps) -> tuple[int, int]:
    """Expire every due report in bounded batches; return (rows expired, files deleted)."""
    expired = deleted = 0
    batch = deps.settings.cleanup_batch_size
    while True:
        with deps.session_factory.begin() as session:
            keys = repository.expire_due(session=session, limit=batch)
        expired += len(keys)
        for key in keys:
            if deps.storage.delete(key):  # False when already missing: fine
                deleted += 1
        if len(keys) < batch:
            return expired, deleted


def sweep_orphans(*, deps: WorkerDeps, now: datetime | None = None) -> int:
    """Delete report files older than the grace period whose row is gone or expired."""
    cutoff = (now or datetime.now(UTC)) - timedelta(seconds=deps.settings.orphan_grace_seconds)
    deleted = 0
    candidates: dict[uuid.UUID, list[str]] = {}

    def flush() -> int:
        with deps.session_factory() as session:
            live = repository.live_report_ids(session=session, report_ids=list(candidates))
        removed = 0
        for report_id, keys in candidates.items():
            if report_id in live:
                continue
            for key in keys:
                removed += int(deps.storage.delete(key))
        candidates.clear()
        return removed

    for listed in deps.storage.list(REPORTS_PREFIX):
        if listed.modified_at > cutoff:
            continue
        report_id = _report_id_of(listed.key)
        if report_id is None:
            continue  # not a report file: not ours to judge
        candidates.setdefault(report_id, []).append(listed.key)
        if len(candidates) >= 500:
            deleted += flush()
    if candidates:
        deleted += flush()
    return deleted


def run_cleanup(*, deps: WorkerDeps, now: datetime | None = None) -> CleanupResult:
    """One idempotent cleanup pass: expiry, the orphan sweep, abandoned partial writes."""
    expired, files = expire_reports(deps=deps)
    orphans = sweep_orphans(deps=deps, now=now)
    # A write still in progress is younger than the grace period: never touched.
    cutoff = (now or datetime.now(UTC)) - timedelta(seconds=deps.settings.orphan_grace_seconds)
    partials = deps.storage.discard_partials(older_than=cutoff)
    if expired or orphans or partials:
        log.info(
            "cleanup: %d reports expired, %d files deleted, %d orphans, %d partial writes",
            expired,
            files,
            orphans,
            partials,
        )
    return CleanupResult(
        expired=expired, files_deleted=files, orphans_deleted=orphans, partials_discarded=partials
    )
