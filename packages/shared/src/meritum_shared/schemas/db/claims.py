"""``patients`` and ``claims``: the small claims source that reports read.

They stand in for the claim and patient domains of the platform, with the
columns the accountant export and the data portability export need.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from decimal import Decimal
from typing import cast

from sqlalchemy import (
    CheckConstraint,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Numeric,
    String,
    Table,
    UniqueConstraint,
    Uuid,
    func,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from meritum_shared.constants.claims import ClaimState, ClaimType
from meritum_shared.schemas.db.analytics import _in_list, _varchar_enum
from meritum_shared.schemas.db.base import Base

Money = Numeric(10, 2)


class Patient(Base):
    __tablename__ = "patients"
    __table_args__ = (
        # Alberta personal health numbers are nine digits.
        CheckConstraint(r"phn ~ '^[0-9]{9}$'", name="phn_nine_digits"),
        Index("ix_patients_provider_id_phn", "provider_id", "phn", unique=True),
    )

    patient_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, primary_key=True, server_default=text("gen_random_uuid()")
    )
    provider_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("providers.provider_id"), nullable=False
    )
    phn: Mapped[str] = mapped_column(String(9), nullable=False)
    first_name: Mapped[str] = mapped_column(String(100), nullable=False)
    last_name: Mapped[str] = mapped_column(String(100), nullable=False)
    date_of_birth: Mapped[date] = mapped_column(Date, nullable=False)
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, server_default=func.now()
    )


class Claim(Base):
    __tablename__ = "claims"
    __table_args__ = (
        CheckConstraint(_in_list("claim_type", ClaimType), name="claim_type_valid"),
        CheckConstraint(_in_list("state", ClaimState), name="state_valid"),
        CheckConstraint("submitted_fee >= 0", name="submitted_fee_not_negative"),
        CheckConstraint(
            "assessed_fee IS NULL OR assessed_fee >= 0", name="assessed_fee_not_negative"
        ),
        CheckConstraint("rrnp_premium >= 0", name="rrnp_premium_not_negative"),
        CheckConstraint(
            "state NOT IN ('PAID', 'ADJUSTED') "
            "OR (payment_date IS NOT NULL AND assessed_fee IS NOT NULL)",
            name="paid_has_payment",
        ),
        CheckConstraint(
            "(claim_type = 'WCB') = (wcb_claim_number IS NOT NULL)", name="wcb_fields_on_wcb"
        ),
        # The accountant export reads a provider's paid claims by payment date.
        Index("ix_claims_provider_id_payment_date", "provider_id", "payment_date"),
        Index("ix_claims_provider_id_date_of_service", "provider_id", "date_of_service"),
        Index("ix_claims_patient_id", "patient_id"),
        Index("ix_claims_batch_id", "batch_id"),
        # The target of the composite foreign keys that tie a claim's history
        # and suggestions to the claim's own provider.
        UniqueConstraint("claim_id", "provider_id"),
    )

    claim_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, primary_key=True, server_default=text("gen_random_uuid()")
    )
    provider_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("providers.provider_id"), nullable=False
    )
    patient_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("patients.patient_id"), nullable=False
    )
    claim_type: Mapped[ClaimType] = mapped_column(_varchar_enum(ClaimType, 5), nullable=False)
    state: Mapped[ClaimState] = mapped_column(_varchar_enum(ClaimState, 20), nullable=False)
    date_of_service: Mapped[date] = mapped_column(Date, nullable=False)
    hsc_code: Mapped[str] = mapped_column(String(10), nullable=False)
    #: Space-free, comma-separated fee modifiers as submitted (e.g. ``CMGP,AFHR``).
    modifiers: Mapped[str] = mapped_column(String(50), nullable=False, server_default="")
    submitted_fee: Mapped[Decimal] = mapped_column(Money, nullable=False)
    assessed_fee: Mapped[Decimal | None] = mapped_column(Money, nullable=True)
    payment_date: Mapped[date | None] = mapped_column(Date, nullable=True)
    #: Business arrangement number the claim was billed under.
    ba_number: Mapped[str] = mapped_column(String(10), nullable=False)
    #: Facility or functional centre name where the service was given.
    location: Mapped[str] = mapped_column(String(100), nullable=False)
    rrnp_premium: Mapped[Decimal] = mapped_column(Money, nullable=False, server_default="0")
    rejection_code: Mapped[str | None] = mapped_column(String(10), nullable=True)
    #: The submission batch that carried the claim (none while draft or queued).
    batch_id: Mapped[uuid.UUID | None] = mapped_column(
        Uuid, ForeignKey("submission_batches.batch_id"), nullable=True
    )
    wcb_claim_number: Mapped[str | None] = mapped_column(String(20), nullable=True)
    wcb_form_type: Mapped[str | None] = mapped_column(String(10), nullable=True)
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, server_default=func.now()
    )
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, server_default=func.now()
    )


patients: Table = cast(Table, Patient.__table__)
claims: Table = cast(Table, Claim.__table__)
