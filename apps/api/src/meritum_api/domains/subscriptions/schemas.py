"""Row types of the subscriptions domain, as services see them."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from meritum_shared.constants.analytics import DeliveryMethod, ReportType, SubscriptionFrequency


@dataclass(frozen=True, slots=True)
class SubscriptionView:
    """One subscription row."""

    subscription_id: uuid.UUID
    provider_id: uuid.UUID
    report_type: ReportType
    frequency: SubscriptionFrequency
    delivery_method: DeliveryMethod
    is_active: bool
    next_run_at: datetime
    last_run_at: datetime | None
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, row: object) -> SubscriptionView:
        """From a row holding every column of ``report_subscriptions``."""
        m = row._mapping  # type: ignore[attr-defined]
        return cls(
            subscription_id=m["subscription_id"],
            provider_id=m["provider_id"],
            report_type=ReportType(m["report_type"]),
            frequency=SubscriptionFrequency(m["frequency"]),
            delivery_method=DeliveryMethod(m["delivery_method"]),
            is_active=m["is_active"],
            next_run_at=m["next_run_at"],
            last_run_at=m["last_run_at"],
            created_at=m["created_at"],
            updated_at=m["updated_at"],
        )
