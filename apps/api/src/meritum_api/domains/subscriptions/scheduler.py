"""Producing the reports of due subscriptions: exactly once per period, catching up after downtime.

Each subscription is handled in one transaction of its own: it is claimed
(``FOR UPDATE SKIP LOCKED``), each missed run is recorded in
``subscription_runs`` and its report created with its generation job, and
``next_run_at`` is advanced; all of it commits together or not at all. A
scheduler killed at any point therefore leaves each subscription either
untouched (due again, for the next run to produce) or completely done.

Exactly once rests on two things in PostgreSQL, neither on the scheduler
being alone: the row lock (a claimed subscription is skipped by every other
scheduler until its transaction ends, and then it is no longer due), and
the unique (subscription, period) of ``subscription_runs`` (a period recorded
once is never produced again, even if ``next_run_at`` were moved back).
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy.orm import Session

from meritum_api.context import AuthContext
from meritum_api.domains.analytics import service as reports
from meritum_api.domains.analytics.figures import Period, has_rejections
from meritum_api.domains.analytics.generation import describe_failure
from meritum_api.domains.subscriptions import repository
from meritum_api.domains.subscriptions.schemas import SubscriptionView
from meritum_shared.constants.analytics import MAX_CATCH_UP_RUNS, ReportType, RunOutcome

if TYPE_CHECKING:
    from meritum_api.calendar import Run
    from meritum_api.deps import Deps

log = logging.getLogger(__name__)

#: Just before an instant: ``runs_between`` takes runs strictly after its start.
_JUST_BEFORE = timedelta(microseconds=1)


@dataclass(frozen=True, slots=True)
class SchedulerResult:
    """What one scheduler run did."""

    #: Subscriptions claimed and advanced.
    subscriptions: int = 0
    #: Runs that created a report (and its job).
    generated: int = 0
    #: REJECTION_DIGEST runs with no rejection in their period: recorded, nothing produced.
    skipped_empty: int = 0
    #: Runs already recorded (never produced twice).
    already_recorded: int = 0
    #: Subscriptions whose transaction failed (left due for the next run).
    failed: int = 0


def due_runs(deps: Deps, subscription: SubscriptionView, now: datetime) -> list[Run]:
    """The runs a due subscription owes at ``now``: the last seven at most, oldest first.

    Counted from ``next_run_at`` (the first run not yet produced), not from
    ``last_run_at``: a subscription resumed or given a new frequency has its
    ``next_run_at`` set from that moment, so a pause is never made up.
    """
    runs = list(
        deps.calendar.runs_between(
            subscription.frequency,
            subscription.report_type,
            after=subscription.next_run_at - _JUST_BEFORE,
            until=now,
        )
    )
    return runs[-MAX_CATCH_UP_RUNS:]


def produce(
    *, deps: Deps, session: Session, subscription: SubscriptionView, now: datetime
) -> SchedulerResult:
    """Record and produce a claimed subscription's missed runs, then advance it (no commit)."""
    ctx = AuthContext(provider_id=subscription.provider_id)
    generated = skipped = recorded = 0
    runs = due_runs(deps, subscription, now)
    for run in runs:
        empty = subscription.report_type is ReportType.REJECTION_DIGEST and not has_rejections(
            conn=session.connection(), ctx=ctx, period=Period(run.period_start, run.period_end)
        )
        report_id = None if empty else uuid.uuid4()
        if not repository.record_run(
            session=session,
            subscription_id=subscription.subscription_id,
            period_start=run.period_start,
            period_end=run.period_end,
            outcome=RunOutcome.SKIPPED_EMPTY if empty else RunOutcome.GENERATED,
            report_id=report_id,
            ran_at=now,
        ):
            recorded += 1
            continue
        if report_id is None:
            skipped += 1
            continue
        reports.request_scheduled(
            session=session,
            ctx=ctx,
            queue=deps.queue,
            report_type=subscription.report_type,
            period_start=run.period_start,
            period_end=run.period_end,
            report_id=report_id,
        )
        generated += 1
    repository.advance(
        session=session,
        subscription_id=subscription.subscription_id,
        next_run_at=deps.calendar.next_run(
            subscription.frequency, subscription.report_type, after=now
        ).at,
        last_run_at=runs[-1].at if runs else None,
    )
    return SchedulerResult(
        subscriptions=1, generated=generated, skipped_empty=skipped, already_recorded=recorded
    )


def run_due(*, deps: Deps) -> SchedulerResult:
    """Produce every due subscription, one transaction each, until none is due."""
    total = SchedulerResult()
    failed: list[uuid.UUID] = []
    while True:
        claimed: SubscriptionView | None = None
        try:
            with deps.session_factory.begin() as session:
                now = deps.clock.now()
                claimed = repository.claim_due(session=session, now=now, skip=failed)
                if claimed is None:
                    break
                done = produce(deps=deps, session=session, subscription=claimed, now=now)
        except Exception as exc:
            if claimed is None:
                raise
            # Left due, and skipped for the rest of this run so that the others go on.
            log.error(
                "subscription %s: scheduling failed (%s); left for the next run",
                claimed.subscription_id,
                describe_failure(exc),
            )
            failed.append(claimed.subscription_id)
            total = _add(total, SchedulerResult(failed=1))
            continue
        total = _add(total, done)
    if total.subscriptions or total.failed:
        log.info(
            "scheduler: %d subscriptions, %d reports, %d skipped empty, %d already recorded, "
            "%d failed",
            total.subscriptions,
            total.generated,
            total.skipped_empty,
            total.already_recorded,
            total.failed,
        )
    return total


def _add(a: SchedulerResult, b: SchedulerResult) -> SchedulerResult:
    return SchedulerResult(
        subscriptions=a.subscriptions + b.subscriptions,
        generated=a.generated + b.generated,
        skipped_empty=a.skipped_empty + b.skipped_empty,
        already_recorded=a.already_recorded + b.already_recorded,
        failed=a.failed + b.failed,
    )
