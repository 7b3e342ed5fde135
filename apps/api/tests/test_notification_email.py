"""Notification emails: through a real SMTP server, without PHI or attachment, sent exactly once."""

from __future__ import annotations

import re
import tempfile
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from apiserver import Account, add_account
from factories import add_paid_claims
from meritum_api.clock import ManualClock
from meritum_api.context import AuthContext
from meritum_api.db.cluster import fast_root
from meritum_api.deps import Deps, Role, build_deps
from meritum_api.domains.analytics import service as reports
from meritum_api.domains.analytics.generation import Outcome, generate_report
from meritum_api.domains.notifications import messages, service
from meritum_api.domains.notifications.outbox import SEND_EMAIL
from meritum_shared.constants.analytics import DeliveryMethod
from meritum_shared.constants.auth import PHYSICIAN_PERMISSIONS, Permission, UserRole
from meritum_shared.schemas.validation.analytics import AccountantExportRequest
from polling import wait_until
from smtpserver import Inbox, free_port, smtp_server
from workers import in_process_worker, worker_settings

PUBLIC_URL = "https://reports.meritum.example"
START = datetime(2026, 4, 3, 15, 30, tzinfo=UTC)
SUBJECT = "Your accountant summary for March 2026 is ready"
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def _deps(db_url: str, root: Path, **overrides: str) -> Deps:
    values = {"public_url": PUBLIC_URL, "email_backoff_seconds": "0", **overrides}
    settings = worker_settings(db_url, root / "reports", **values)
    return build_deps(settings, db_url, role=Role.COMMAND, clock=ManualClock(START))


@pytest.fixture
def root() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="meritum-mail-", dir=fast_root()) as path:
        yield Path(path)


def _choose(deps: Deps, who: Account, method: DeliveryMethod) -> None:
    with deps.session_factory.begin() as session:
        service.set_delivery_preference(
            deps=deps,
            session=session,
            ctx=AuthContext(who.provider_id, who.user_id),
            delivery_method=method,
        )


def _ready(deps: Deps, physician: Account) -> uuid.UUID:
    ctx = AuthContext(physician.provider_id, physician.user_id, PHYSICIAN_PERMISSIONS)
    with deps.session_factory.begin() as session:
        add_paid_claims(
            session, provider_id=ctx.provider_id, count=4, first_payment=date(2026, 3, 3), days=20
        )
        requested = reports.request_accountant_export(
            session=session,
            ctx=ctx,
            queue=deps.queue,
            request=AccountantExportRequest.model_validate(
                {"period_start": "2026-03-01", "period_end": "2026-03-31", "format": "csv"}
            ),
        )
    report_id = requested.report.report_id
    outcome = generate_report(deps=deps, report_id=report_id, is_final_attempt=lambda e: True)
    assert outcome is Outcome.READY
    return report_id


def _email_rows(
    engine: Engine, report_id: uuid.UUID
) -> dict[uuid.UUID, tuple[str, datetime | None]]:
    with engine.connect() as conn:
        rows = conn.execute(
            text("SELECT user_id, delivery, email_sent_at FROM notifications WHERE report_id = :r"),
            {"r": report_id},
        ).all()
    return {user_id: (delivery, sent) for user_id, delivery, sent in rows}


def _phns(engine: Engine, provider_id: uuid.UUID) -> list[str]:
    with engine.connect() as conn:
        return list(
            conn.execute(
                text("SELECT phn FROM patients WHERE provider_id = :p"), {"p": provider_id}
            ).scalars()
        )


def _email_jobs(engine: Engine) -> list[tuple[str, int]]:
    with engine.connect() as conn:
        rows = conn.execute(
            text("SELECT status, attempts FROM procrastinate_jobs WHERE task_name = :t"),
            {"t": SEND_EMAIL},
        ).all()
    return [(str(status), int(attempts)) for status, attempts in rows]


def _check_message(
    message: EmailMessage, raw: bytes, report_id: uuid.UUID, engine: Engine, phns: list[str]
) -> None:
    assert message["Subject"] == SUBJECT
    assert message["Message-ID"].strip().startswith("<notification.")
    assert message["List-Unsubscribe"] is None  # an on-demand report
    kinds = [part.get_content_type() for part in message.walk()]
    assert kinds == ["multipart/alternative", "text/plain", "text/html"]
    assert not any(part.get_content_disposition() == "attachment" for part in message.walk())
    assert list(message.iter_attachments()) == []
    link = f"{PUBLIC_URL}/reports/{report_id}"
    plain = message.get_body(("plain",))
    html = message.get_body(("html",))
    assert plain is not None
    assert html is not None
    assert link in plain.get_content()
    assert f'href="{link}"' in html.get_content()
    with engine.connect() as conn:
        expires = conn.execute(
            text("SELECT download_link_expires_at FROM generated_reports WHERE report_id = :r"),
            {"r": report_id},
        ).scalar_one()
    assert f"Its download link expires on {messages.local_time(expires)}." in plain.get_content()
    # No PHN: neither the provider's patients' numbers nor any 9-digit run
    # once the message's UUIDs (ids of the notification and the report) are set aside.
    # The parts are checked decoded too: quoted-printable may split a number in the raw bytes.
    for shown in (raw.decode(), plain.get_content(), html.get_content(), str(message["Subject"])):
        assert all(phn not in shown for phn in phns)
        assert re.search(r"(?<!\d)\d{9}(?!\d)", _UUID.sub("", shown)) is None


def test_an_email_reaches_the_smtp_server_once_without_phi(
    db_url: str, engine: Engine, root: Path
) -> None:
    inbox = Inbox()
    with smtp_server(inbox) as port:
        deps = _deps(db_url, root, smtp_url=f"smtp://127.0.0.1:{port}")
        try:
            physician = add_account(engine)
            both = add_account(
                engine,
                role=UserRole.DELEGATE,
                provider_id=physician.provider_id,
                permissions={Permission.REPORT_VIEW},
            )
            quiet = add_account(
                engine,
                role=UserRole.DELEGATE,
                provider_id=physician.provider_id,
                permissions={Permission.REPORT_VIEW},
            )
            _choose(deps, physician, DeliveryMethod.EMAIL)
            _choose(deps, both, DeliveryMethod.BOTH)
            report_id = _ready(deps, physician)
            assert inbox.count() == 0  # queued with the notification, sent by a worker
            with in_process_worker(db_url, deps, poll_seconds=0.2):
                wait_until(lambda: inbox.count() >= 2, timeout=30, what="two emails")
                wait_until(lambda: _email_jobs(engine) == [], timeout=30, what="jobs done")
            rows = _email_rows(engine, report_id)
            assert rows[physician.user_id] == ("EMAIL", START)
            assert rows[both.user_id] == ("BOTH", START)
            assert rows[quiet.user_id] == ("IN_APP", None)
            assert sorted(to for tos, _ in inbox.received for to in tos) == sorted(
                [physician.email, both.email]
            )
            phns = _phns(engine, physician.provider_id)
            assert phns
            for (_, raw), message in zip(inbox.received, inbox.messages(), strict=True):
                _check_message(message, raw, report_id, engine, phns)
            # Sending again, as a duplicate job would, finds the time recorded and sends nothing.
            with engine.connect() as conn:
                ids = (
                    conn.execute(
                        text("SELECT notification_id FROM notifications WHERE report_id = :r"),
                        {"r": report_id},
                    )
                    .scalars()
                    .all()
                )
            assert not any(service.send_email(deps=deps, notification_id=i) for i in ids)
            assert inbox.count() == 2
        finally:
            deps.close()


def test_smtp_down_is_retried_and_delivered_once_it_is_back(
    db_url: str, engine: Engine, root: Path
) -> None:
    port = free_port()  # nothing listens here yet: the server is down
    deps = _deps(
        db_url,
        root,
        smtp_url=f"smtp://127.0.0.1:{port}",
        smtp_timeout_seconds="2",
        email_retries="30",
        email_backoff_seconds="1",  # 1 s between attempts
    )
    inbox = Inbox()
    try:
        physician = add_account(engine)
        _choose(deps, physician, DeliveryMethod.EMAIL)
        report_id = _ready(deps, physician)
        with in_process_worker(db_url, deps, poll_seconds=0.2):
            wait_until(
                lambda: any(attempts >= 2 for _, attempts in _email_jobs(engine)),
                timeout=60,
                what="the email job to fail and be retried",
            )
            assert inbox.count() == 0
            assert _email_rows(engine, report_id)[physician.user_id][1] is None
            with smtp_server(inbox, port):
                wait_until(lambda: inbox.count() >= 1, timeout=60, what="the email")
                wait_until(lambda: _email_jobs(engine) == [], timeout=30, what="the job done")
                # A second job for the same notification (a duplicate) sends nothing.
                with deps.session_factory.begin() as session:
                    notification_id = session.execute(
                        text("SELECT notification_id FROM notifications WHERE report_id = :r"),
                        {"r": report_id},
                    ).scalar_one()
                    connection = session.connection().connection.driver_connection
                    job = (
                        deps.queue.tasks[SEND_EMAIL]
                        .configure()
                        .make_new_job(notification_id=str(notification_id))
                    )
                    deps.queue.job_manager.defer_job(job, connection=connection)
                wait_until(lambda: _email_jobs(engine) == [], timeout=30, what="the duplicate")
        assert inbox.count() == 1
        assert inbox.messages()[0]["To"] == physician.email
        assert _email_rows(engine, report_id)[physician.user_id] == ("EMAIL", START)
    finally:
        deps.close()


def test_without_smtp_messages_are_written_as_eml_files(
    db_url: str, engine: Engine, root: Path
) -> None:
    deps = _deps(db_url, root)
    try:
        physician = add_account(engine)
        _choose(deps, physician, DeliveryMethod.BOTH)
        report_id = _ready(deps, physician)
        notification_id = _only_notification(engine, report_id)
        assert service.send_email(deps=deps, notification_id=notification_id)
        assert not service.send_email(deps=deps, notification_id=notification_id)
        files = sorted((root / "mail").glob("*.eml"))
        assert [f.name for f in files] == [f"notification.{notification_id}@meritum.reports.eml"]
        raw = files[0].read_bytes()
        message = message_from_bytes(raw, policy=policy.default)
        assert isinstance(message, EmailMessage)
        _check_message(message, raw, report_id, engine, _phns(engine, physician.provider_id))
    finally:
        deps.close()


def _only_notification(engine: Engine, report_id: uuid.UUID) -> uuid.UUID:
    with engine.connect() as conn:
        found: uuid.UUID = conn.execute(
            text("SELECT notification_id FROM notifications WHERE report_id = :r"),
            {"r": report_id},
        ).scalar_one()
    return found
