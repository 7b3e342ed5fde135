"""Writing to and reading from the append-only audit log.

``record`` never commits: the entry belongs to the caller's transaction, so a
download marked ``downloaded = true`` and its audit entry land together or
not at all.

What ``details`` may hold is restricted here, because PostgreSQL keeps
every entry forever: keys come from an allow-list, each with one kind of
value, and text values must be short identifier-like tokens (an enum value,
a date). A name, a PHN (nine digits), free text or a storage key (it
contains ``/``) cannot pass, whatever a caller tries.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum
from types import MappingProxyType
from typing import Any, Final

from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session

from meritum_api.context import AuthContext
from meritum_shared.constants.analytics import AuditAction
from meritum_shared.constants.auth import AuthAuditAction
from meritum_shared.schemas.db import audit_log

Action = AuditAction | AuthAuditAction
DetailValue = str | int | bool | date | None

#: The keys ``details`` may hold, and the kind of value each takes.
DETAIL_KINDS: Final[Mapping[str, type]] = MappingProxyType(
    {
        "report_type": str,
        "format": str,
        "status": str,
        "frequency": str,
        "delivery_method": str,
        "time_period": str,
        "claim_type": str,
        "metric": str,
        "reason": str,
        "via": str,
        "role": str,
        "period_start": date,
        "period_end": date,
        "scheduled": bool,
        "password_protected": bool,
        "file_size_bytes": int,
        "bytes": int,
        "count": int,
        # A subscription's changes, old and new values side by side.
        "old_frequency": str,
        "new_frequency": str,
        "old_delivery_method": str,
        "new_delivery_method": str,
        "old_is_active": bool,
        "new_is_active": bool,
    }
)

_TOKEN_TEXT: Final = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")
_NINE_DIGITS: Final = re.compile(r"\d{9}")

_RESOURCE_TYPES: Final[Mapping[Action, str]] = MappingProxyType(
    {
        AuditAction.DASHBOARD_VIEWED: "dashboard",
        AuditAction.REPORT_GENERATED: "report",
        AuditAction.REPORT_DOWNLOADED: "report",
        AuditAction.DATA_PORTABILITY_REQUESTED: "report",
        AuditAction.DATA_PORTABILITY_DOWNLOADED: "report",
        AuditAction.SUBSCRIPTION_CREATED: "subscription",
        AuditAction.SUBSCRIPTION_UPDATED: "subscription",
        AuditAction.SUBSCRIPTION_CANCELLED: "subscription",
        AuthAuditAction.LOGIN: "session",
        AuthAuditAction.LOGOUT: "session",
        AuthAuditAction.LOGIN_FAILED: "user",
    }
)


class AuditDetailsRejected(ValueError):
    """``details`` holds a key or a value the audit log does not accept (a bug)."""


def _clean_value(key: str, value: DetailValue) -> str | int | bool | None:
    kind = DETAIL_KINDS.get(key)
    if kind is None:
        raise AuditDetailsRejected(f"audit detail key {key!r} is not allowed")
    if value is None:
        return None
    if kind is bool and isinstance(value, bool):
        return value
    if kind is int and isinstance(value, int) and not isinstance(value, bool):
        return value
    if kind is date and isinstance(value, date) and not isinstance(value, datetime):
        return value.isoformat()
    if kind is str and isinstance(value, str):
        text = value.value if isinstance(value, StrEnum) else value
        if _TOKEN_TEXT.fullmatch(text) and not _NINE_DIGITS.search(text):
            return text
        # The value itself is not quoted: it may be exactly what must not leak.
        raise AuditDetailsRejected(f"audit detail {key!r} is not an identifier-like value")
    raise AuditDetailsRejected(f"audit detail {key!r} must be of kind {kind.__name__}")


def clean_details(details: Mapping[str, DetailValue] | None) -> dict[str, Any]:
    """``details`` checked against the allow-list, as JSON-ready values."""
    return {key: _clean_value(key, value) for key, value in (details or {}).items()}


def record(
    *,
    session: Session,
    ctx: AuthContext | None,
    action: Action,
    resource_id: uuid.UUID | None,
    details: Mapping[str, DetailValue] | None = None,
    sensitive: bool = False,
    resource_type: str | None = None,
) -> int:
    """Append an entry in the caller's transaction; returns its id.

    ``ctx`` is who acted and for which provider; it is None only for an
    authentication event naming no known user (a failed login).
    """
    entry_id: int = session.execute(
        insert(audit_log)
        .values(
            actor_user_id=ctx.user_id if ctx else None,
            provider_id=ctx.provider_id if ctx else None,
            action=action.value,
            resource_type=resource_type or _RESOURCE_TYPES[action],
            resource_id=resource_id,
            details=clean_details(details),
            sensitive=sensitive,
        )
        .returning(audit_log.c.id)
    ).scalar_one()
    return entry_id


@dataclass(frozen=True, slots=True)
class AuditEntry:
    id: int
    occurred_at: datetime
    actor_user_id: uuid.UUID | None
    provider_id: uuid.UUID | None
    action: str
    resource_type: str
    resource_id: uuid.UUID | None
    details: Mapping[str, Any]
    sensitive: bool


@dataclass(frozen=True, slots=True)
class AuditSummary:
    """How often an action happened to a resource, and when first and last."""

    count: int
    first_at: datetime | None
    last_at: datetime | None


def _scoped(ctx: AuthContext, resource_id: uuid.UUID, action: Action) -> list[Any]:
    return [
        audit_log.c.provider_id == ctx.provider_id,
        audit_log.c.resource_id == resource_id,
        audit_log.c.action == action.value,
    ]


def entries_for(
    *, session: Session, ctx: AuthContext, resource_id: uuid.UUID, action: Action
) -> list[AuditEntry]:
    """The entries of ``action`` on one of the context's resources, oldest first."""
    rows = session.execute(
        select(audit_log)
        .where(*_scoped(ctx, resource_id, action))
        .order_by(audit_log.c.occurred_at, audit_log.c.id)
    ).all()
    return [
        AuditEntry(
            id=row.id,
            occurred_at=row.occurred_at,
            actor_user_id=row.actor_user_id,
            provider_id=row.provider_id,
            action=row.action,
            resource_type=row.resource_type,
            resource_id=row.resource_id,
            details=MappingProxyType(dict(row.details)),
            sensitive=row.sensitive,
        )
        for row in rows
    ]


def summary_for(
    *, session: Session, ctx: AuthContext, resource_id: uuid.UUID, action: Action
) -> AuditSummary:
    """Count, first and last time of ``action`` on one resource (e.g. downloads)."""
    row = session.execute(
        select(
            func.count(), func.min(audit_log.c.occurred_at), func.max(audit_log.c.occurred_at)
        ).where(*_scoped(ctx, resource_id, action))
    ).one()
    return AuditSummary(count=int(row[0]), first_at=row[1], last_at=row[2])


def first_and_count(
    *, session: Session, ctx: AuthContext, resource_id: uuid.UUID, action: Action
) -> tuple[datetime | None, int]:
    """When ``action`` first happened to the resource, and how often (e.g. downloads)."""
    summary = summary_for(session=session, ctx=ctx, resource_id=resource_id, action=action)
    return summary.first_at, summary.count
