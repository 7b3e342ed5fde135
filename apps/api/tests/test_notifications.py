"""Notifications are written with the status change that causes them, to the right people, once."""

from __future__ import annotations

import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy
from sqlalchemy import Engine, insert, text

from apiserver import Account, add_account
from factories import add_paid_claims, report_values
from meritum_api.clock import ManualClock
from meritum_api.context import AuthContext
from meritum_api.db.cluster import fast_root
from meritum_api.deps import Deps, Role, build_deps
from meritum_api.domains.analytics import repository as report_repository
from meritum_api.domains.analytics import service as reports
from meritum_api.domains.analytics.generation import Outcome, generate_report
from meritum_api.domains.analytics.generators import GenerationRequest
from meritum_api.domains.analytics.schemas import ReportView
from meritum_api.domains.notifications import service
from meritum_api.domains.notifications.outbox import SEND_EMAIL
from meritum_api.domains.notifications.service import notify_settled
from meritum_shared.constants.analytics import (
    DeliveryMethod,
    ReportFormat,
    ReportStatus,
    ReportType,
)
from meritum_shared.constants.auth import PHYSICIAN_PERMISSIONS, Permission, UserRole
from meritum_shared.schemas.db import generated_reports
from meritum_shared.schemas.validation.analytics import AccountantExportRequest
from workers import worker_settings

START = datetime(2026, 4, 1, 15, 0, tzinfo=UTC)


class Refused(Exception):
    """An effect after the notifications refused the ready status."""


@dataclass(frozen=True)
class Team:
    physician: Account
    viewer: Account  # a delegate holding REPORT_VIEW
    exporter_only: Account  # a delegate holding REPORT_EXPORT but not REPORT_VIEW
    data_exporter: Account  # a delegate holding DATA_EXPORT only
    stranger: Account  # another physician

    def ctx(self, who: Account, permissions: set[Permission] | None = None) -> AuthContext:
        held = PHYSICIAN_PERMISSIONS if permissions is None else frozenset(permissions)
        return AuthContext(provider_id=who.provider_id, user_id=who.user_id, permissions=held)


@pytest.fixture(scope="module")
def clock() -> ManualClock:
    return ManualClock(START)


@pytest.fixture(scope="module")
def deps(db_url: str, clock: ManualClock) -> Iterator[Deps]:
    with tempfile.TemporaryDirectory(prefix="meritum-notify-", dir=fast_root()) as path:
        built = build_deps(
            worker_settings(db_url, Path(path) / "reports"), db_url, role=Role.COMMAND, clock=clock
        )
        yield built
        built.close()


def _team(engine: Engine) -> Team:
    physician = add_account(engine)
    pid = physician.provider_id

    def delegate(*permissions: Permission) -> Account:
        return add_account(
            engine, role=UserRole.DELEGATE, provider_id=pid, permissions=set(permissions)
        )

    return Team(
        physician=physician,
        viewer=delegate(Permission.REPORT_VIEW, Permission.REPORT_EXPORT),
        exporter_only=delegate(Permission.REPORT_EXPORT),
        data_exporter=delegate(Permission.DATA_EXPORT),
        stranger=add_account(engine),
    )


def _request(deps: Deps, ctx: AuthContext) -> uuid.UUID:
    with deps.session_factory.begin() as session:
        add_paid_claims(
            session, provider_id=ctx.provider_id, count=3, first_payment=date(2026, 3, 2), days=20
        )
        requested = reports.request_accountant_export(
            session=session,
            ctx=ctx,
            queue=deps.queue,
            request=AccountantExportRequest.model_validate(
                {"period_start": "2026-03-01", "period_end": "2026-03-31", "format": "csv"}
            ),
        )
    return requested.report.report_id


def _notices(engine: Engine, report_id: uuid.UUID) -> dict[uuid.UUID, list[str]]:
    with engine.connect() as conn:
        rows = conn.execute(
            text("SELECT user_id, event FROM notifications WHERE report_id = :r ORDER BY event"),
            {"r": report_id},
        ).all()
    found: dict[uuid.UUID, list[str]] = {}
    for user_id, event in rows:
        found.setdefault(user_id, []).append(event)
    return found


def _events(engine: Engine, report_id: uuid.UUID) -> list[str]:
    return [event for events in _notices(engine, report_id).values() for event in events]


def _generate(deps: Deps, report_id: uuid.UUID) -> Outcome:
    return generate_report(deps=deps, report_id=report_id, is_final_attempt=lambda exc: True)


def test_ready_notifies_the_physician_and_each_delegate_allowed_to_view(
    deps: Deps, engine: Engine
) -> None:
    team = _team(engine)
    report_id = _request(deps, team.ctx(team.viewer, {Permission.REPORT_EXPORT}))
    assert _notices(engine, report_id) == {}  # nothing before it settles
    assert _generate(deps, report_id) is Outcome.READY
    assert _notices(engine, report_id) == {
        team.physician.user_id: ["REPORT_READY"],
        team.viewer.user_id: ["REPORT_READY"],
    }
    # The delegate without REPORT_VIEW, the one with DATA_EXPORT only and the
    # other physician are absent from the mapping above.
    with engine.connect() as conn:
        created = conn.execute(
            text("SELECT DISTINCT created_at FROM notifications WHERE report_id = :r"),
            {"r": report_id},
        ).scalar_one()
    assert created == START  # written at the clock's instant, in the settling transaction


def test_a_rolled_back_ready_leaves_no_notification_and_no_email_job(
    deps: Deps, engine: Engine
) -> None:
    team = _team(engine)
    with deps.session_factory.begin() as session:
        service.set_delivery_preference(
            deps=deps,
            session=session,
            ctx=team.ctx(team.physician),
            delivery_method=DeliveryMethod.EMAIL,
        )
    report_id = _request(deps, team.ctx(team.physician))

    def refuse_ready(d: Deps, session: sqlalchemy.orm.Session, report: ReportView) -> None:
        if report.status is ReportStatus.READY:
            raise Refused

    outcome = generate_report(
        deps=deps.replace(settle_effects=(notify_settled, refuse_ready)),
        report_id=report_id,
        is_final_attempt=lambda exc: isinstance(exc, Refused),
    )
    # The ready notices rolled back with the ready status; the failure that
    # followed committed with its own notice, to the physician who asked.
    assert outcome is Outcome.FAILED
    assert _notices(engine, report_id) == {team.physician.user_id: ["REPORT_FAILED"]}
    # The outbox rolled back with them: the only email job is the failure notice's.
    with engine.connect() as conn:
        failed_notice = conn.execute(
            text("SELECT notification_id::text FROM notifications WHERE report_id = :r"),
            {"r": report_id},
        ).scalar_one()
        jobs = (
            conn.execute(
                text(
                    "SELECT args ->> 'notification_id' FROM procrastinate_jobs "
                    "WHERE task_name = :t AND args ->> 'notification_id' IN ("
                    "  SELECT notification_id::text FROM notifications WHERE user_id = :u)"
                ),
                {"t": SEND_EMAIL, "u": team.physician.user_id},
            )
            .scalars()
            .all()
        )
    assert jobs == [failed_notice]


def _broken(conn: sqlalchemy.Connection, request: GenerationRequest) -> Iterator[bytes]:
    yield b"half a file"
    raise RuntimeError("the generator broke")


def test_failure_notifies_only_the_delegate_who_asked_once(deps: Deps, engine: Engine) -> None:
    team = _team(engine)
    report_id = _request(deps, team.ctx(team.viewer, {Permission.REPORT_EXPORT}))
    broken = deps.replace(generators=lambda t, f: _broken)
    assert _generate(broken, report_id) is Outcome.FAILED
    assert _notices(engine, report_id) == {team.viewer.user_id: ["REPORT_FAILED"]}
    # Settling the same report again (a duplicate delivery) tells no one twice.
    with deps.session_factory.begin() as session:
        ctx = team.ctx(team.physician)
        failed = report_repository.get_report(session=session, ctx=ctx, report_id=report_id)
        assert failed is not None
        notify_settled(deps, session, failed)
    assert _notices(engine, report_id) == {team.viewer.user_id: ["REPORT_FAILED"]}


def _portability(deps: Deps, team: Team) -> uuid.UUID:
    with deps.session_factory.begin() as session:
        report_id: uuid.UUID = session.execute(
            insert(generated_reports)
            .values(
                **report_values(
                    team.physician.provider_id,
                    report_type=ReportType.DATA_PORTABILITY,
                    format=ReportFormat.ZIP,
                    period_start=None,
                    period_end=None,
                )
            )
            .returning(generated_reports.c.report_id)
        ).scalar_one()
    return report_id


def _zip(conn: sqlalchemy.Connection, request: GenerationRequest) -> Iterator[bytes]:
    yield b"PK\x05\x06" + bytes(18)  # an empty ZIP archive


def test_data_export_ready_notifies_holders_of_data_export(deps: Deps, engine: Engine) -> None:
    team = _team(engine)
    report_id = _portability(deps, team)
    assert _generate(deps.replace(generators=lambda t, f: _zip), report_id) is Outcome.READY
    assert _notices(engine, report_id) == {
        team.physician.user_id: ["DATA_EXPORT_READY"],
        team.data_exporter.user_id: ["DATA_EXPORT_READY"],
    }


def _expire_in(engine: Engine, report_id: uuid.UUID, at: datetime) -> None:
    with engine.begin() as conn:
        conn.execute(
            text(
                "UPDATE generated_reports SET download_link_expires_at = :at WHERE report_id = :r"
            ),
            {"at": at, "r": report_id},
        )


def _remind(deps: Deps) -> int:
    with deps.session_factory.begin() as session:
        return service.remind_expiring(deps=deps, session=session)


def test_expiring_reports_are_recalled_once_to_those_allowed(
    deps: Deps, engine: Engine, clock: ManualClock
) -> None:
    team = _team(engine)
    report_id = _request(deps, team.ctx(team.physician))
    assert _generate(deps, report_id) is Outcome.READY
    portability = _portability(deps, team)
    assert _generate(deps.replace(generators=lambda t, f: _zip), portability) is Outcome.READY
    now = clock.now()
    # Four days left for the report, two for the export: neither is due yet.
    _expire_in(engine, report_id, now + timedelta(days=4))
    _expire_in(engine, portability, now + timedelta(days=2))
    _remind(deps)
    assert "REPORT_EXPIRING" not in _events(engine, report_id)
    assert "REPORT_EXPIRING" not in _events(engine, portability)

    clock.advance(timedelta(days=1, hours=1))  # 2 d 23 h left; the export 23 h
    _remind(deps)
    _remind(deps)  # the task running twice tells no one twice
    report_notices = _notices(engine, report_id)
    assert report_notices[team.physician.user_id] == ["REPORT_EXPIRING", "REPORT_READY"]
    assert report_notices[team.viewer.user_id] == ["REPORT_EXPIRING", "REPORT_READY"]
    assert set(report_notices) == {team.physician.user_id, team.viewer.user_id}
    export_notices = _notices(engine, portability)
    assert set(export_notices) == {team.physician.user_id, team.data_exporter.user_id}
    assert all(events.count("REPORT_EXPIRING") == 1 for events in export_notices.values())


def test_downloaded_or_expired_reports_are_not_recalled(
    deps: Deps, engine: Engine, clock: ManualClock
) -> None:
    team = _team(engine)
    downloaded = _request(deps, team.ctx(team.physician))
    gone = _request(deps, team.ctx(team.physician))
    for report_id in (downloaded, gone):
        assert _generate(deps, report_id) is Outcome.READY
    now = clock.now()
    _expire_in(engine, downloaded, now + timedelta(days=1))
    _expire_in(engine, gone, now - timedelta(minutes=1))
    with deps.session_factory.begin() as session:
        report_repository.mark_downloaded(
            session=session, ctx=team.ctx(team.physician), report_id=downloaded
        )
    _remind(deps)
    for report_id in (downloaded, gone):
        assert "REPORT_EXPIRING" not in _events(engine, report_id)


def test_the_event_check_refuses_an_unknown_event(deps: Deps, engine: Engine) -> None:
    team = _team(engine)
    report_id = _request(deps, team.ctx(team.physician))
    with (
        pytest.raises(sqlalchemy.exc.IntegrityError, match="ck_notifications_event_valid"),
        engine.begin() as conn,
    ):
        conn.execute(
            text(
                "INSERT INTO notifications (user_id, provider_id, event, report_id) "
                "VALUES (:u, :p, 'REPORT_SHREDDED', :r)"
            ),
            {"u": team.physician.user_id, "p": team.physician.provider_id, "r": report_id},
        )
