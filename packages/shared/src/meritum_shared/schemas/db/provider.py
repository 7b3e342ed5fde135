"""The ``providers`` table: the physicians who own reports (the tenant key).

Owned by the provider-management domain; this is the small faithful subset
a report header needs.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import cast

from sqlalchemy import CheckConstraint, DateTime, String, Table, Uuid, func, text
from sqlalchemy.orm import Mapped, mapped_column

from meritum_shared.schemas.db.base import Base


class Provider(Base):
    __tablename__ = "providers"
    __table_args__ = (
        # Alberta practitioner ids are digits with a check digit: keep them digits.
        CheckConstraint(r"billing_number ~ '^[0-9]{4,10}$'", name="billing_number_digits"),
    )

    provider_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, primary_key=True, server_default=text("gen_random_uuid()")
    )
    billing_number: Mapped[str] = mapped_column(String(10), nullable=False, unique=True)
    first_name: Mapped[str] = mapped_column(String(100), nullable=False)
    last_name: Mapped[str] = mapped_column(String(100), nullable=False)
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, server_default=func.now()
    )
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, server_default=func.now()
    )


providers: Table = cast(Table, Provider.__table__)
