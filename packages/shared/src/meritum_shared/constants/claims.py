"""Constants of the claim domain that reports read."""

from __future__ import annotations

from enum import StrEnum


class ClaimType(StrEnum):
    AHCIP = "AHCIP"
    WCB = "WCB"


class ClaimState(StrEnum):
    DRAFT = "DRAFT"
    QUEUED = "QUEUED"
    SUBMITTED = "SUBMITTED"
    ASSESSED = "ASSESSED"
    PAID = "PAID"
    ADJUSTED = "ADJUSTED"
    REJECTED = "REJECTED"
    WRITTEN_OFF = "WRITTEN_OFF"
    EXPIRED = "EXPIRED"
