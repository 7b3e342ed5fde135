"""Rules of requesting reports; the caller owns the transaction."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import Final

import procrastinate
from sqlalchemy.orm import Session

from meritum_api.context import AuthContext
from meritum_api.domains.analytics import repository
from meritum_api.domains.analytics.exceptions import (
    IdempotencyKeyReused,
    RequestLimitReached,
    UnsupportedReport,
)
from meritum_api.domains.analytics.generators import is_supported
from meritum_api.domains.analytics.jobs import defer_generation
from meritum_api.domains.analytics.schemas import ReportView
from meritum_shared.constants.analytics import ReportFormat, ReportType


def request_report(
    *,
    session: Session,
    ctx: AuthContext,
    queue: procrastinate.App,
    report_type: ReportType,
    format: ReportFormat,
    period_start: date | None,
    period_end: date | None,
    scheduled: bool = False,
) -> ReportView:
    """Create a pending report and enqueue its generation in the same transaction."""
    # Refused here, when asked, rather than discovered later by a worker.
    if not is_supported(report_type, format):
        raise UnsupportedReport.for_pair(report_type, format)
    report = repository.create_report(
        session=session,
        ctx=ctx,
        report_type=report_type,
        format=format,
        period_start=period_start,
        period_end=period_end,
        scheduled=scheduled,
    )
    defer_generation(app=queue, session=session, report_id=report.report_id)
    return report


#: Data portability exports a physician may request per day (they are heavy).
PORTABILITY_PER_DAY: Final = 3


@dataclass(frozen=True, slots=True)
class Requested:
    """A requested report; ``replayed`` when an Idempotency-Key named an earlier one."""

    report: ReportView
    replayed: bool


class _KeyTaken(Exception):
    """A concurrent request bound the Idempotency-Key first."""


def request_fingerprint(endpoint: str, body: Mapping[str, object]) -> bytes:
    """SHA-256 of an endpoint and its canonical JSON body: what a replay must match."""
    canonical = json.dumps(
        {"endpoint": endpoint, "body": body}, sort_keys=True, separators=(",", ":"), default=str
    )
    return hashlib.sha256(canonical.encode()).digest()


def request_once(
    *,
    session: Session,
    ctx: AuthContext,
    queue: procrastinate.App,
    idempotency_key: str | None,
    fingerprint: bytes,
    report_type: ReportType,
    format: ReportFormat,
    period_start: date | None,
    period_end: date | None,
) -> Requested:
    """Request a report, at most once per Idempotency-Key of this provider within 24 hours."""

    def create() -> ReportView:
        if report_type is ReportType.DATA_PORTABILITY:
            _check_portability_limit(session=session, ctx=ctx)
        return request_report(
            session=session,
            ctx=ctx,
            queue=queue,
            report_type=report_type,
            format=format,
            period_start=period_start,
            period_end=period_end,
        )

    if idempotency_key is None:
        return Requested(create(), replayed=False)
    earlier = _replay(session=session, ctx=ctx, key=idempotency_key, fingerprint=fingerprint)
    if earlier is not None:
        return earlier
    try:
        # A savepoint: if another request bound the key meanwhile, this
        # report and its job vanish together and the winner's is answered.
        with session.begin_nested():
            report = create()
            if not repository.claim_idempotency_key(
                session=session,
                ctx=ctx,
                key=idempotency_key,
                fingerprint=fingerprint,
                report_id=report.report_id,
            ):
                raise _KeyTaken
    except _KeyTaken:
        winner = _replay(session=session, ctx=ctx, key=idempotency_key, fingerprint=fingerprint)
        if winner is None:  # the winner's report is already gone: nothing to replay
            raise IdempotencyKeyReused from None
        return winner
    return Requested(report, replayed=False)


def _replay(
    *, session: Session, ctx: AuthContext, key: str, fingerprint: bytes
) -> Requested | None:
    found = repository.find_idempotent(session=session, ctx=ctx, key=key)
    if found is None:
        return None
    stored_fingerprint, report_id = found
    if not hmac.compare_digest(stored_fingerprint, fingerprint):
        raise IdempotencyKeyReused
    report = repository.get_report(session=session, ctx=ctx, report_id=report_id)
    return None if report is None else Requested(report, replayed=True)


def _check_portability_limit(*, session: Session, ctx: AuthContext) -> None:
    recent = repository.count_requested_since(
        session=session, ctx=ctx, report_type=ReportType.DATA_PORTABILITY, hours=24
    )
    if recent >= PORTABILITY_PER_DAY:
        raise RequestLimitReached(
            f"At most {PORTABILITY_PER_DAY} data portability exports may be requested per day",
            retry_after=repository.seconds_until_one_frees(
                session=session, ctx=ctx, report_type=ReportType.DATA_PORTABILITY, hours=24
            ),
        )
