"""Reference tables the reports read: rejection (explanatory) codes and WCB fee tiers.

``rejection_codes`` stands in for the claim domain's table of explanatory
codes; ``meritum seed`` fills it. ``wcb_timing_tiers`` holds, per WCB form,
when each fee tier ends and what it pays: the rule "the same-day tier ends at
10:00 on the business day after the exam" is a row here, not code, and the
migration that creates the table fills it with the platform's values.
"""

from __future__ import annotations

from datetime import time
from decimal import Decimal
from typing import cast

from sqlalchemy import CheckConstraint, Numeric, SmallInteger, String, Table, Text, Time, text
from sqlalchemy.orm import Mapped, mapped_column

from meritum_shared.constants.claims import ClaimType
from meritum_shared.schemas.db.analytics import _in_list, _varchar_enum
from meritum_shared.schemas.db.base import Base


class RejectionCode(Base):
    __tablename__ = "rejection_codes"
    __table_args__ = (
        CheckConstraint("code ~ '^[A-Z0-9]{1,10}$'", name="code_shape"),
        CheckConstraint(_in_list("claim_type", ClaimType), name="claim_type_valid"),
        CheckConstraint("length(btrim(description)) > 0", name="description_not_empty"),
        CheckConstraint(
            "length(btrim(corrective_guidance)) > 0", name="corrective_guidance_not_empty"
        ),
    )

    #: The explanatory code as the payer prints it on the statement (``05A``).
    code: Mapped[str] = mapped_column(String(10), primary_key=True)
    #: The payer that uses the code.
    claim_type: Mapped[ClaimType] = mapped_column(_varchar_enum(ClaimType, 5), nullable=False)
    description: Mapped[str] = mapped_column(Text, nullable=False)
    #: What to change before the claim is resubmitted.
    corrective_guidance: Mapped[str] = mapped_column(Text, nullable=False)


class WcbTimingTier(Base):
    """One WCB form's fee tiers.

    A tier ends at ``deadline_local_time`` (America/Edmonton) on the N-th
    business day after the date of service (the exam): N is
    ``same_day_business_days`` for the same-day tier and
    ``on_time_business_days`` for the on-time tier. A report received later
    is late. A form without an on-time tier has no on-time N nor fee; a form
    whose fees are not configured has none of the three.
    """

    __tablename__ = "wcb_timing_tiers"
    __table_args__ = (
        CheckConstraint("form_type ~ '^[A-Z0-9]{2,10}$'", name="form_type_shape"),
        CheckConstraint("same_day_business_days >= 1", name="same_day_after_the_exam"),
        CheckConstraint(
            "on_time_business_days IS NULL OR on_time_business_days > same_day_business_days",
            name="on_time_after_same_day",
        ),
        CheckConstraint(
            "(same_day_fee IS NULL) = (late_fee IS NULL) "
            "AND (on_time_fee IS NOT NULL) = "
            "(same_day_fee IS NOT NULL AND on_time_business_days IS NOT NULL)",
            name="fees_match_tiers",
        ),
        CheckConstraint(
            "late_fee >= 0 AND coalesce(on_time_fee, same_day_fee) >= late_fee "
            "AND same_day_fee >= coalesce(on_time_fee, same_day_fee)",
            name="fees_fall_with_lateness",
        ),
        CheckConstraint(
            "fee_schedule_year IS NULL OR fee_schedule_year BETWEEN 2000 AND 2100",
            name="fee_schedule_year_plausible",
        ),
        CheckConstraint(
            "(fee_schedule_year IS NULL) = (same_day_fee IS NULL)",
            name="fees_have_a_year",
        ),
    )

    form_type: Mapped[str] = mapped_column(String(10), primary_key=True)
    same_day_business_days: Mapped[int] = mapped_column(SmallInteger, nullable=False)
    on_time_business_days: Mapped[int | None] = mapped_column(SmallInteger, nullable=True)
    deadline_local_time: Mapped[time] = mapped_column(
        Time(timezone=False), nullable=False, server_default=text("'10:00:00'")
    )
    same_day_fee: Mapped[Decimal | None] = mapped_column(Numeric(10, 2), nullable=True)
    on_time_fee: Mapped[Decimal | None] = mapped_column(Numeric(10, 2), nullable=True)
    late_fee: Mapped[Decimal | None] = mapped_column(Numeric(10, 2), nullable=True)
    #: The year of WCB's fee schedule the fees come from.
    fee_schedule_year: Mapped[int | None] = mapped_column(SmallInteger, nullable=True)


rejection_codes: Table = cast(Table, RejectionCode.__table__)
wcb_timing_tiers: Table = cast(Table, WcbTimingTier.__table__)
