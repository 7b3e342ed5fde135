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
