"""Table definitions (SQLAlchemy 2) shared by the API and the web app."""

from meritum_shared.schemas.db.analytics import (
    GeneratedReport,
    GeneratedReportContent,
    InsertGeneratedReport,
    ReportIdempotencyKey,
    SafeGeneratedReport,
    SelectGeneratedReport,
    generated_report_contents,
    generated_reports,
    report_idempotency_keys,
)
from meritum_shared.schemas.db.audit import AUDIT_ACTIONS, AuditLogEntry, audit_log
from meritum_shared.schemas.db.auth import AuthSession, User, auth_sessions, users
from meritum_shared.schemas.db.base import NAMING_CONVENTION, Base, metadata
from meritum_shared.schemas.db.claims import Claim, Patient, claims, patients
from meritum_shared.schemas.db.provider import Provider, providers

__all__ = [
    "AUDIT_ACTIONS",
    "NAMING_CONVENTION",
    "AuditLogEntry",
    "AuthSession",
    "Base",
    "Claim",
    "GeneratedReport",
    "GeneratedReportContent",
    "InsertGeneratedReport",
    "Patient",
    "Provider",
    "ReportIdempotencyKey",
    "SafeGeneratedReport",
    "SelectGeneratedReport",
    "User",
    "audit_log",
    "auth_sessions",
    "claims",
    "generated_report_contents",
    "generated_reports",
    "metadata",
    "patients",
    "providers",
    "report_idempotency_keys",
    "users",
]
