"""Permissions a physician holds and may delegate."""

from __future__ import annotations

from enum import StrEnum
from typing import Final


class Permission(StrEnum):
    REPORT_VIEW = "REPORT_VIEW"
    REPORT_EXPORT = "REPORT_EXPORT"
    DATA_EXPORT = "DATA_EXPORT"
    ANALYTICS_VIEW = "ANALYTICS_VIEW"


#: A physician holds every permission over their own provider.
PHYSICIAN_PERMISSIONS: Final = frozenset(Permission)


class UserRole(StrEnum):
    """Who a user is (lower case, as stored)."""

    PHYSICIAN = "physician"
    DELEGATE = "delegate"


#: What a physician may grant a delegate; a delegate holds a stored subset of these.
DELEGABLE_PERMISSIONS: Final[frozenset[Permission]] = frozenset(
    {
        Permission.REPORT_VIEW,
        Permission.REPORT_EXPORT,
        Permission.DATA_EXPORT,
        Permission.ANALYTICS_VIEW,
    }
)


class AuthAuditAction(StrEnum):
    """Audit actions of authentication, beside the analytics ones of ``AuditAction``."""

    LOGIN = "auth.login"
    LOGOUT = "auth.logout"
    LOGIN_FAILED = "auth.login_failed"
