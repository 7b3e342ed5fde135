"""Producing one report's file: claim the row, stream the generator into storage, settle.

This is storage glue: it alone (with the repository and the cleanup) sees a
report's storage key, and never logs it.
"""

from __future__ import annotations

import logging
import traceback
import uuid
from collections.abc import Callable
from enum import StrEnum
from typing import TYPE_CHECKING

from meritum_api.calendar import ALBERTA, BusinessCalendar
from meritum_api.domains.analytics import export_secrets, repository
from meritum_api.domains.analytics.effects import report_settled
from meritum_api.domains.analytics.exceptions import TransitionConflict
from meritum_api.domains.analytics.generators import GenerationRequest
from meritum_shared.constants.analytics import (
    GENERATION_FAILED_MESSAGE,
    ReportStatus,
    ReportType,
)

if TYPE_CHECKING:
    from pydantic import SecretStr
    from sqlalchemy.orm import Session

    from meritum_api.deps import Deps
    from meritum_api.domains.analytics.schemas import ReportView

log = logging.getLogger(__name__)


class Outcome(StrEnum):
    READY = "ready"
    FAILED = "failed"
    RETRY = "retry"
    NOTHING_TO_DO = "nothing_to_do"


def describe_failure(exc: BaseException) -> str:
    """Where and what failed, without the exception's message (it may hold PHI or keys)."""
    frames = traceback.extract_tb(exc.__traceback__)[-4:]
    where = " <- ".join(f"{f.name}@{f.filename.rsplit('/', 1)[-1]}:{f.lineno}" for f in frames)
    return f"{type(exc).__name__} at {where or 'unknown'}"


def request_for(
    report: ReportView,
    *,
    password: SecretStr | None = None,
    calendar: BusinessCalendar = ALBERTA,
) -> GenerationRequest:
    """What a generator is asked to make of a report's row."""
    return GenerationRequest(
        report_id=report.report_id,
        provider_id=report.provider_id,
        report_type=report.report_type,
        format=report.format,
        period_start=report.period_start,
        period_end=report.period_end,
        created_at=report.created_at,
        password=password,
        calendar=calendar,
    )


def _export_password(deps: Deps, session: Session, report: ReportView) -> SecretStr | None:
    """A protected export's password, unsealed for this run only (never logged or kept)."""
    if report.report_type is not ReportType.DATA_PORTABILITY:
        return None
    password = export_secrets.load(
        session=session, keyring=deps.keyring, report_id=report.report_id
    )
    if password is None and export_secrets.was_protected(session=session, report=report):
        # Never fall back to an archive without the protection that was asked for.
        raise export_secrets.ExportSecretMissing("the sealed password of the export is gone")
    return password


def generate_report(
    *,
    deps: Deps,
    report_id: uuid.UUID,
    is_final_attempt: Callable[[BaseException], bool],
) -> Outcome:
    """Generate one report; raise to ask for a retry, settle it ``failed`` when none is left."""
    # First transaction: the claim is committed at once so that the status
    # says "generating" while the work goes on.
    with deps.session_factory.begin() as session:
        claimed = repository.begin_generation(session=session, report_id=report_id)
    if not claimed:
        return Outcome.NOTHING_TO_DO
    try:
        # Second transaction: holds the report's row lock from before the
        # first byte is written until the ready status commits (see
        # repository.lock_for_writing), so only one writer ever publishes.
        with deps.session_factory.begin() as session:
            ref = repository.lock_for_writing(session=session, report_id=report_id)
            if ref is None:
                return Outcome.NOTHING_TO_DO  # another worker finished it meanwhile
            report = ref.report
            log.info("report %s: generating", report_id)
            generator = deps.generators(report.report_type, report.format)
            request = request_for(
                report, password=_export_password(deps, session, report), calendar=deps.calendar
            )
            with deps.engine.connect() as conn:
                # The write is atomic: until it returns nothing is visible under
                # the key, so a process killed here leaves no half-written file.
                stored = deps.storage.write(ref.storage_key, generator(conn, request))
            ready = repository.finish_ready(
                session=session, report=report, size=stored.size, sha256=stored.sha256
            )
            report_settled(deps=deps, session=session, report=ready)
    except Exception as exc:
        final = is_final_attempt(exc)
        log.error(
            "report %s: generation failed (%s); %s",
            report_id,
            describe_failure(exc),
            "giving up" if final else "will retry",
        )
        with deps.session_factory.begin() as session:
            try:
                moved = repository.move_status(
                    session=session,
                    report_id=report_id,
                    expected=ReportStatus.GENERATING,
                    target=ReportStatus.FAILED if final else ReportStatus.PENDING,
                    **({"error_message": GENERATION_FAILED_MESSAGE} if final else {}),
                )
                if final:
                    report_settled(deps=deps, session=session, report=moved)
            except TransitionConflict:
                log.warning("report %s: moved by another process while failing", report_id)
        if final:
            return Outcome.FAILED
        raise
    log.info("report %s: ready (%d bytes)", report_id, stored.size)
    return Outcome.READY
