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


class ClaimHistoryAction(StrEnum):
    """What one row of a claim's audit history records."""

    CREATED = "CREATED"
    STATE_CHANGED = "STATE_CHANGED"
    EDITED = "EDITED"


class BatchStatus(StrEnum):
    """Where a submission batch stands with the payer."""

    SUBMITTED = "SUBMITTED"
    ACKNOWLEDGED = "ACKNOWLEDGED"
    PROCESSED = "PROCESSED"


class SuggestionCategory(StrEnum):
    """What kind of advice an AI Coach suggestion gives."""

    MISSED_MODIFIER = "MISSED_MODIFIER"
    CODE_SELECTION = "CODE_SELECTION"
    DOCUMENTATION = "DOCUMENTATION"
    REJECTION_RISK = "REJECTION_RISK"
    DEADLINE = "DEADLINE"


class SuggestionStatus(StrEnum):
    """What the physician did with a suggestion (stored lower case, as the spec writes it)."""

    PENDING = "pending"
    ACCEPTED = "accepted"
    DISMISSED = "dismissed"


class BaType(StrEnum):
    """The payment arrangement a business arrangement number bills under."""

    FFS = "FFS"
    PCPCM = "PCPCM"
    ARP = "ARP"


class ProviderSettingSection(StrEnum):
    """Groups of the provider profile's settings beyond identity, BAs and locations."""

    WCB = "wcb"
    PREFERENCES = "preferences"


class WcbFeeTier(StrEnum):
    """How promptly WCB received a report, which sets the fee it pays."""

    SAME_DAY = "SAME_DAY"
    ON_TIME = "ON_TIME"
    LATE = "LATE"
