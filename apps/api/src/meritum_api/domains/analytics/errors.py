"""How the reports domain's exceptions answer over HTTP (one place for all of them)."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI

from meritum_api.domains.analytics.exceptions import (
    IdempotencyKeyReused,
    IllegalTransition,
    ReportExpired,
    ReportNotFound,
    ReportNotReady,
    ReportUnreadable,
    RequestLimitReached,
    TransitionConflict,
    UnsupportedReport,
)
from meritum_api.domains.analytics.schemas import ReportView
from meritum_api.http.errors import ApiError, register_error_mapping
from meritum_shared.constants.analytics import ReportFormat, ReportStatus, ReportType
from meritum_shared.schemas.validation.analytics import ACCOUNTANT_OUTPUT, AccountantFormat

log = logging.getLogger(__name__)

_NOT_FOUND = ApiError(404, "NOT_FOUND", "Report not found")


def regenerate_request(report: ReportView) -> dict[str, Any] | None:
    """The request that produces the same report again, or None (subscription reports)."""
    if report.report_type is ReportType.DATA_PORTABILITY:
        return {"method": "POST", "path": "/api/v1/reports/data-portability", "body": {}}
    pair: tuple[ReportType, ReportFormat] = (report.report_type, report.format)
    # Accountant CSVs stored before they took the ACCOUNTANT_SUMMARY type.
    if pair == (ReportType.ACCOUNTANT_DETAIL, ReportFormat.CSV):
        pair = ACCOUNTANT_OUTPUT[AccountantFormat.CSV]
    for accountant_format, output in ACCOUNTANT_OUTPUT.items():
        if output == pair:
            return {
                "method": "POST",
                "path": "/api/v1/reports/accountant",
                "body": {
                    "period_start": str(report.period_start),
                    "period_end": str(report.period_end),
                    "format": accountant_format.value,
                },
            }
    return None


def _gone(exc: ReportExpired) -> ApiError:
    # "link_expired": past its instant, file not yet swept; "retention_ended":
    # the cleanup has removed it. Either way nothing will be served.
    reason = "retention_ended" if exc.report.status is ReportStatus.EXPIRED else "link_expired"
    return ApiError(
        410,
        "REPORT_EXPIRED",
        "The download link for this report has expired; request the report again",
        details={
            "reason": reason,
            "report_id": str(exc.report.report_id),
            "expired_at": exc.report.download_link_expires_at.isoformat(),
            "regenerate": regenerate_request(exc.report),
        },
    )


def _unreadable(exc: ReportUnreadable) -> ApiError:
    # 500, not 410: the link has not expired and the client did nothing wrong; the
    # server was configured without the master key this file needs, a server-side
    # fault that retrying will not mend (503 would invite retries). Unlike a bare 500
    # the answer says what happened and carries the request that makes the report again.
    log.error(
        "report %s cannot be read: master key %r is not configured (MERITUM_MASTER_KEYS)",
        exc.report.report_id,
        exc.key_id,
    )
    return ApiError(
        500,
        "REPORT_UNREADABLE",
        "This report's file can no longer be read; request the report again to make a new copy",
        details={
            "report_id": str(exc.report.report_id),
            "regenerate": regenerate_request(exc.report),
        },
    )


def install_report_errors(app: FastAPI) -> None:
    """Register the mapping of every reports exception on ``app``."""
    # Not ready and not found answer alike: existence is never confirmed.
    register_error_mapping(app, ReportNotFound, _NOT_FOUND)
    register_error_mapping(app, ReportNotReady, _NOT_FOUND)
    register_error_mapping(app, ReportExpired, _gone)
    register_error_mapping(app, ReportUnreadable, _unreadable)
    register_error_mapping(
        app, UnsupportedReport, lambda exc: ApiError(422, "FORMAT_NOT_AVAILABLE", str(exc))
    )
    register_error_mapping(
        app, IdempotencyKeyReused, lambda exc: ApiError(422, "IDEMPOTENCY_KEY_REUSED", str(exc))
    )
    register_error_mapping(
        app,
        RequestLimitReached,
        lambda exc: ApiError(
            429, "RATE_LIMITED", str(exc), headers={"Retry-After": str(exc.retry_after)}
        ),
    )
    register_error_mapping(app, TransitionConflict, lambda exc: ApiError(409, "CONFLICT", str(exc)))
    register_error_mapping(app, IllegalTransition, lambda exc: ApiError(409, "CONFLICT", str(exc)))
