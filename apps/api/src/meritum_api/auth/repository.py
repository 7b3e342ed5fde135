"""SQL for users and sessions. Nothing here commits: the caller owns the transaction.

Every time comparison uses the database clock (``now()``), so that several
API processes agree on when a session expires.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    CursorResult,
    Float,
    Interval,
    bindparam,
    cast,
    delete,
    extract,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.orm import Session

from meritum_shared.constants.auth import UserRole
from meritum_shared.schemas.db import auth_sessions, providers, users


@dataclass(frozen=True, slots=True)
class UserRow:
    user_id: uuid.UUID
    provider_id: uuid.UUID
    role: UserRole
    permissions: tuple[str, ...]
    password_hash: str = field(repr=False)


@dataclass(frozen=True, slots=True)
class LiveSession:
    session_id: uuid.UUID
    user_id: uuid.UUID
    provider_id: uuid.UUID
    role: UserRole
    permissions: tuple[str, ...]
    expires_at: datetime
    #: Seconds from now (the database's) until the session expires.
    expires_in: float
    #: Seconds from now until the sliding expiry is due to be written again (≤ 0: due).
    touch_due_in: float
    csrf_token_hash: bytes = field(repr=False)

    @property
    def due_for_touch(self) -> bool:
        """The sliding expiry was last written at least the touch interval ago."""
        return self.touch_due_in <= 0


def insert_user(
    *,
    session: Session,
    email: str,
    password_hash: str,
    provider_id: uuid.UUID,
    role: UserRole,
    permissions: list[str],
) -> uuid.UUID:
    """Insert a user; the email must already be normalised."""
    user_id: uuid.UUID = session.execute(
        insert(users)
        .values(
            email=email,
            password_hash=password_hash,
            provider_id=provider_id,
            role=role,
            permissions=permissions,
        )
        .returning(users.c.user_id)
    ).scalar_one()
    return user_id


def find_user_by_email(*, session: Session, email: str) -> UserRow | None:
    """The user with this (normalised) email, if any."""
    row = session.execute(
        select(
            users.c.user_id,
            users.c.provider_id,
            users.c.role,
            users.c.permissions,
            users.c.password_hash,
        ).where(users.c.email == email)
    ).one_or_none()
    if row is None:
        return None
    return UserRow(
        user_id=row.user_id,
        provider_id=row.provider_id,
        role=UserRole(row.role),
        permissions=tuple(row.permissions),
        password_hash=row.password_hash,
    )


def update_password_hash(*, session: Session, user_id: uuid.UUID, password_hash: str) -> None:
    """Replace a user's password hash (e.g. rehashed with current parameters)."""
    session.execute(
        update(users)
        .where(users.c.user_id == user_id)
        .values(password_hash=password_hash, updated_at=func.now())
    )


def insert_session(
    *,
    session: Session,
    user_id: uuid.UUID,
    token_hash: bytes,
    csrf_token_hash: bytes,
    ttl: timedelta,
) -> tuple[uuid.UUID, datetime]:
    """Open a session expiring ``ttl`` from now; returns its id and expiry."""
    row = session.execute(
        insert(auth_sessions)
        .values(
            user_id=user_id,
            token_hash=token_hash,
            csrf_token_hash=csrf_token_hash,
            expires_at=func.now() + ttl,
        )
        .returning(auth_sessions.c.session_id, auth_sessions.c.expires_at)
    ).one()
    return row.session_id, row.expires_at


def _seconds(interval: Any) -> Any:
    return cast(extract("epoch", interval), Float)


#: Built once: this runs on every session look-up that the cache cannot
#: answer, and a prebuilt statement skips construction and cache-key work
#: (measured ~0.5 ms CPU). The two durations are measured by the database
#: clock, so a cache can turn them into deadlines of its own clock without
#: trusting that the two clocks agree.
_LIVE_SESSION = (
    select(
        auth_sessions.c.session_id,
        auth_sessions.c.csrf_token_hash,
        auth_sessions.c.expires_at,
        _seconds(auth_sessions.c.expires_at - func.now()).label("expires_in"),
        _seconds(
            auth_sessions.c.last_seen_at + bindparam("touch_interval", type_=Interval) - func.now()
        ).label("touch_due_in"),
        users.c.user_id,
        users.c.provider_id,
        users.c.role,
        users.c.permissions,
    )
    .join(users, users.c.user_id == auth_sessions.c.user_id)
    .where(
        auth_sessions.c.token_hash == bindparam("token_hash"),
        auth_sessions.c.expires_at > func.now(),
    )
)


def find_live_session(
    *, session: Session, token_hash: bytes, touch_interval: timedelta
) -> LiveSession | None:
    """The unexpired session with this token digest, with its user."""
    row = session.execute(
        _LIVE_SESSION, {"token_hash": token_hash, "touch_interval": touch_interval}
    ).one_or_none()
    if row is None:
        return None
    return LiveSession(
        session_id=row.session_id,
        user_id=row.user_id,
        provider_id=row.provider_id,
        role=UserRole(row.role),
        permissions=tuple(row.permissions),
        expires_at=row.expires_at,
        expires_in=row.expires_in,
        touch_due_in=row.touch_due_in,
        csrf_token_hash=row.csrf_token_hash,
    )


def touch_session(*, session: Session, session_id: uuid.UUID, ttl: timedelta) -> datetime | None:
    """Push the expiry to ``ttl`` from now; None if the session expired meanwhile."""
    expires_at: datetime | None = session.execute(
        update(auth_sessions)
        .where(auth_sessions.c.session_id == session_id, auth_sessions.c.expires_at > func.now())
        .values(last_seen_at=func.now(), expires_at=func.now() + ttl)
        .returning(auth_sessions.c.expires_at)
    ).scalar_one_or_none()
    return expires_at


def delete_session(*, session: Session, session_id: uuid.UUID) -> None:
    """End a session."""
    session.execute(delete(auth_sessions).where(auth_sessions.c.session_id == session_id))


def purge_expired_sessions(*, session: Session, user_id: uuid.UUID | None = None) -> int:
    """Delete expired sessions (of one user, or all); returns how many."""
    statement = delete(auth_sessions).where(auth_sessions.c.expires_at <= func.now())
    if user_id is not None:
        statement = statement.where(auth_sessions.c.user_id == user_id)
    result: CursorResult[Any] = session.execute(statement)  # type: ignore[assignment]
    return result.rowcount


def provider_name(*, session: Session, provider_id: uuid.UUID) -> tuple[str, str] | None:
    """The provider's (first name, last name), or None if there is no such provider."""
    row = session.execute(
        select(providers.c.first_name, providers.c.last_name).where(
            providers.c.provider_id == provider_id
        )
    ).first()
    return None if row is None else (row.first_name, row.last_name)
