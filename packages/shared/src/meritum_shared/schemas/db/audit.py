"""``audit_log``: the append-only record of who did what to which resource.

PostgreSQL refuses UPDATE, DELETE and TRUNCATE on this table (triggers
installed by the migration), so an entry, once committed, is permanent.
``resource_id`` is a UUID and ``details`` is a small allow-listed JSON
object: neither can carry a PHN, a name or a storage key.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Final, cast

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Identity,
    Index,
    String,
    Table,
    Uuid,
    false,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from meritum_shared.constants.analytics import AuditAction
from meritum_shared.constants.auth import AuthAuditAction
from meritum_shared.schemas.db.base import Base

#: Every value the ``action`` column accepts.
AUDIT_ACTIONS: Final[tuple[str, ...]] = tuple(a.value for a in AuditAction) + tuple(
    a.value for a in AuthAuditAction
)
_ACTIONS = ", ".join(f"'{value}'" for value in AUDIT_ACTIONS)


class AuditLogEntry(Base):
    __tablename__ = "audit_log"
    __table_args__ = (
        CheckConstraint(f"action IN ({_ACTIONS})", name="action_valid"),
        CheckConstraint("resource_type ~ '^[a-z_]{1,32}$'", name="resource_type_shape"),
        CheckConstraint("jsonb_typeof(details) = 'object'", name="details_is_object"),
        # Only authentication events may lack a tenant (a failed login for an
        # unknown email has none); everything else is a provider's business.
        CheckConstraint(
            "provider_id IS NOT NULL OR starts_with(action, 'auth.')", name="provider_unless_auth"
        ),
        # The report status endpoint counts downloads of one report.
        Index("ix_audit_log_resource_id_action", "resource_id", "action"),
        Index("ix_audit_log_provider_id_occurred_at", "provider_id", "occurred_at"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(always=True), primary_key=True)
    occurred_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, server_default=func.now()
    )
    #: Who acted; NULL only for a failed login naming no known user.
    actor_user_id: Mapped[uuid.UUID | None] = mapped_column(
        Uuid, ForeignKey("users.user_id"), nullable=True
    )
    #: Whose data it concerns (the tenant key).
    provider_id: Mapped[uuid.UUID | None] = mapped_column(
        Uuid, ForeignKey("providers.provider_id"), nullable=True
    )
    action: Mapped[str] = mapped_column(String(64), nullable=False)
    resource_type: Mapped[str] = mapped_column(String(32), nullable=False)
    resource_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, nullable=True)
    details: Mapped[dict[str, Any]] = mapped_column(
        JSONB, nullable=False, server_default=text("'{}'::jsonb")
    )
    #: PHI left the system (e.g. a data portability download).
    sensitive: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default=false())


audit_log: Table = cast(Table, AuditLogEntry.__table__)
