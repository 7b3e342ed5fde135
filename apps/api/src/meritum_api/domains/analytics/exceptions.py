"""Domain exceptions of generated reports; one handler maps them to HTTP.

Their messages are shown to users: they never carry a storage key or PHI.
"""

from __future__ import annotations

import uuid

from meritum_shared.constants.analytics import ReportStatus


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
    """The download link has expired."""

    def __init__(self, report_id: uuid.UUID) -> None:
        super().__init__("The download link for this report has expired")
        self.report_id = report_id


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
