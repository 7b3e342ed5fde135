"""What the subscriptions domain raises; mapped to HTTP in ``errors.py``.

Their messages are shown to users.
"""

from __future__ import annotations

from meritum_shared.constants.analytics import ReportType, SubscriptionFrequency


class SubscriptionError(Exception):
    """Base of the subscriptions domain's errors."""


class SubscriptionNotFound(SubscriptionError):
    """No such subscription of this physician (another physician's id looks the same)."""

    def __init__(self) -> None:
        super().__init__("Subscription not found")


class SubscriptionExists(SubscriptionError):
    """The physician already has a subscription to this report type."""

    def __init__(self, report_type: ReportType) -> None:
        super().__init__(f"There is already a subscription to {report_type.value} reports")
        self.report_type = report_type


class NotSubscribable(SubscriptionError):
    """The report type is produced on demand only."""

    def __init__(self, report_type: ReportType) -> None:
        super().__init__(
            f"{report_type.value} reports are on demand only; they cannot be scheduled"
        )
        self.report_type = report_type


class FrequencyNotAllowed(SubscriptionError):
    """The frequency is not one the report type allows."""

    def __init__(
        self,
        report_type: ReportType,
        frequency: SubscriptionFrequency,
        allowed: tuple[SubscriptionFrequency, ...],
    ) -> None:
        super().__init__(f"{report_type.value} reports cannot be produced {frequency.value}")
        self.report_type = report_type
        self.frequency = frequency
        self.allowed = allowed
