"""Table definitions (SQLAlchemy 2) shared by the API and the web app."""

from meritum_shared.schemas.db.analytics import (
    GeneratedReport,
    GeneratedReportContent,
    InsertGeneratedReport,
    ReportExportSecret,
    ReportIdempotencyKey,
    SafeGeneratedReport,
    SelectGeneratedReport,
    generated_report_contents,
    generated_reports,
    report_export_secrets,
    report_idempotency_keys,
)
from meritum_shared.schemas.db.audit import AUDIT_ACTIONS, AuditLogEntry, audit_log
from meritum_shared.schemas.db.auth import AuthSession, User, auth_sessions, users
from meritum_shared.schemas.db.base import NAMING_CONVENTION, Base, metadata
from meritum_shared.schemas.db.claim_activity import (
    AiCoachSuggestion,
    ClaimHistoryEvent,
    SubmissionBatch,
    ai_coach_suggestions,
    claim_audit_history,
    submission_batches,
)
from meritum_shared.schemas.db.claims import Claim, Patient, claims, patients
from meritum_shared.schemas.db.notifications import (
    Notification,
    NotificationPreference,
    notification_preferences,
    notifications,
)
from meritum_shared.schemas.db.practice import (
    PracticeLocation,
    ProviderBaNumber,
    ProviderSetting,
    practice_locations,
    provider_ba_numbers,
    provider_settings,
)
from meritum_shared.schemas.db.provider import Provider, providers
from meritum_shared.schemas.db.reference import (
    RejectionCode,
    WcbTimingTier,
    rejection_codes,
    wcb_timing_tiers,
)
from meritum_shared.schemas.db.subscriptions import (
    ReportSubscription,
    SubscriptionRun,
    report_subscriptions,
    subscription_runs,
)

__all__ = [
    "AUDIT_ACTIONS",
    "NAMING_CONVENTION",
    "AiCoachSuggestion",
    "AuditLogEntry",
    "AuthSession",
    "Base",
    "Claim",
    "ClaimHistoryEvent",
    "GeneratedReport",
    "GeneratedReportContent",
    "InsertGeneratedReport",
    "Notification",
    "NotificationPreference",
    "Patient",
    "PracticeLocation",
    "Provider",
    "ProviderBaNumber",
    "ProviderSetting",
    "RejectionCode",
    "ReportExportSecret",
    "ReportIdempotencyKey",
    "ReportSubscription",
    "SafeGeneratedReport",
    "SelectGeneratedReport",
    "SubmissionBatch",
    "SubscriptionRun",
    "User",
    "WcbTimingTier",
    "ai_coach_suggestions",
    "audit_log",
    "auth_sessions",
    "claim_audit_history",
    "claims",
    "generated_report_contents",
    "generated_reports",
    "metadata",
    "notification_preferences",
    "notifications",
    "patients",
    "practice_locations",
    "provider_ba_numbers",
    "provider_settings",
    "providers",
    "rejection_codes",
    "report_export_secrets",
    "report_idempotency_keys",
    "report_subscriptions",
    "submission_batches",
    "subscription_runs",
    "users",
    "wcb_timing_tiers",
]
