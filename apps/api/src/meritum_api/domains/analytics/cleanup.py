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
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from meritum_api.domains.analytics import export_secrets, repository
from meritum_api.domains.analytics.keys import REPORTS_PREFIX, report_id_of

if TYPE_CHECKING:
    from meritum_api.deps import Deps

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class CleanupResult:
    """What one cleanup run did."""

    expired: int
    files_deleted: int
    orphans_deleted: int
    #: Unfinished writes of killed workers (temporary files, incomplete uploads).
    partials_discarded: int = 0
    #: Sealed export passwords left behind (their report settled or expired).
    secrets_discarded: int = 0


def expire_reports(*, deps: Deps) -> tuple[int, int]:
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


def _grace_cutoff(deps: Deps) -> datetime:
    # Anything younger may belong to a row or a write still committing.
    return deps.clock.now() - timedelta(seconds=deps.settings.orphan_grace_seconds)


def sweep_orphans(*, deps: Deps) -> int:
    """Delete report files older than the grace period whose row is gone or expired."""
    cutoff = _grace_cutoff(deps)
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
        report_id = report_id_of(listed.key)
        if report_id is None:
            continue  # not a report file: not ours to judge
        candidates.setdefault(report_id, []).append(listed.key)
        if len(candidates) >= 500:
            deleted += flush()
    if candidates:
        deleted += flush()
    return deleted


def run_cleanup(*, deps: Deps) -> CleanupResult:
    """One idempotent cleanup pass: expiry, sealed passwords, orphans, abandoned partial writes."""
    expired, files = expire_reports(deps=deps)
    # Settling deletes a password already; this is the "at expiry at the latest"
    # for a report whose generation never ended (or a settle that predates it).
    with deps.session_factory.begin() as session:
        secrets = export_secrets.discard_unneeded(session=session)
    orphans = sweep_orphans(deps=deps)
    # A write still in progress is younger than the grace period: never touched.
    partials = deps.storage.discard_partials(older_than=_grace_cutoff(deps))
    if expired or orphans or partials or secrets:
        log.info(
            "cleanup: %d reports expired, %d files deleted, %d orphans, %d partial writes, "
            "%d sealed passwords",
            expired,
            files,
            orphans,
            partials,
            secrets,
        )
    return CleanupResult(
        expired=expired,
        files_deleted=files,
        orphans_deleted=orphans,
        partials_discarded=partials,
        secrets_discarded=secrets,
    )
