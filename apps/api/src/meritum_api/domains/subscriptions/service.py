"""The subscriptions domain's use cases: the one way in for the API and the web pages.

As in every domain, nothing here commits: the caller owns the transaction.
Every change is audited inside the use case, with the acting user.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

from sqlalchemy.orm import Session

from meritum_api.audit import repository as audit
from meritum_api.audit.repository import DetailValue
from meritum_api.context import AuthContext
from meritum_api.domains.subscriptions import repository
from meritum_api.domains.subscriptions.exceptions import (
    FrequencyNotAllowed,
    NotSubscribable,
    SubscriptionExists,
    SubscriptionNotFound,
)
from meritum_api.domains.subscriptions.schemas import SubscriptionView
from meritum_shared.constants.analytics import (
    SUBSCRIPTION_FREQUENCIES,
    AuditAction,
    ReportType,
    SubscriptionFrequency,
)
from meritum_shared.schemas.validation.subscriptions import SubscriptionCreate, SubscriptionUpdate

if TYPE_CHECKING:
    from meritum_api.deps import Deps


def allowed_frequency(
    report_type: ReportType, frequency: SubscriptionFrequency | None
) -> SubscriptionFrequency:
    """The frequency to use (the type's default when None); refuses what the type does not allow."""
    allowed = SUBSCRIPTION_FREQUENCIES.get(report_type)
    if allowed is None:
        raise NotSubscribable(report_type)
    if frequency is None:
        return allowed[0]
    if frequency not in allowed:
        raise FrequencyNotAllowed(report_type, frequency, allowed)
    return frequency


def list_subscriptions(*, session: Session, ctx: AuthContext) -> list[SubscriptionView]:
    """The physician's subscriptions, with when each runs next and last ran."""
    return repository.list_subscriptions(session=session, ctx=ctx)


def create_subscription(
    *, deps: Deps, session: Session, ctx: AuthContext, request: SubscriptionCreate
) -> SubscriptionView:
    """Subscribe the physician to a report type; it first runs at its next regular instant."""
    frequency = allowed_frequency(request.report_type, request.frequency)
    now = deps.clock.now()
    first = deps.calendar.next_run(frequency, request.report_type, after=now)
    created = repository.create_subscription(
        session=session,
        ctx=ctx,
        report_type=request.report_type,
        frequency=frequency,
        delivery_method=request.delivery_method,
        next_run_at=first.at,
        at=now,
    )
    if created is None:
        raise SubscriptionExists(request.report_type)
    audit.record(
        session=session,
        ctx=ctx,
        action=AuditAction.SUBSCRIPTION_CREATED,
        resource_id=created.subscription_id,
        details={
            "report_type": created.report_type.value,
            "frequency": created.frequency.value,
            "delivery_method": created.delivery_method.value,
        },
    )
    return created


def update_subscription(
    *,
    deps: Deps,
    session: Session,
    ctx: AuthContext,
    subscription_id: uuid.UUID,
    request: SubscriptionUpdate,
) -> SubscriptionView:
    """Change a subscription's frequency, delivery or whether it is active (audited, old → new).

    A new frequency, or resuming a paused subscription, sets the next run
    from now: the runs a pause skipped are not made up.
    """
    current = repository.lock_subscription(
        session=session, ctx=ctx, subscription_id=subscription_id
    )
    if current is None:
        raise SubscriptionNotFound
    frequency = (
        current.frequency
        if request.frequency is None
        else allowed_frequency(current.report_type, request.frequency)
    )
    delivery = request.delivery_method or current.delivery_method
    active = current.is_active if request.is_active is None else request.is_active
    changes: dict[str, object] = {}
    details: dict[str, DetailValue] = {"report_type": current.report_type.value}
    if frequency is not current.frequency:
        changes["frequency"] = frequency
        details |= {"old_frequency": current.frequency.value, "new_frequency": frequency.value}
    if delivery is not current.delivery_method:
        changes["delivery_method"] = delivery
        details |= {
            "old_delivery_method": current.delivery_method.value,
            "new_delivery_method": delivery.value,
        }
    if active is not current.is_active:
        changes["is_active"] = active
        details |= {"old_is_active": current.is_active, "new_is_active": active}
    if not changes:
        return current
    now = deps.clock.now()
    resumed = active and not current.is_active
    if "frequency" in changes or resumed:
        changes["next_run_at"] = deps.calendar.next_run(
            frequency, current.report_type, after=now
        ).at
    changes["updated_at"] = now
    updated = repository.update_subscription(
        session=session, ctx=ctx, subscription_id=subscription_id, values=changes
    )
    audit.record(
        session=session,
        ctx=ctx,
        action=AuditAction.SUBSCRIPTION_UPDATED,
        resource_id=subscription_id,
        details=details,
    )
    return updated


def cancel_subscription(*, session: Session, ctx: AuthContext, subscription_id: uuid.UUID) -> None:
    """Delete a subscription; the reports it produced stay until their retention ends."""
    deleted = repository.delete_subscription(
        session=session, ctx=ctx, subscription_id=subscription_id
    )
    if deleted is None:
        raise SubscriptionNotFound
    audit.record(
        session=session,
        ctx=ctx,
        action=AuditAction.SUBSCRIPTION_CANCELLED,
        resource_id=subscription_id,
        details={
            "report_type": deleted.report_type.value,
            "frequency": deleted.frequency.value,
        },
    )
