"""Request and response contracts of the subscription API (subscriptions spec section 3).

Requests forbid unknown fields. Whether a type may be subscribed to, and
whether a frequency is allowed for it, are business rules (422) that the
service decides; these models only check the shape (400).
"""

from __future__ import annotations

import uuid
from typing import Self

from pydantic import AwareDatetime, BaseModel, ConfigDict, StrictBool, model_validator
from pydantic_core import PydanticCustomError

from meritum_shared.constants.analytics import DeliveryMethod, ReportType, SubscriptionFrequency

EMPTY_UPDATE_MESSAGE = "Give at least one of frequency, delivery_method, is_active"


class SubscriptionCreate(BaseModel):
    """POST /api/v1/report-subscriptions."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    report_type: ReportType
    #: The type's first allowed frequency when not given.
    frequency: SubscriptionFrequency | None = None
    delivery_method: DeliveryMethod = DeliveryMethod.IN_APP


class SubscriptionUpdate(BaseModel):
    """PUT /api/v1/report-subscriptions/{id}: at least one field."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    frequency: SubscriptionFrequency | None = None
    delivery_method: DeliveryMethod | None = None
    #: False pauses the subscription; true resumes it from now (paused runs are not made up).
    is_active: StrictBool | None = None

    @model_validator(mode="after")
    def _not_empty(self) -> Self:
        if self.frequency is None and self.delivery_method is None and self.is_active is None:
            raise PydanticCustomError("update_empty", EMPTY_UPDATE_MESSAGE)
        return self


class SubscriptionOut(BaseModel):
    """One subscription as the API shows it."""

    subscription_id: uuid.UUID
    report_type: ReportType
    frequency: SubscriptionFrequency
    delivery_method: DeliveryMethod
    is_active: bool
    #: The next instant it runs (06:00 in Edmonton on a run day).
    next_run_at: AwareDatetime
    #: The instant of its latest run; null until it first runs.
    last_run_at: AwareDatetime | None
    created_at: AwareDatetime
    updated_at: AwareDatetime
