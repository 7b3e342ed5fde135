"""``users`` and ``auth_sessions``: who may sign in, and their server-side sessions.

A physician acts for their own provider and holds every permission (none
are stored for them); a delegate acts for exactly one physician's provider
and holds the stored subset a physician granted. Sessions keep only SHA-256
digests of their bearer token and CSRF token, never the tokens themselves.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import cast

from sqlalchemy import (
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    LargeBinary,
    String,
    Table,
    Uuid,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Mapped, mapped_column

from meritum_shared.constants.auth import DELEGABLE_PERMISSIONS, Permission, UserRole
from meritum_shared.schemas.db.analytics import _in_list, _varchar_enum
from meritum_shared.schemas.db.base import Base

_DELEGABLE = ", ".join(
    f"'{p.value}'" for p in sorted(DELEGABLE_PERMISSIONS, key=list(Permission).index)
)


class User(Base):
    __tablename__ = "users"
    __table_args__ = (
        CheckConstraint(_in_list("role", UserRole), name="role_valid"),
        # Emails are stored trimmed and lower-case so that the unique
        # constraint cannot be sidestepped by "Doc@Clinic.ca" vs "doc@clinic.ca".
        CheckConstraint("email = lower(btrim(email))", name="email_normalized"),
        CheckConstraint(r"email ~ '^[^@\s]+@[^@\s]+$'", name="email_shape"),
        # Only an argon2id hash may ever be stored: never a plaintext password.
        CheckConstraint("starts_with(password_hash, '$argon2id$')", name="password_hash_argon2id"),
        CheckConstraint(
            f"permissions <@ ARRAY[{_DELEGABLE}]::varchar(20)[]", name="permissions_valid"
        ),
        # A physician holds every permission by role; storing some would
        # suggest they could hold fewer.
        CheckConstraint(
            f"role = '{UserRole.DELEGATE.value}' OR cardinality(permissions) = 0",
            name="permissions_only_for_delegates",
        ),
        Index("ix_users_provider_id", "provider_id"),
        # One physician account per provider; delegates are as many as needed.
        Index(
            "ix_users_one_physician_per_provider",
            "provider_id",
            unique=True,
            postgresql_where=text(f"role = '{UserRole.PHYSICIAN.value}'"),
        ),
    )

    user_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, primary_key=True, server_default=text("gen_random_uuid()")
    )
    email: Mapped[str] = mapped_column(String(254), nullable=False, unique=True)
    password_hash: Mapped[str] = mapped_column(String(255), nullable=False)
    #: The physician this user is or acts for: the only source of a request's scope.
    provider_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("providers.provider_id"), nullable=False
    )
    role: Mapped[UserRole] = mapped_column(_varchar_enum(UserRole, 20), nullable=False)
    permissions: Mapped[list[str]] = mapped_column(
        ARRAY(String(20)), nullable=False, server_default=text("'{}'")
    )
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, server_default=func.now()
    )
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, server_default=func.now()
    )

    def __repr__(self) -> str:
        # Deliberately omits the email and the password hash.
        return f"User(user_id={self.user_id!s}, role={self.role!s})"


users: Table = cast(Table, User.__table__)


class AuthSession(Base):
    """A signed-in session; the token and CSRF token exist only on the client."""

    __tablename__ = "auth_sessions"
    __table_args__ = (
        CheckConstraint("octet_length(token_hash) = 32", name="token_hash_length"),
        CheckConstraint("octet_length(csrf_token_hash) = 32", name="csrf_token_hash_length"),
        CheckConstraint("expires_at > created_at", name="expires_after_creation"),
        Index("ix_auth_sessions_user_id", "user_id"),
        # Purging expired sessions walks this index.
        Index("ix_auth_sessions_expires_at", "expires_at"),
    )

    session_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, primary_key=True, server_default=text("gen_random_uuid()")
    )
    user_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("users.user_id", ondelete="CASCADE"), nullable=False
    )
    #: SHA-256 of the session token (the token is 256 random bits: no salt needed).
    token_hash: Mapped[bytes] = mapped_column(LargeBinary, nullable=False, unique=True)
    #: SHA-256 of the CSRF token handed out at login.
    csrf_token_hash: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, server_default=func.now()
    )
    #: When the expiry was last pushed forward (the write is throttled).
    last_seen_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, server_default=func.now()
    )
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)

    def __repr__(self) -> str:
        return f"AuthSession(session_id={self.session_id!s})"


auth_sessions: Table = cast(Table, AuthSession.__table__)
