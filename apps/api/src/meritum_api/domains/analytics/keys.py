"""Storage keys of report files: built from ids only, and read back, in one place."""

from __future__ import annotations

import uuid
from typing import Final

#: Every report file lives under this prefix.
REPORTS_PREFIX: Final = "reports/"


def storage_key(*, provider_id: uuid.UUID, report_id: uuid.UUID) -> str:
    """The opaque storage key of a report's file."""
    return f"{REPORTS_PREFIX}{provider_id}/{report_id}"


def report_id_of(key: str) -> uuid.UUID | None:
    """The report a storage key belongs to, or None when it is not a report key."""
    parts = key.split("/")
    if len(parts) != 3 or f"{parts[0]}/" != REPORTS_PREFIX:
        return None
    try:
        provider_id, report_id = uuid.UUID(parts[1]), uuid.UUID(parts[2])
    except ValueError:
        return None
    if key != storage_key(provider_id=provider_id, report_id=report_id):
        return None  # not the canonical spelling of a key this code builds
    return report_id
