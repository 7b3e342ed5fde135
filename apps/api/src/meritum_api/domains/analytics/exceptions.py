"""Domain exceptions of generated reports; one handler maps them to HTTP.

Their messages are shown to users: they never carry a storage key or PHI.
"""

from __future__ import annotations

from meritum_api.domains.analytics.schemas import ReportView
from meritum_shared.constants.analytics import ReportFormat, ReportStatus, ReportType


class ReportError(Exception):
    """Base of the reports domain's errors."""


class ReportNotFound(ReportError):
    """No such report for this provider (another provider's id looks the same)."""

    def __init__(self) -> None:
        super().__init__("Report not found")


class ReportNotReady(ReportError):
    """The report exists but has no downloadable file (yet, or any more)."""

    def __init__(self) -> None:
        super().__init__("Report not found")


class ReportExpired(ReportError):
    """The download link has expired; ``report`` says what to request again."""

    def __init__(self, report: ReportView) -> None:
        super().__init__("The download link for this report has expired")
        self.report = report


class ReportUnreadable(ReportError):
    """The report's file cannot be decrypted: master key ``key_id`` is not configured here."""

    def __init__(self, report: ReportView, *, key_id: str) -> None:
        super().__init__("This report's file cannot be read")
        self.report = report
        self.key_id = key_id


class IllegalTransition(ReportError):
    """A status move the state machine forbids."""

    def __init__(self, current: ReportStatus, target: ReportStatus) -> None:
        super().__init__(f"A report cannot move from {current.value} to {target.value}")
        self.current = current
        self.target = target


class TransitionConflict(ReportError):
    """The row was not in the expected status any more: someone else moved it first."""

    def __init__(self, expected: ReportStatus, target: ReportStatus) -> None:
        super().__init__(
            f"The report is no longer {expected.value}; it was not moved to {target.value}"
        )
        self.expected = expected
        self.target = target


class UnsupportedReport(ReportError):
    """No generator exists for this report type in this format (yet)."""

    @classmethod
    def for_pair(cls, report_type: ReportType, format: ReportFormat) -> UnsupportedReport:
        """The refusal for one (report type, format) pair, worded for users."""
        return cls(f"{report_type.value} reports in {format.value} format are not available yet")


class IdempotencyKeyReused(ReportError):
    """An Idempotency-Key sent again with a different request."""

    def __init__(self) -> None:
        super().__init__(
            "This Idempotency-Key was already used with a different request; "
            "use a new key for a new request"
        )


class RequestLimitReached(ReportError):
    """Too many requests of one kind in the window; ``retry_after`` seconds until one frees."""

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after
