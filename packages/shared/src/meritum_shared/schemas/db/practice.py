"""The provider profile beyond identity: BA numbers, practice locations and settings.

Stand-ins for the provider-management domain, with what the data export's
``provider_profile.csv`` and the report headers need.
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
    Text,
    Uuid,
    func,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from meritum_shared.constants.claims import BaType, ProviderSettingSection
from meritum_shared.schemas.db.analytics import _in_list, _varchar_enum
from meritum_shared.schemas.db.base import Base


class ProviderBaNumber(Base):
    """A business arrangement number a physician bills under."""

    __tablename__ = "provider_ba_numbers"
    __table_args__ = (
        CheckConstraint(r"ba_number ~ '^[0-9]{4,10}$'", name="ba_number_digits"),
        CheckConstraint(_in_list("ba_type", BaType), name="ba_type_valid"),
        CheckConstraint("active_to IS NULL OR active_to >= active_from", name="active_order"),
    )

    provider_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("providers.provider_id"), primary_key=True
    )
    ba_number: Mapped[str] = mapped_column(String(10), primary_key=True)
    ba_type: Mapped[BaType] = mapped_column(_varchar_enum(BaType, 10), nullable=False)
    active_from: Mapped[date] = mapped_column(Date, nullable=False)
    active_to: Mapped[date | None] = mapped_column(Date, nullable=True)


class PracticeLocation(Base):
    """A place a physician practises at, with the BA it bills under by default."""

    __tablename__ = "practice_locations"
    __table_args__ = (
        CheckConstraint("length(name) > 0", name="name_not_empty"),
        CheckConstraint(
            "rrnp_rate IS NULL OR (rrnp_rate > 0 AND rrnp_rate < 1)", name="rrnp_rate_share"
        ),
        CheckConstraint(r"functional_centre ~ '^[A-Z0-9]{4,10}$'", name="functional_centre_shape"),
        Index("ix_practice_locations_provider_id_name", "provider_id", "name", unique=True),
    )

    location_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, primary_key=True, server_default=text("gen_random_uuid()")
    )
    provider_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("providers.provider_id"), nullable=False
    )
    #: The name claims carry in ``claims.location``.
    name: Mapped[str] = mapped_column(String(100), nullable=False)
    functional_centre: Mapped[str] = mapped_column(String(10), nullable=False)
    default_ba_number: Mapped[str] = mapped_column(String(10), nullable=False)
    #: Rural and remote northern program premium share; NULL where none applies.
    rrnp_rate: Mapped[Decimal | None] = mapped_column(Numeric(6, 4), nullable=True)
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, server_default=func.now()
    )


class ProviderSetting(Base):
    """One setting of a provider's profile (WCB configuration, preferences)."""

    __tablename__ = "provider_settings"
    __table_args__ = (
        CheckConstraint(_in_list("section", ProviderSettingSection), name="section_valid"),
        CheckConstraint(r"key ~ '^[a-z][a-z0-9_]{0,49}$'", name="key_shape"),
    )

    provider_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("providers.provider_id"), primary_key=True
    )
    section: Mapped[ProviderSettingSection] = mapped_column(
        _varchar_enum(ProviderSettingSection, 20), primary_key=True
    )
    key: Mapped[str] = mapped_column(String(50), primary_key=True)
    value: Mapped[str] = mapped_column(Text, nullable=False)


provider_ba_numbers: Table = cast(Table, ProviderBaNumber.__table__)
practice_locations: Table = cast(Table, PracticeLocation.__table__)
provider_settings: Table = cast(Table, ProviderSetting.__table__)
