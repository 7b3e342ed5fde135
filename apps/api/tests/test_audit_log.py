"""The audit log: scoped reads, allow-listed details, append-only in PostgreSQL."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import date
from typing import Any

import httpx
import psycopg
import pytest
from sqlalchemy import Engine, text
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.orm import Session

from apiserver import Account, add_account, bearer, build_app, serve, settings_for
from factories import add_provider
from meritum_api.audit.repository import (
    AuditDetailsRejected,
    entries_for,
    first_and_count,
    record,
    summary_for,
)
from meritum_api.context import AuthContext
from meritum_shared.constants.analytics import AuditAction, ReportFormat, ReportType
from meritum_shared.constants.auth import PHYSICIAN_PERMISSIONS, AuthAuditAction

RESTRICT_VIOLATION = "23001"


@pytest.fixture(scope="module")
def account(engine: Engine) -> Account:
    return add_account(engine)


@pytest.fixture(scope="module")
def ctx(account: Account) -> AuthContext:
    return AuthContext(
        provider_id=account.provider_id, user_id=account.user_id, permissions=PHYSICIAN_PERMISSIONS
    )


@pytest.fixture(scope="module")
def committed_entry(engine: Engine, ctx: AuthContext) -> int:
    """One committed entry the append-only tests try to change."""
    with Session(engine) as session:
        entry_id = record(
            session=session,
            ctx=ctx,
            action=AuditAction.REPORT_GENERATED,
            resource_id=uuid.uuid4(),
            details={"report_type": ReportType.ACCOUNTANT_DETAIL, "format": ReportFormat.CSV},
        )
        session.commit()
    return entry_id


def test_downloads_of_a_report_are_counted_within_the_provider(
    session: Session, ctx: AuthContext
) -> None:
    report_id = uuid.uuid4()
    for _ in range(3):
        record(
            session=session,
            ctx=ctx,
            action=AuditAction.REPORT_DOWNLOADED,
            resource_id=report_id,
            details={"report_type": ReportType.ACCOUNTANT_DETAIL, "file_size_bytes": 1_234_567},
        )
    record(session=session, ctx=ctx, action=AuditAction.REPORT_GENERATED, resource_id=report_id)
    entries = entries_for(
        session=session, ctx=ctx, resource_id=report_id, action=AuditAction.REPORT_DOWNLOADED
    )
    assert len(entries) == 3
    assert [e.occurred_at for e in entries] == sorted(e.occurred_at for e in entries)
    first = entries[0]
    assert first.action == "analytics.report_downloaded"
    assert first.resource_type == "report"
    assert first.actor_user_id == ctx.user_id
    assert first.provider_id == ctx.provider_id
    assert first.details == {"report_type": "ACCOUNTANT_DETAIL", "file_size_bytes": 1_234_567}
    assert first.sensitive is False
    summary = summary_for(
        session=session, ctx=ctx, resource_id=report_id, action=AuditAction.REPORT_DOWNLOADED
    )
    assert summary.count == 3
    assert summary.first_at == entries[0].occurred_at
    assert summary.last_at == entries[-1].occurred_at
    assert first_and_count(
        session=session, ctx=ctx, resource_id=report_id, action=AuditAction.REPORT_DOWNLOADED
    ) == (entries[0].occurred_at, 3)

    other = AuthContext(provider_id=add_provider(session), user_id=None)
    assert (
        entries_for(
            session=session,
            ctx=other,
            resource_id=report_id,
            action=AuditAction.REPORT_DOWNLOADED,
        )
        == []
    )
    assert (
        summary_for(
            session=session,
            ctx=other,
            resource_id=report_id,
            action=AuditAction.REPORT_DOWNLOADED,
        ).count
        == 0
    )


def test_sensitive_flag_is_kept(session: Session, ctx: AuthContext) -> None:
    export_id = uuid.uuid4()
    record(
        session=session,
        ctx=ctx,
        action=AuditAction.DATA_PORTABILITY_DOWNLOADED,
        resource_id=export_id,
        details={"password_protected": True},
        sensitive=True,
    )
    (entry,) = entries_for(
        session=session,
        ctx=ctx,
        resource_id=export_id,
        action=AuditAction.DATA_PORTABILITY_DOWNLOADED,
    )
    assert entry.sensitive is True
    assert entry.details == {"password_protected": True}


@pytest.mark.parametrize(
    "details",
    [
        {"phn": "123456789"},
        {"reason": "patient 123456789"},
        {"reason": "123456789"},
        {"status": "reports/0b1c/2f3e.bin"},
        {"reason": "Amélie O'Brien-Côté"},
        {"file_size_bytes": "12"},
        {"scheduled": 1},
        {"period_start": "2026-01-01"},
        {"report_type": "x" * 65},
    ],
    ids=[
        "unknown-key",
        "phn-in-text",
        "bare-phn",
        "storage-key",
        "a-name",
        "text-for-number",
        "number-for-flag",
        "text-for-date",
        "too-long",
    ],
)
def test_details_outside_the_allow_list_are_rejected_before_writing(
    session: Session, ctx: AuthContext, details: dict[str, Any]
) -> None:
    resource_id = uuid.uuid4()
    with pytest.raises(AuditDetailsRejected) as caught:
        record(
            session=session,
            ctx=ctx,
            action=AuditAction.REPORT_GENERATED,
            resource_id=resource_id,
            details=details,
        )
    for value in details.values():  # the refusal never quotes what it refused
        assert str(value) not in str(caught.value)
    assert (
        entries_for(
            session=session,
            ctx=ctx,
            resource_id=resource_id,
            action=AuditAction.REPORT_GENERATED,
        )
        == []
    )


def test_dates_and_enums_are_stored_as_text(session: Session, ctx: AuthContext) -> None:
    resource_id = uuid.uuid4()
    record(
        session=session,
        ctx=ctx,
        action=AuditAction.REPORT_GENERATED,
        resource_id=resource_id,
        details={
            "report_type": ReportType.ACCOUNTANT_SUMMARY,
            "period_start": date(2026, 1, 1),
            "period_end": date(2026, 1, 31),
            "scheduled": False,
        },
    )
    (entry,) = entries_for(
        session=session, ctx=ctx, resource_id=resource_id, action=AuditAction.REPORT_GENERATED
    )
    assert entry.details == {
        "report_type": "ACCOUNTANT_SUMMARY",
        "period_start": "2026-01-01",
        "period_end": "2026-01-31",
        "scheduled": False,
    }


# --- append-only, enforced by PostgreSQL ---


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE audit_log SET details = '{}'::jsonb WHERE id = :id",
        "UPDATE audit_log SET sensitive = true WHERE id = :id",
        "DELETE FROM audit_log WHERE id = :id",
        "DELETE FROM audit_log",
    ],
    ids=["update-details", "update-flag", "delete-one", "delete-all"],
)
def test_postgres_refuses_to_change_or_remove_entries(
    engine: Engine, committed_entry: int, statement: str
) -> None:
    with engine.connect() as conn, pytest.raises(IntegrityError) as caught:
        conn.execute(text(statement), {"id": committed_entry})
    orig = caught.value.orig
    assert isinstance(orig, psycopg.Error)
    assert orig.sqlstate == RESTRICT_VIOLATION
    assert orig.diag.constraint_name == "tr_audit_log_append_only"
    assert "append-only" in str(orig)
    with engine.connect() as conn:
        still = conn.execute(
            text("SELECT count(*) FROM audit_log WHERE id = :id"), {"id": committed_entry}
        ).scalar_one()
    assert still == 1


@pytest.mark.parametrize(
    "statement",
    [
        "TRUNCATE audit_log",
        # Every table referencing users, so that only the trigger can refuse it.
        "TRUNCATE users, audit_log, auth_sessions, notifications, notification_preferences",
    ],
    ids=["audit-log", "with-others"],
)
def test_postgres_refuses_to_truncate(engine: Engine, committed_entry: int, statement: str) -> None:
    with engine.connect() as conn, pytest.raises(DBAPIError) as caught:
        conn.execute(text(statement))
    orig = caught.value.orig
    assert isinstance(orig, psycopg.Error)
    assert orig.sqlstate == RESTRICT_VIOLATION
    assert "TRUNCATE" in str(orig)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM audit_log")).scalar_one() >= 1


@pytest.mark.parametrize(
    ("values", "constraint"),
    [
        ({"action": "analytics.report_deleted"}, "ck_audit_log_action_valid"),
        (
            {"action": "analytics.report_generated", "provider_id": None},
            "ck_audit_log_provider_unless_auth",
        ),
        ({"details": "[]"}, "ck_audit_log_details_is_object"),
        ({"resource_type": "Report Files/"}, "ck_audit_log_resource_type_shape"),
    ],
    ids=["unknown-action", "no-tenant", "details-array", "resource-type"],
)
def test_postgres_refuses_malformed_entries(
    engine: Engine, account: Account, values: dict[str, Any], constraint: str
) -> None:
    row: dict[str, Any] = {
        "action": "analytics.report_generated",
        "provider_id": account.provider_id,
        "details": "{}",
        "resource_type": "report",
        **values,
    }
    with engine.connect() as conn, pytest.raises(IntegrityError) as caught:
        conn.execute(
            text(
                "INSERT INTO audit_log (action, provider_id, details, resource_type) "
                "VALUES (:action, :provider_id, CAST(:details AS jsonb), :resource_type)"
            ),
            row,
        )
    orig = caught.value.orig
    assert isinstance(orig, psycopg.errors.CheckViolation)
    assert orig.diag.constraint_name == constraint


# --- authentication events, written through the real API ---


@pytest.fixture(scope="module")
def client(engine: Engine, db_url: str) -> Iterator[httpx.Client]:
    app = build_app(engine, settings_for(db_url, rate_limit_per_minute=10_000))
    with serve(app) as url, httpx.Client(base_url=url, timeout=30) as c:
        yield c


def _auth_entries(engine: Engine, **where: Any) -> list[dict[str, Any]]:
    clauses = " AND ".join(f"{column} = :{column}" for column in where)
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT action, actor_user_id, provider_id, resource_type, resource_id, details, "
                f"sensitive FROM audit_log WHERE action LIKE 'auth.%%' AND {clauses} ORDER BY id"
            ),
            where,
        ).mappings()
        return [dict(row) for row in rows]


def test_login_logout_and_failures_are_audited_without_secrets(
    client: httpx.Client, engine: Engine
) -> None:
    account = add_account(engine)
    wrong = client.post(
        "/api/v1/auth/login", json={"email": account.email, "password": "wrong-password-1"}
    )
    assert wrong.status_code == 401
    ok = client.post(
        "/api/v1/auth/login", json={"email": account.email, "password": account.password}
    )
    data = ok.json()["data"]
    assert client.post("/api/v1/auth/logout", headers=bearer(data["token"])).status_code == 204

    entries = _auth_entries(engine, actor_user_id=account.user_id)
    assert [e["action"] for e in entries] == ["auth.login_failed", "auth.login", "auth.logout"]
    failed, login, logout = entries
    assert failed["resource_type"] == "user"
    assert failed["resource_id"] == account.user_id
    assert failed["details"] == {"reason": "wrong_password"}
    assert login["resource_type"] == "session"
    assert login["resource_id"] == logout["resource_id"]
    assert all(e["provider_id"] == account.provider_id for e in entries)
    with engine.connect() as conn:
        dump = str(conn.execute(text("SELECT string_agg(a::text, '|') FROM audit_log a")).scalar())
    for secret in (account.password, "wrong-password-1", data["token"], data["csrf_token"]):
        assert secret not in dump
    assert account.email not in dump


def test_failed_login_for_an_unknown_email_is_audited_anonymously(
    client: httpx.Client, engine: Engine
) -> None:
    email = f"ghost-{uuid.uuid4().hex[:8]}@clinic.example"
    with engine.connect() as conn:
        before = conn.execute(text("SELECT coalesce(max(id), 0) FROM audit_log")).scalar_one()
    assert (
        client.post("/api/v1/auth/login", json={"email": email, "password": "whatever-123"})
    ).status_code == 401
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT action, actor_user_id, provider_id, details::text FROM audit_log "
                "WHERE id > :before"
            ),
            {"before": before},
        ).all()
    assert [tuple(r) for r in rows] == [
        ("auth.login_failed", None, None, '{"reason": "unknown_email"}')
    ]
    assert AuthAuditAction.LOGIN_FAILED.value == "auth.login_failed"
