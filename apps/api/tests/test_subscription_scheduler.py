"""The scheduler produces each subscription's periods exactly once, in order, catching up.

Real PostgreSQL, a clock the tests move, concurrent schedulers on separate
connections; the worker-process tests are in test_subscription_workers.py.
"""

from __future__ import annotations

import tempfile
import threading
import uuid
from collections.abc import Iterator, Sequence
from datetime import UTC, date, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path

import pytest
import sqlalchemy
from sqlalchemy import Engine, text

from apiserver import Account, add_account
from factories import add_provider
from meritum_api.calendar import ALBERTA, local_date
from meritum_api.clock import ManualClock
from meritum_api.context import AuthContext
from meritum_api.db.cluster import fast_root
from meritum_api.deps import Deps, Role, build_deps
from meritum_api.domains.analytics.generation import Outcome, generate_report
from meritum_api.domains.analytics.generators import GenerationRequest
from meritum_api.domains.analytics.jobs import GENERATE
from meritum_api.domains.analytics.keys import storage_key
from meritum_api.domains.notifications import service as notifications
from meritum_api.domains.notifications.outbox import SEND_EMAIL
from meritum_api.domains.subscriptions import service
from meritum_api.domains.subscriptions.scheduler import SchedulerResult, run_due
from meritum_shared.constants.analytics import (
    DeliveryMethod,
    ReportType,
    SubscriptionFrequency,
)
from meritum_shared.constants.auth import Permission, UserRole
from meritum_shared.schemas.validation.subscriptions import SubscriptionCreate, SubscriptionUpdate
from polling import wait_until
from smtpserver import Inbox, smtp_server
from workers import in_process_worker, worker_settings

#: Wednesday 1 April 2026, 09:00 in Edmonton (MDT): past that day's 06:00 run.
START = datetime(2026, 4, 1, 15, 0, tzinfo=UTC)
PUBLIC_URL = "https://reports.meritum.example"


@pytest.fixture(scope="module")
def root() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="meritum-sched-", dir=fast_root()) as path:
        yield Path(path)


def _deps(db_url: str, root: Path, clock: ManualClock, **overrides: str) -> Deps:
    settings = worker_settings(db_url, root / "reports", public_url=PUBLIC_URL, **overrides)
    return build_deps(settings, db_url, role=Role.COMMAND, clock=clock)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(START)


@pytest.fixture
def deps(db_url: str, root: Path, clock: ManualClock) -> Iterator[Deps]:
    built = _deps(db_url, root, clock)
    yield built
    built.close()


@pytest.fixture(autouse=True)
def _alone(engine: Engine) -> None:
    """Each test's clock starts over: earlier tests' subscriptions would be due again,
    and their reports' jobs would be ahead of this test's in the queue."""
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM report_subscriptions"))
        conn.execute(text("DELETE FROM procrastinate_jobs WHERE status = 'todo'"))


def _subscribe(
    deps: Deps,
    provider_id: uuid.UUID,
    report_type: ReportType,
    frequency: SubscriptionFrequency,
    delivery: DeliveryMethod = DeliveryMethod.IN_APP,
) -> uuid.UUID:
    with deps.session_factory.begin() as session:
        created = service.create_subscription(
            deps=deps,
            session=session,
            ctx=AuthContext(provider_id=provider_id),
            request=SubscriptionCreate(
                report_type=report_type, frequency=frequency, delivery_method=delivery
            ),
        )
    return created.subscription_id


def _providers(engine: Engine, count: int) -> list[uuid.UUID]:
    with sqlalchemy.orm.Session(engine) as session, session.begin():
        return [add_provider(session) for _ in range(count)]


def _reject(engine: Engine, provider_id: uuid.UUID, at: datetime) -> None:
    """A claim of the provider moved to REJECTED at the instant ``at``."""
    with engine.begin() as conn:
        patient = conn.execute(
            text(
                "INSERT INTO patients (provider_id, phn, first_name, last_name, date_of_birth) "
                "VALUES (:p, lpad((floor(random() * 1e9))::bigint::text, 9, '0'), 'Zoë', 'Roy', "
                "DATE '1970-01-01') RETURNING patient_id"
            ),
            {"p": provider_id},
        ).scalar_one()
        claim = conn.execute(
            text(
                "INSERT INTO claims (provider_id, patient_id, claim_type, state, date_of_service, "
                "hsc_code, modifiers, submitted_fee, ba_number, location) VALUES "
                "(:p, :patient, 'AHCIP', 'REJECTED', DATE '2026-03-01', '03.03A', '', 41.73, "
                "'12345', 'Clinic') RETURNING claim_id"
            ),
            {"p": provider_id, "patient": patient},
        ).scalar_one()
        conn.execute(
            text(
                "INSERT INTO claim_audit_history (claim_id, provider_id, occurred_at, action, "
                "from_state, to_state, actor) VALUES "
                "(:c, :p, :at, 'STATE_CHANGED', 'SUBMITTED', 'REJECTED', 'system:assessment')"
            ),
            {"c": claim, "p": provider_id, "at": at},
        )


def _runs(engine: Engine, subscription_id: uuid.UUID) -> list[tuple[date, date, str, bool]]:
    with engine.connect() as conn:
        return [
            (row.period_start, row.period_end, row.outcome, row.report_id is not None)
            for row in conn.execute(
                text(
                    "SELECT period_start, period_end, outcome, report_id FROM subscription_runs "
                    "WHERE subscription_id = :s ORDER BY period_start"
                ),
                {"s": subscription_id},
            )
        ]


def _reports_in_job_order(engine: Engine, provider_id: uuid.UUID) -> list[tuple[date, date]]:
    """The provider's scheduled reports' periods, in the order their jobs were queued."""
    with engine.connect() as conn:
        return [
            (row.period_start, row.period_end)
            for row in conn.execute(
                text(
                    "SELECT r.period_start, r.period_end FROM generated_reports r "
                    "JOIN procrastinate_jobs j ON j.args->>'report_id' = r.report_id::text "
                    "WHERE r.provider_id = :p AND r.scheduled AND j.task_name = :t ORDER BY j.id"
                ),
                {"p": provider_id, "t": GENERATE},
            )
        ]


def _next_run_at(engine: Engine, subscription_id: uuid.UUID) -> tuple[datetime, datetime | None]:
    with engine.connect() as conn:
        row = conn.execute(
            text(
                "SELECT next_run_at, last_run_at FROM report_subscriptions "
                "WHERE subscription_id = :s"
            ),
            {"s": subscription_id},
        ).one()
    return row.next_run_at, row.last_run_at


def _days(first: date, count: int) -> list[tuple[date, date]]:
    return [(first + timedelta(days=n), first + timedelta(days=n)) for n in range(count)]


def test_a_three_day_outage_produces_each_missed_day_once_in_order(
    deps: Deps, clock: ManualClock, engine: Engine
) -> None:
    (provider,) = _providers(engine, 1)
    digest = _subscribe(deps, provider, ReportType.REJECTION_DIGEST, SubscriptionFrequency.DAILY)
    timing = _subscribe(deps, provider, ReportType.WCB_TIMING, SubscriptionFrequency.DAILY)
    # A rejection on each of 1, 2 and 3 April (Edmonton days).
    for day in (1, 2, 3):
        _reject(engine, provider, datetime(2026, 4, day, 18, 0, tzinfo=UTC))
    clock.advance(timedelta(days=3))  # Saturday 4 April, 09:00: runs of 2, 3, 4 April missed
    result = run_due(deps=deps)
    assert result == SchedulerResult(subscriptions=2, generated=6)
    assert _runs(engine, digest) == [
        (start, end, "generated", True) for start, end in _days(date(2026, 4, 1), 3)
    ]
    assert _runs(engine, timing) == [
        (start, start + timedelta(days=7), "generated", True)
        for start, _ in _days(date(2026, 4, 2), 3)
    ]
    queued = _reports_in_job_order(engine, provider)
    assert [p for p in queued if p[0] == p[1]] == _days(date(2026, 4, 1), 3)  # oldest first
    next_at, last_at = _next_run_at(engine, digest)
    assert next_at == datetime(2026, 4, 5, 12, 0, tzinfo=UTC)  # Sunday 06:00 MDT
    assert last_at == datetime(2026, 4, 4, 12, 0, tzinfo=UTC)
    # Nothing more is due: a second run does nothing.
    assert run_due(deps=deps) == SchedulerResult()
    with engine.connect() as conn:
        row = conn.execute(
            text(
                "SELECT scheduled, format, status, download_link_expires_at - created_at AS link "
                "FROM generated_reports WHERE provider_id = :p LIMIT 1"
            ),
            {"p": provider},
        ).one()
    assert (row.scheduled, row.format, row.status, row.link) == (
        True,
        "PDF",
        "pending",
        timedelta(days=90),
    )


def test_more_than_seven_missed_runs_produce_only_the_last_seven(
    deps: Deps, clock: ManualClock, engine: Engine
) -> None:
    (provider,) = _providers(engine, 1)
    daily = _subscribe(deps, provider, ReportType.WCB_TIMING, SubscriptionFrequency.DAILY)
    weekly = _subscribe(deps, provider, ReportType.WEEKLY_SUMMARY, SubscriptionFrequency.WEEKLY)
    clock.advance(timedelta(days=70))  # Wednesday 10 June: 70 daily and 10 weekly runs missed
    result = run_due(deps=deps)
    assert result == SchedulerResult(subscriptions=2, generated=14)
    daily_runs = _runs(engine, daily)
    assert [r[0] for r in daily_runs] == [date(2026, 6, 4) + timedelta(days=n) for n in range(7)]
    weekly_runs = _runs(engine, weekly)
    # Each Monday's run covers the previous Monday to Sunday; the last is 8 June's.
    assert [(r[0], r[1]) for r in weekly_runs] == [
        (date(2026, 4, 20) + timedelta(weeks=n), date(2026, 4, 26) + timedelta(weeks=n))
        for n in range(7)
    ]


def test_an_empty_rejection_digest_is_recorded_skipped_and_produces_nothing(
    deps: Deps, clock: ManualClock, engine: Engine
) -> None:
    (provider,) = _providers(engine, 1)
    physician = add_account(engine, provider_id=provider)
    digest = _subscribe(
        deps,
        provider,
        ReportType.REJECTION_DIGEST,
        SubscriptionFrequency.DAILY,
        DeliveryMethod.BOTH,
    )
    # Rejected at 23:30 on 2 April in Edmonton (05:30 on 3 April in UTC): a 2 April rejection,
    # and the only one. The runs of 3 and 4 April cover 2 and 3 April.
    _reject(engine, provider, datetime(2026, 4, 3, 5, 30, tzinfo=UTC))
    clock.advance(timedelta(days=2))  # Friday 3 April, 09:00
    assert run_due(deps=deps) == SchedulerResult(subscriptions=1, generated=1, skipped_empty=1)
    assert _runs(engine, digest) == [
        (date(2026, 4, 1), date(2026, 4, 1), "skipped_empty", False),
        (date(2026, 4, 2), date(2026, 4, 2), "generated", True),
    ]
    clock.advance(timedelta(days=1))
    assert run_due(deps=deps) == SchedulerResult(subscriptions=1, skipped_empty=1)
    with engine.connect() as conn:
        reports = conn.execute(
            text("SELECT period_start FROM generated_reports WHERE provider_id = :p"),
            {"p": provider},
        ).scalars()
        assert list(reports) == [date(2026, 4, 2)]
        notices = conn.execute(
            text("SELECT count(*) FROM notifications WHERE user_id = :u"),
            {"u": physician.user_id},
        ).scalar_one()
        assert notices == 0


def test_next_run_moved_back_never_produces_a_period_twice(
    deps: Deps, clock: ManualClock, engine: Engine
) -> None:
    (provider,) = _providers(engine, 1)
    sid = _subscribe(deps, provider, ReportType.WCB_TIMING, SubscriptionFrequency.DAILY)
    clock.advance(timedelta(days=2))
    assert run_due(deps=deps).generated == 2
    # As a stale writer (a clock running behind) could leave it: due again for both periods.
    with engine.begin() as conn:
        conn.execute(
            text(
                "UPDATE report_subscriptions SET next_run_at = next_run_at - interval '2 days' "
                "WHERE subscription_id = :s"
            ),
            {"s": sid},
        )
    again = run_due(deps=deps)
    assert again == SchedulerResult(subscriptions=1, already_recorded=2)
    assert len(_runs(engine, sid)) == 2
    assert len(_reports_in_job_order(engine, provider)) == 2
    assert _next_run_at(engine, sid)[0] > clock.now()


def test_paused_subscriptions_are_not_run_and_resume_without_catching_up(
    deps: Deps, clock: ManualClock, engine: Engine
) -> None:
    (provider,) = _providers(engine, 1)
    ctx = AuthContext(provider_id=provider)
    sid = _subscribe(deps, provider, ReportType.WCB_TIMING, SubscriptionFrequency.DAILY)

    def update(**values: object) -> None:
        with deps.session_factory.begin() as session:
            service.update_subscription(
                deps=deps,
                session=session,
                ctx=ctx,
                subscription_id=sid,
                request=SubscriptionUpdate.model_validate(values),
            )

    update(is_active=False)
    clock.advance(timedelta(days=5))
    assert run_due(deps=deps) == SchedulerResult()
    update(is_active=True)
    assert run_due(deps=deps) == SchedulerResult()  # the pause is not made up
    clock.advance(timedelta(days=1))
    assert run_due(deps=deps) == SchedulerResult(subscriptions=1, generated=1)
    assert [r[0] for r in _runs(engine, sid)] == [local_date(clock.now())]


def _race(deps: Deps, schedulers: int) -> list[SchedulerResult]:
    """Run ``schedulers`` scheduler loops at once, each on its own connection."""
    barrier = threading.Barrier(schedulers)
    results: list[SchedulerResult] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def one() -> None:
        try:
            barrier.wait(timeout=30)
            result = run_due(deps=deps)
            with lock:
                results.append(result)
        except BaseException as exc:  # surfaced below
            with lock:
                errors.append(exc)

    threads = [threading.Thread(target=one) for _ in range(schedulers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    assert not errors, errors
    return results


def _duplicates_and_totals(engine: Engine, providers: Sequence[uuid.UUID]) -> tuple[int, int, int]:
    """(periods produced more than once, scheduled reports, runs with a report) for providers."""
    with engine.connect() as conn:
        doubled = conn.execute(
            text(
                "SELECT count(*) FROM (SELECT 1 FROM generated_reports WHERE scheduled "
                "AND provider_id = ANY (:p) GROUP BY provider_id, report_type, period_start, "
                "period_end HAVING count(*) > 1) d"
            ),
            {"p": list(providers)},
        ).scalar_one()
        reports = conn.execute(
            text(
                "SELECT count(*) FROM generated_reports r "
                "WHERE scheduled AND provider_id = ANY (:p) AND EXISTS (SELECT 1 "
                "FROM procrastinate_jobs j WHERE j.task_name = :t "
                "AND j.args->>'report_id' = r.report_id::text)"
            ),
            {"p": list(providers), "t": GENERATE},
        ).scalar_one()
        runs = conn.execute(
            text(
                "SELECT count(*) FROM subscription_runs sr JOIN report_subscriptions s "
                "USING (subscription_id) JOIN generated_reports r USING (report_id) "
                "WHERE s.provider_id = ANY (:p) AND r.provider_id = s.provider_id "
                "AND r.period_start = sr.period_start AND r.period_end = sr.period_end"
            ),
            {"p": list(providers)},
        ).scalar_one()
    return int(doubled), int(reports), int(runs)


def test_concurrent_schedulers_over_500_due_subscriptions_produce_each_period_once(
    deps: Deps, clock: ManualClock, engine: Engine
) -> None:
    providers = _providers(engine, 500)
    for provider in providers:
        _subscribe(deps, provider, ReportType.WCB_TIMING, SubscriptionFrequency.DAILY)
    clock.advance(timedelta(days=3))  # three runs due for each
    results = _race(deps, schedulers=4)
    assert sum(r.subscriptions for r in results) == 500
    assert sum(r.generated for r in results) == 1500
    assert sum(r.already_recorded + r.failed for r in results) == 0
    assert sum(1 for r in results if r.subscriptions) >= 2, "the schedulers did not share the work"
    assert _duplicates_and_totals(engine, providers) == (0, 1500, 1500)
    # Nothing is due any more, and another race finds nothing.
    assert sum(r.subscriptions for r in _race(deps, schedulers=2)) == 0
    with engine.connect() as conn:
        pending = conn.execute(
            text(
                "SELECT count(*) FROM report_subscriptions WHERE provider_id = ANY (:p) "
                "AND next_run_at <= :now"
            ),
            {"p": providers, "now": clock.now()},
        ).scalar_one()
    assert pending == 0


def test_a_failing_subscription_is_left_due_and_the_others_go_on(
    deps: Deps, clock: ManualClock, engine: Engine
) -> None:
    good, bad = _providers(engine, 2)
    kept = _subscribe(deps, good, ReportType.WCB_TIMING, SubscriptionFrequency.DAILY)
    broken = _subscribe(deps, bad, ReportType.REJECTION_DIGEST, SubscriptionFrequency.DAILY)
    clock.advance(timedelta(days=1))
    # The digest's question fails inside its transaction: the claim history is unreadable
    # to the role the scheduler runs as here.
    with engine.begin() as conn:
        conn.execute(text("CREATE ROLE sched_probe NOLOGIN"))
        conn.execute(text("GRANT ALL ON ALL TABLES IN SCHEMA public TO sched_probe"))
        conn.execute(text("GRANT ALL ON ALL SEQUENCES IN SCHEMA public TO sched_probe"))
        conn.execute(text("REVOKE SELECT ON claim_audit_history FROM sched_probe"))
    probe = deps.replace(session_factory=_as_role(deps, "sched_probe"))
    try:
        result = run_due(deps=probe)
    finally:
        with engine.begin() as conn:
            conn.execute(text("DROP OWNED BY sched_probe"))
            conn.execute(text("DROP ROLE sched_probe"))
    assert result == SchedulerResult(subscriptions=1, generated=1, failed=1)
    assert len(_runs(engine, kept)) == 1
    assert _runs(engine, broken) == []
    assert _next_run_at(engine, broken)[0] <= clock.now()  # still due
    assert run_due(deps=deps) == SchedulerResult(subscriptions=1, skipped_empty=1)


def _as_role(deps: Deps, role: str) -> sqlalchemy.orm.sessionmaker[sqlalchemy.orm.Session]:
    engine = sqlalchemy.create_engine(deps.url, poolclass=sqlalchemy.pool.NullPool)

    @sqlalchemy.event.listens_for(engine, "connect")
    def _set_role(dbapi_connection: object, record: object) -> None:
        with dbapi_connection.cursor() as cur:  # type: ignore[attr-defined]
            cur.execute(f"SET ROLE {role}")
        dbapi_connection.commit()  # type: ignore[attr-defined]

    return sqlalchemy.orm.sessionmaker(engine, expire_on_commit=False)


# --- delivery of scheduled reports -----------------------------------------------------


def _pdf(conn: sqlalchemy.Connection, request: GenerationRequest) -> Iterator[bytes]:
    # The scheduled kinds' generators are their own modules; delivery needs only a file.
    yield b"%PDF-1.7 scheduled " + str(request.period_start).encode()


def _fails(conn: sqlalchemy.Connection, request: GenerationRequest) -> Iterator[bytes]:
    yield b"%PDF-1.7 half"
    raise RuntimeError("generation broke")


def _notices(engine: Engine, report_id: uuid.UUID) -> dict[uuid.UUID, tuple[str, str]]:
    with engine.connect() as conn:
        rows = conn.execute(
            text("SELECT user_id, event, delivery FROM notifications WHERE report_id = :r"),
            {"r": report_id},
        ).all()
    return {row.user_id: (row.event, row.delivery) for row in rows}


def _report_of(engine: Engine, subscription_id: uuid.UUID) -> uuid.UUID:
    with engine.connect() as conn:
        report_id: uuid.UUID = conn.execute(
            text("SELECT report_id FROM subscription_runs WHERE subscription_id = :s"),
            {"s": subscription_id},
        ).scalar_one()
    return report_id


def _email_jobs(engine: Engine, ids: Sequence[uuid.UUID]) -> int:
    with engine.connect() as conn:
        count: int = conn.execute(
            text(
                "SELECT count(*) FROM procrastinate_jobs WHERE task_name = :t "
                "AND args->>'notification_id' = ANY (:ids)"
            ),
            {"t": SEND_EMAIL, "ids": [str(i) for i in ids]},
        ).scalar_one()
    return count


def _team(engine: Engine) -> tuple[Account, Account, Account]:
    physician = add_account(engine)
    viewer = add_account(
        engine,
        role=UserRole.DELEGATE,
        provider_id=physician.provider_id,
        permissions={Permission.REPORT_VIEW},
    )
    exporter = add_account(
        engine,
        role=UserRole.DELEGATE,
        provider_id=physician.provider_id,
        permissions={Permission.REPORT_EXPORT},
    )
    return physician, viewer, exporter


def test_a_scheduled_report_is_delivered_as_its_subscription_says(
    db_url: str, root: Path, clock: ManualClock, engine: Engine
) -> None:
    inbox = Inbox()
    with smtp_server(inbox) as port:
        deps = _deps(db_url, root, clock, smtp_url=f"smtp://127.0.0.1:{port}")
        try:
            physician, viewer, _ = _team(engine)
            # Their own preferences (for on-demand reports) say otherwise.
            for who in (physician, viewer):
                with deps.session_factory.begin() as session:
                    notifications.set_delivery_preference(
                        deps=deps,
                        session=session,
                        ctx=AuthContext(who.provider_id, who.user_id),
                        delivery_method=DeliveryMethod.IN_APP,
                    )
            sid = _subscribe(
                deps,
                physician.provider_id,
                ReportType.WCB_TIMING,
                SubscriptionFrequency.DAILY,
                DeliveryMethod.EMAIL,
            )
            clock.advance(timedelta(days=1))
            assert run_due(deps=deps).generated == 1
            report_id = _report_of(engine, sid)
            assert _notices(engine, report_id) == {}  # nothing until it is ready
            outcome = generate_report(
                deps=deps.replace(generators=lambda t, f: _pdf),
                report_id=report_id,
                is_final_attempt=lambda exc: True,
            )
            assert outcome is Outcome.READY
            notices = _notices(engine, report_id)
            assert notices == {
                physician.user_id: ("REPORT_READY", "EMAIL"),
                viewer.user_id: ("REPORT_READY", "EMAIL"),
            }
            with engine.connect() as conn:
                ids = list(
                    conn.execute(
                        text("SELECT notification_id FROM notifications WHERE report_id = :r"),
                        {"r": report_id},
                    ).scalars()
                )
            assert _email_jobs(engine, ids) == 2  # queued in the ready transaction
            for notification_id in ids:
                assert notifications.send_email(deps=deps, notification_id=notification_id)
            messages: list[EmailMessage] = inbox.messages()
            assert sorted(m["To"] for m in messages) == sorted([physician.email, viewer.email])
            for message in messages:
                assert (
                    message["Subject"]
                    == "Your WCB timing report for April 2 to April 9, 2026 is ready"
                )
                assert message["List-Unsubscribe"] == f"<{PUBLIC_URL}/report-subscriptions>"
                assert list(message.iter_attachments()) == []
        finally:
            deps.close()


def test_a_failed_scheduled_report_tells_the_physician_by_the_subscriptions_delivery(
    deps: Deps, clock: ManualClock, engine: Engine
) -> None:
    physician, _viewer, _ = _team(engine)
    sid = _subscribe(
        deps,
        physician.provider_id,
        ReportType.WCB_TIMING,
        SubscriptionFrequency.DAILY,
        DeliveryMethod.BOTH,
    )
    clock.advance(timedelta(days=1))
    run_due(deps=deps)
    report_id = _report_of(engine, sid)
    outcome = generate_report(
        deps=deps.replace(generators=lambda t, f: _fails),
        report_id=report_id,
        is_final_attempt=lambda exc: True,
    )
    assert outcome is Outcome.FAILED
    assert _notices(engine, report_id) == {physician.user_id: ("REPORT_FAILED", "BOTH")}


def test_a_cancelled_subscriptions_pending_report_is_delivered_in_the_app_only(
    deps: Deps, clock: ManualClock, engine: Engine
) -> None:
    physician, viewer, _ = _team(engine)
    sid = _subscribe(
        deps,
        physician.provider_id,
        ReportType.WCB_TIMING,
        SubscriptionFrequency.DAILY,
        DeliveryMethod.EMAIL,
    )
    clock.advance(timedelta(days=1))
    run_due(deps=deps)
    report_id = _report_of(engine, sid)
    with deps.session_factory.begin() as session:
        service.cancel_subscription(
            session=session,
            ctx=AuthContext(physician.provider_id, physician.user_id),
            subscription_id=sid,
        )
    generate_report(
        deps=deps.replace(generators=lambda t, f: _pdf),
        report_id=report_id,
        is_final_attempt=lambda exc: True,
    )
    assert _notices(engine, report_id) == {
        physician.user_id: ("REPORT_READY", "IN_APP"),
        viewer.user_id: ("REPORT_READY", "IN_APP"),
    }
    # The report itself stays until its retention ends.
    with engine.connect() as conn:
        status = conn.execute(
            text("SELECT status FROM generated_reports WHERE report_id = :r"), {"r": report_id}
        ).scalar_one()
    assert status == "ready"


def test_a_new_subscription_first_runs_at_its_next_regular_instant(
    deps: Deps, clock: ManualClock, engine: Engine
) -> None:
    (provider,) = _providers(engine, 1)
    sid = _subscribe(deps, provider, ReportType.MONTHLY_PERFORMANCE, SubscriptionFrequency.MONTHLY)
    first = ALBERTA.next_run(
        SubscriptionFrequency.MONTHLY, ReportType.MONTHLY_PERFORMANCE, after=START
    )
    assert _next_run_at(engine, sid) == (first.at, None)
    # The 3rd business day of April: 1 and 2 April, then Good Friday and the weekend.
    assert first.at == datetime(2026, 4, 6, 12, 0, tzinfo=UTC)
    assert run_due(deps=deps) == SchedulerResult()
    clock.advance(first.at - clock.now())
    assert run_due(deps=deps) == SchedulerResult(subscriptions=1, generated=1)
    assert _runs(engine, sid) == [(date(2026, 3, 1), date(2026, 3, 31), "generated", True)]


def test_end_to_end_a_worker_schedules_generates_and_emails_a_scheduled_report(
    db_url: str, root: Path, clock: ManualClock, engine: Engine
) -> None:
    """The clock moves past 06:00; a worker's scheduler, generator and outbox do the rest."""
    inbox = Inbox()
    with smtp_server(inbox) as port:
        deps = _deps(
            db_url,
            root,
            clock,
            smtp_url=f"smtp://127.0.0.1:{port}",
            subscription_schedule_cron="* * * * * *",
            email_backoff_seconds="0",
        )
        try:
            physician, viewer, _ = _team(engine)
            sid = _subscribe(
                deps,
                physician.provider_id,
                ReportType.REJECTION_DIGEST,
                SubscriptionFrequency.DAILY,
                DeliveryMethod.EMAIL,
            )
            _reject(engine, physician.provider_id, datetime(2026, 4, 1, 18, 0, tzinfo=UTC))
            with in_process_worker(db_url, deps, poll_seconds=0.2):
                clock.advance(timedelta(days=1))  # Thursday 2 April, 09:00: 1 April is due
                wait_until(lambda: inbox.count() >= 2, timeout=60, what="the emails")
            report_id = _report_of(engine, sid)
            with engine.connect() as conn:
                status, scheduled, size = conn.execute(
                    text(
                        "SELECT status, scheduled, file_size_bytes FROM generated_reports "
                        "WHERE report_id = :r"
                    ),
                    {"r": report_id},
                ).one()
            assert (status, scheduled) == ("ready", True)
            assert size > 0
            assert b"".join(
                deps.storage.read(
                    storage_key(provider_id=physician.provider_id, report_id=report_id)
                )
            ).startswith(b"%PDF")
            assert _notices(engine, report_id) == {
                physician.user_id: ("REPORT_READY", "EMAIL"),
                viewer.user_id: ("REPORT_READY", "EMAIL"),
            }
            messages = inbox.messages()
            assert sorted(m["To"] for m in messages) == sorted([physician.email, viewer.email])
            for message in messages:
                assert message["Subject"] == "Your rejection digest for April 1, 2026 is ready"
                assert message["List-Unsubscribe"] == f"<{PUBLIC_URL}/report-subscriptions>"
        finally:
            deps.close()


def _plan_nodes(plan: dict[str, object]) -> Iterator[dict[str, object]]:
    yield plan
    for child in plan.get("Plans", []):  # type: ignore[attr-defined]
        yield from _plan_nodes(child)


def test_the_claim_walks_the_partial_due_index(engine: Engine) -> None:
    with engine.begin() as conn:
        providers = list(
            conn.execute(
                text(
                    "INSERT INTO providers (billing_number, first_name, last_name) "
                    "SELECT (7000000 + g)::text, 'F', 'L' FROM generate_series(1, 1000) g "
                    "RETURNING provider_id"
                )
            ).scalars()
        )
        # 5,000 subscriptions due over the coming month, a fifth of them paused.
        conn.execute(
            text(
                "INSERT INTO report_subscriptions (provider_id, report_type, frequency, "
                "is_active, next_run_at) "
                "SELECT p, t, CASE t WHEN 'WEEKLY_SUMMARY' THEN 'WEEKLY' "
                "WHEN 'MONTHLY_PERFORMANCE' THEN 'MONTHLY' WHEN 'RRNP_QUARTERLY' THEN 'QUARTERLY' "
                "ELSE 'DAILY' END, random() > 0.2, :start + random() * interval '30 days' "
                "FROM unnest(CAST(:p AS uuid[])) p, unnest(ARRAY['WEEKLY_SUMMARY', "
                "'MONTHLY_PERFORMANCE', 'RRNP_QUARTERLY', 'WCB_TIMING', 'REJECTION_DIGEST']) t"
            ),
            {"p": providers, "start": START},
        )
        conn.execute(text("ANALYZE report_subscriptions"))
        raw = conn.exec_driver_sql(
            "EXPLAIN (FORMAT JSON) SELECT subscription_id FROM report_subscriptions "
            "WHERE is_active AND next_run_at <= %(now)s AND subscription_id <> ALL (%(skip)s) "
            "ORDER BY next_run_at LIMIT 1 FOR UPDATE SKIP LOCKED",
            {"now": START + timedelta(days=1), "skip": []},
        ).scalar_one()
    nodes = list(_plan_nodes(raw[0]["Plan"]))
    scans = [n for n in nodes if "Scan" in str(n["Node Type"])]
    assert [(n["Node Type"], n.get("Index Name")) for n in scans] == [
        ("Index Scan", "ix_report_subscriptions_due")
    ]
