"""``report_subscriptions`` and ``subscription_runs`` (subscriptions spec section 1).

A subscription asks for one report type on a schedule; ``next_run_at`` is the
next instant it is due. Each run is recorded once in ``subscription_runs``:
the unique (subscription, period) pair is what makes a period produced at
most once, whatever crashes and however many schedulers run.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import cast

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Table,
    UniqueConstraint,
    Uuid,
    func,
    text,
    true,
)
from sqlalchemy.orm import Mapped, mapped_column

from meritum_shared.constants.analytics import (
    SUBSCRIPTION_FREQUENCIES,
    DeliveryMethod,
    ReportType,
    RunOutcome,
    SubscriptionFrequency,
)
from meritum_shared.schemas.db.analytics import _in_list, _varchar_enum
from meritum_shared.schemas.db.base import Base


def _values(members: tuple[object, ...] | list[ReportType]) -> str:
    return ", ".join(f"'{member}'" for member in members)


#: The subscribable types, in the order of the spec's table.
_SUBSCRIBABLE = _values(list(SUBSCRIPTION_FREQUENCIES))
#: "The frequency is one the type allows", one disjunct per type.
_ALLOWED = " OR ".join(
    f"(report_type = '{report_type}' AND frequency IN ({_values(frequencies)}))"
    for report_type, frequencies in SUBSCRIPTION_FREQUENCIES.items()
)
_IN_APP = f"'{DeliveryMethod.IN_APP.value}'"


class ReportSubscription(Base):
    __tablename__ = "report_subscriptions"
    __table_args__ = (
        CheckConstraint(f"report_type IN ({_SUBSCRIBABLE})", name="report_type_subscribable"),
        CheckConstraint(_in_list("frequency", SubscriptionFrequency), name="frequency_valid"),
        CheckConstraint(_in_list("delivery_method", DeliveryMethod), name="delivery_method_valid"),
        CheckConstraint(_ALLOWED, name="frequency_allowed_for_type"),
        # One subscription per physician and type: a second one answers 409.
        UniqueConstraint("provider_id", "report_type"),
        # The scheduler's claim: active subscriptions by the instant they are due.
        Index(
            "ix_report_subscriptions_due",
            "next_run_at",
            postgresql_where=text("is_active"),
        ),
    )

    subscription_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, primary_key=True, server_default=text("gen_random_uuid()")
    )
    provider_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("providers.provider_id"), nullable=False
    )
    report_type: Mapped[ReportType] = mapped_column(_varchar_enum(ReportType, 50), nullable=False)
    frequency: Mapped[SubscriptionFrequency] = mapped_column(
        _varchar_enum(SubscriptionFrequency, 20), nullable=False
    )
    delivery_method: Mapped[DeliveryMethod] = mapped_column(
        _varchar_enum(DeliveryMethod, 20), nullable=False, server_default=text(_IN_APP)
    )
    is_active: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default=true())
    #: The next instant the subscription is due (a run instant of its schedule).
    next_run_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    #: The instant of the latest run produced; NULL until it first runs.
    last_run_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, server_default=func.now()
    )
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, server_default=func.now()
    )

    def __repr__(self) -> str:
        return (
            f"ReportSubscription(subscription_id={self.subscription_id!s}, "
            f"report_type={self.report_type!s}, frequency={self.frequency!s})"
        )


report_subscriptions: Table = cast(Table, ReportSubscription.__table__)


class SubscriptionRun(Base):
    """One period of one subscription, produced (or skipped as empty) exactly once."""

    __tablename__ = "subscription_runs"
    __table_args__ = (
        CheckConstraint(_in_list("outcome", RunOutcome), name="outcome_valid"),
        CheckConstraint("period_end >= period_start", name="period_order"),
        CheckConstraint(
            f"outcome <> '{RunOutcome.SKIPPED_EMPTY.value}' OR report_id IS NULL",
            name="skipped_has_no_report",
        ),
        # A period is never produced twice: the scheduler inserts with ON CONFLICT DO NOTHING.
        UniqueConstraint("subscription_id", "period_start", "period_end"),
        # Finding the subscription of a scheduled report (its delivery), and the
        # ON DELETE SET NULL when a report is deleted.
        Index("ix_subscription_runs_report_id", "report_id"),
    )

    run_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, primary_key=True, server_default=text("gen_random_uuid()")
    )
    subscription_id: Mapped[uuid.UUID] = mapped_column(
        Uuid,
        ForeignKey("report_subscriptions.subscription_id", ondelete="CASCADE"),
        nullable=False,
    )
    period_start: Mapped[date] = mapped_column(Date, nullable=False)
    period_end: Mapped[date] = mapped_column(Date, nullable=False)
    outcome: Mapped[RunOutcome] = mapped_column(_varchar_enum(RunOutcome, 20), nullable=False)
    #: The report produced; NULL when skipped, or once retention has deleted it. Checked
    #: at commit: the scheduler records the run (which decides whether the period is
    #: produced at all) before it inserts the report the run names.
    report_id: Mapped[uuid.UUID | None] = mapped_column(
        Uuid,
        ForeignKey(
            "generated_reports.report_id",
            ondelete="SET NULL",
            deferrable=True,
            initially="DEFERRED",
        ),
        nullable=True,
    )
    ran_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, server_default=func.now()
    )


subscription_runs: Table = cast(Table, SubscriptionRun.__table__)
