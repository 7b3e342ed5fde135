"""The only place that touches SQL for report subscriptions and their runs.

Reads and writes on behalf of a user are scoped by the provider of an
``AuthContext``. The scheduler's statements (claiming due subscriptions,
recording runs) act for no user and are kept apart at the end.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import date, datetime
from typing import Any

from sqlalchemy import delete, select, text, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.orm import Session

from meritum_api.context import AuthContext
from meritum_api.domains.subscriptions.schemas import SubscriptionView
from meritum_shared.constants.analytics import (
    DeliveryMethod,
    ReportType,
    RunOutcome,
    SubscriptionFrequency,
)
from meritum_shared.schemas.db import report_subscriptions, subscription_runs

S = report_subscriptions.c
RUNS = subscription_runs.c


def _mine(ctx: AuthContext, subscription_id: uuid.UUID) -> list[Any]:
    return [S.subscription_id == subscription_id, S.provider_id == ctx.provider_id]


# --- user-scoped reads and writes -------------------------------------------------


def list_subscriptions(*, session: Session, ctx: AuthContext) -> list[SubscriptionView]:
    """The provider's subscriptions (one per type at most), by report type."""
    rows = session.execute(
        select(report_subscriptions).where(S.provider_id == ctx.provider_id).order_by(S.report_type)
    ).all()
    return [SubscriptionView.of(row) for row in rows]


def create_subscription(
    *,
    session: Session,
    ctx: AuthContext,
    report_type: ReportType,
    frequency: SubscriptionFrequency,
    delivery_method: DeliveryMethod,
    next_run_at: datetime,
    at: datetime,
) -> SubscriptionView | None:
    """Insert a subscription; None if the provider already has one of this type.

    Two concurrent requests for the same type serialise on the unique
    (provider, type) index: the second waits, then finds the conflict.
    """
    row = session.execute(
        pg_insert(report_subscriptions)
        .values(
            provider_id=ctx.provider_id,
            report_type=report_type,
            frequency=frequency,
            delivery_method=delivery_method,
            next_run_at=next_run_at,
            created_at=at,
            updated_at=at,
        )
        .on_conflict_do_nothing(index_elements=[S.provider_id, S.report_type])
        .returning(*report_subscriptions.c)
    ).one_or_none()
    return None if row is None else SubscriptionView.of(row)


def lock_subscription(
    *, session: Session, ctx: AuthContext, subscription_id: uuid.UUID
) -> SubscriptionView | None:
    """One of the provider's subscriptions, locked until commit; None if not theirs.

    The lock orders a change after a scheduler run holding the row, so the
    values read here (the audit's old values) are the ones being replaced.
    """
    row = session.execute(
        select(report_subscriptions).where(*_mine(ctx, subscription_id)).with_for_update()
    ).one_or_none()
    return None if row is None else SubscriptionView.of(row)


def update_subscription(
    *,
    session: Session,
    ctx: AuthContext,
    subscription_id: uuid.UUID,
    values: Mapping[str, object],
) -> SubscriptionView:
    """Write new values into one of the provider's subscriptions (locked by the caller)."""
    row = session.execute(
        update(report_subscriptions)
        .where(*_mine(ctx, subscription_id))
        .values(**values)
        .returning(*report_subscriptions.c)
    ).one()
    return SubscriptionView.of(row)


def delete_subscription(
    *, session: Session, ctx: AuthContext, subscription_id: uuid.UUID
) -> SubscriptionView | None:
    """Delete one of the provider's subscriptions (its runs go with it, its reports stay)."""
    row = session.execute(
        delete(report_subscriptions)
        .where(*_mine(ctx, subscription_id))
        .returning(*report_subscriptions.c)
    ).one_or_none()
    return None if row is None else SubscriptionView.of(row)


# --- the scheduler (acting for no user) ---------------------------------------------

#: One due subscription, claimed. SKIP LOCKED: a subscription another
#: scheduler is producing is left to it instead of being waited for, so
#: concurrent schedulers share the work; the row lock is held until the
#: claiming transaction ends, so its runs are recorded, its reports created
#: and its next_run_at advanced before anyone else can see it due again.
#: Served by the partial index ix_report_subscriptions_due (EXPLAIN: an index
#: scan in next_run_at order, stopping at the first row not locked).
#: The same statement makes the transaction's commit asynchronous
#: (``set_config(..., is_local => true)``, one round trip fewer than a SET):
#: a lost scheduler transaction is redone by the next run, since nothing of it
#: was visible and the subscription is due again; any later transaction that
#: depends on it (the worker taking its job, making its report ready) commits
#: durably, which flushes this one's WAL first.
_CLAIM_DUE = text(
    """
    SELECT subscription_id, provider_id, report_type, frequency, delivery_method, is_active,
           next_run_at, last_run_at, created_at, updated_at,
           set_config('synchronous_commit', 'off', true) AS commit_mode
    FROM report_subscriptions
    WHERE is_active AND next_run_at <= :now AND subscription_id <> ALL (:skip)
    ORDER BY next_run_at
    LIMIT 1
    FOR UPDATE SKIP LOCKED
    """
)


def claim_due(
    *, session: Session, now: datetime, skip: Sequence[uuid.UUID] = ()
) -> SubscriptionView | None:
    """Lock the active subscription due longest ago (not locked elsewhere, not in ``skip``)."""
    row = session.execute(_CLAIM_DUE, {"now": now, "skip": list(skip)}).one_or_none()
    return None if row is None else SubscriptionView.of(row)


_RECORD_RUN = text(
    """
    INSERT INTO subscription_runs (subscription_id, period_start, period_end, outcome,
                                   report_id, ran_at)
    VALUES (:subscription_id, :period_start, :period_end, :outcome, :report_id, :ran_at)
    ON CONFLICT (subscription_id, period_start, period_end) DO NOTHING
    RETURNING run_id
    """
)


def record_run(
    *,
    session: Session,
    subscription_id: uuid.UUID,
    period_start: date,
    period_end: date,
    outcome: RunOutcome,
    report_id: uuid.UUID | None,
    ran_at: datetime,
) -> bool:
    """Record a period's run; False if it was recorded before (it is then not produced again).

    ``report_id`` names the report the caller inserts next, in the same
    transaction (the reference is checked at commit).
    """
    inserted = session.execute(
        _RECORD_RUN,
        {
            "subscription_id": subscription_id,
            "period_start": period_start,
            "period_end": period_end,
            "outcome": outcome.value,
            "report_id": report_id,
            "ran_at": ran_at,
        },
    ).scalar_one_or_none()
    return inserted is not None


_ADVANCE = text(
    """
    UPDATE report_subscriptions
    SET next_run_at = :next_run_at, last_run_at = coalesce(:last_run_at, last_run_at)
    WHERE subscription_id = :subscription_id
    """
)


def advance(
    *,
    session: Session,
    subscription_id: uuid.UUID,
    next_run_at: datetime,
    last_run_at: datetime | None,
) -> None:
    """Move a claimed subscription on to its next run (``last_run_at`` when one was made)."""
    session.execute(
        _ADVANCE,
        {
            "subscription_id": subscription_id,
            "next_run_at": next_run_at,
            "last_run_at": last_run_at,
        },
    )


_DELIVERY_OF_REPORT = text(
    """
    SELECT s.delivery_method
    FROM subscription_runs r JOIN report_subscriptions s USING (subscription_id)
    WHERE r.report_id = :report_id
    """
)


def delivery_of_report(*, session: Session, report_id: uuid.UUID) -> DeliveryMethod | None:
    """How the subscription that produced a scheduled report delivers it; None if it is gone."""
    value = session.execute(_DELIVERY_OF_REPORT, {"report_id": report_id}).scalar_one_or_none()
    return None if value is None else DeliveryMethod(value)
