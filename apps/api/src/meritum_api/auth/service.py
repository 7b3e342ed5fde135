"""Accounts, signing in and out, and resolving a request's session.

Transactions: as in every domain, a service function never commits; the
caller owns the transaction (``session_factory.begin()``). A refused login
is still recorded: :func:`login` returns the refusal instead of raising it,
so that the caller commits the audit entry and then answers 401.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import timedelta

from sqlalchemy.orm import Session, sessionmaker

from meritum_api.audit import repository as audit
from meritum_api.auth import passwords
from meritum_api.auth import repository as repo
from meritum_api.auth.sessions import (
    Credential,
    Principal,
    Via,
    digest,
    new_token,
    well_formed,
)
from meritum_api.context import AuthContext
from meritum_api.ratelimit import RateLimiter
from meritum_api.settings import Settings
from meritum_shared.constants.auth import (
    DELEGABLE_PERMISSIONS,
    PHYSICIAN_PERMISSIONS,
    AuthAuditAction,
    Permission,
    UserRole,
)


class InvalidCredentials(Exception):
    """Wrong email or password; deliberately does not say which."""


class TooManyLoginFailures(Exception):
    """Too many failed logins for one email address lately."""

    def __init__(self, retry_after: int) -> None:
        super().__init__("too many failed logins")
        self.retry_after = retry_after


def normalize_email(email: str) -> str:
    """Emails are compared trimmed and lower-case."""
    return email.strip().lower()


def permissions_of(role: UserRole, stored: Iterable[str]) -> frozenset[Permission]:
    """A physician holds every permission; a delegate holds what is stored."""
    if role is UserRole.PHYSICIAN:
        return PHYSICIAN_PERMISSIONS
    return frozenset(Permission(value) for value in stored) & DELEGABLE_PERMISSIONS


def create_user(
    *,
    session: Session,
    email: str,
    password: str,
    provider_id: uuid.UUID,
    role: UserRole,
    permissions: Iterable[Permission] | None = None,
) -> uuid.UUID:
    """Create a physician or delegate account in the caller's transaction (no commit).

    Physicians take no ``permissions`` (they hold all); a delegate's must be
    a subset of ``DELEGABLE_PERMISSIONS``. Raises ``ValueError`` for a bad
    role, permission set or password.
    """
    role = UserRole(role)
    granted = sorted(set(permissions or ()), key=list(Permission).index)
    if role is UserRole.PHYSICIAN and granted:
        raise ValueError("a physician holds every permission; grant none explicitly")
    if not set(granted) <= DELEGABLE_PERMISSIONS:
        raise ValueError("a delegate can only be granted delegable permissions")
    if not passwords.MIN_PASSWORD_LENGTH <= len(password) <= passwords.MAX_PASSWORD_LENGTH:
        raise ValueError(
            f"a password must have {passwords.MIN_PASSWORD_LENGTH} to "
            f"{passwords.MAX_PASSWORD_LENGTH} characters"
        )
    return repo.insert_user(
        session=session,
        email=normalize_email(email),
        password_hash=passwords.hash_password(password),
        provider_id=provider_id,
        role=role,
        permissions=[p.value for p in granted],
    )


@dataclass(frozen=True, slots=True)
class LoginResult:
    """A new session: its tokens exist only here and on the client."""

    principal: Principal
    token: str = field(repr=False)
    csrf_token: str = field(repr=False)


def _failure_key(email: str) -> str:
    return "login:" + hashlib.sha256(email.encode()).hexdigest()


def login(
    *,
    session: Session,
    settings: Settings,
    email: str,
    password: str,
    throttle: RateLimiter | None = None,
) -> LoginResult | InvalidCredentials:
    """Check the password and open a session; a refusal is returned, to be committed.

    Unknown email and wrong password take the same path: one argon2
    verification, one audit entry, the same refusal. Too many recent
    failures raise :class:`TooManyLoginFailures` before anything is checked.
    """
    normalized = normalize_email(email)
    key = _failure_key(normalized)
    if throttle is not None and not throttle.allowed(key):
        raise TooManyLoginFailures(throttle.retry_after(key))
    user = repo.find_user_by_email(session=session, email=normalized)
    # Always one verification (against a dummy hash for an unknown email).
    verified = passwords.verify_password(user.password_hash if user else None, password)
    if user is None or not verified:
        ctx = (
            AuthContext(provider_id=user.provider_id, user_id=user.user_id)
            if user is not None
            else None
        )
        audit.record(
            session=session,
            ctx=ctx,
            action=AuthAuditAction.LOGIN_FAILED,
            resource_id=user.user_id if user else None,
            details={"reason": "wrong_password" if user else "unknown_email"},
        )
        if throttle is not None:
            throttle.hit(key)
        return InvalidCredentials()

    if passwords.needs_rehash(user.password_hash):
        repo.update_password_hash(
            session=session,
            user_id=user.user_id,
            password_hash=passwords.hash_password(password),
        )
    token, csrf_token = new_token(), new_token()
    session_id, expires_at = repo.insert_session(
        session=session,
        user_id=user.user_id,
        token_hash=digest(token),
        csrf_token_hash=digest(csrf_token),
        ttl=timedelta(seconds=settings.session_ttl_seconds),
    )
    repo.purge_expired_sessions(session=session, user_id=user.user_id)
    principal = Principal(
        session_id=session_id,
        user_id=user.user_id,
        provider_id=user.provider_id,
        role=user.role,
        permissions=permissions_of(user.role, user.permissions),
        expires_at=expires_at,
        via="cookie",
        csrf_token_hash=digest(csrf_token),
    )
    audit.record(
        session=session,
        ctx=principal.context,
        action=AuthAuditAction.LOGIN,
        resource_id=session_id,
        details={"role": user.role},
    )
    return LoginResult(principal=principal, token=token, csrf_token=csrf_token)


@dataclass(frozen=True, slots=True)
class ResolvedSession:
    """A live session's principal, with how long (by the database clock) it stays as it is."""

    principal: Principal
    #: Seconds until the session expires.
    expires_in: float
    #: Seconds until its sliding expiry is due to be written again.
    touch_due_in: float


def resolve_session(
    *, session_factory: sessionmaker[Session], settings: Settings, token_hash: bytes, via: Via
) -> ResolvedSession | None:
    """The live session with this token digest, or None (unknown or expired).

    Slides the expiry forward, by the database clock, at most once per
    ``session_touch_interval_seconds``: a busy client does not write on
    every request. Resolving happens before any route runs, so it owns its
    short transaction.
    """
    touch_interval = timedelta(seconds=settings.session_touch_interval_seconds)
    with session_factory.begin() as session:
        live = repo.find_live_session(
            session=session, token_hash=token_hash, touch_interval=touch_interval
        )
        if live is None:
            return None
        expires_at, expires_in, touch_due_in = live.expires_at, live.expires_in, live.touch_due_in
        if live.due_for_touch:
            ttl = timedelta(seconds=settings.session_ttl_seconds)
            touched = repo.touch_session(session=session, session_id=live.session_id, ttl=ttl)
            if touched is None:
                return None
            # One transaction: now() is the same instant the look-up measured from.
            expires_at = touched
            expires_in = ttl.total_seconds()
            touch_due_in = touch_interval.total_seconds()
        principal = Principal(
            session_id=live.session_id,
            user_id=live.user_id,
            provider_id=live.provider_id,
            role=live.role,
            permissions=permissions_of(live.role, live.permissions),
            expires_at=expires_at,
            via=via,
            csrf_token_hash=live.csrf_token_hash,
        )
    return ResolvedSession(principal=principal, expires_in=expires_in, touch_due_in=touch_due_in)


def resolve(
    *, session_factory: sessionmaker[Session], settings: Settings, credential: Credential
) -> Principal | None:
    """The principal behind a credential, or None (unknown, expired or malformed)."""
    if not well_formed(credential.token):
        return None
    found = resolve_session(
        session_factory=session_factory,
        settings=settings,
        token_hash=digest(credential.token),
        via=credential.via,
    )
    return found.principal if found is not None else None


def logout(*, session: Session, principal: Principal) -> None:
    """End the principal's session."""
    repo.delete_session(session=session, session_id=principal.session_id)
    audit.record(
        session=session,
        ctx=principal.context,
        action=AuthAuditAction.LOGOUT,
        resource_id=principal.session_id,
    )


def purge_expired_sessions(*, session: Session) -> int:
    """Delete every expired session; returns how many."""
    return repo.purge_expired_sessions(session=session)


def physician_name(*, session: Session, ctx: AuthContext) -> str:
    """Whom the context acts for, as a page names them: ``Dr. First Last``."""
    found = repo.provider_name(session=session, provider_id=ctx.provider_id)
    return "your physician" if found is None else f"Dr. {found[0]} {found[1]}"
