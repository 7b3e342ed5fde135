"""The web list's extras: "ready in about N s" from past generations, and download receipts."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import date, timedelta

import pytest
from sqlalchemy import Engine, text

from apiserver import Account, add_account, settings_for
from factories import add_paid_claims, listed
from meritum_api.context import AuthContext
from meritum_api.deps import Deps, Role, build_deps
from meritum_api.domains.analytics import service
from meritum_api.domains.analytics.generation import Outcome, generate_report
from meritum_api.domains.analytics.repository import ESTIMATE_SAMPLE
from meritum_api.domains.analytics.schemas import ReportView
from meritum_shared.constants.analytics import ReportStatus
from meritum_shared.constants.auth import PHYSICIAN_PERMISSIONS
from meritum_shared.schemas.validation.analytics import AccountantExportRequest, ReportListQuery


@pytest.fixture(scope="module")
def runtime(db_url: str) -> Iterator[Deps]:
    rt = build_deps(settings_for(db_url), db_url, role=Role.COMMAND)
    yield rt
    rt.close()


def _ctx(account: Account) -> AuthContext:
    return AuthContext(
        provider_id=account.provider_id,
        user_id=account.user_id,
        permissions=PHYSICIAN_PERMISSIONS,
    )


def _request(runtime: Deps, account: Account, fmt: str = "csv") -> ReportView:
    with runtime.session_factory.begin() as session:
        return service.request_accountant_export(
            session=session,
            ctx=_ctx(account),
            queue=runtime.queue,
            request=AccountantExportRequest.model_validate(
                {"period_start": "2026-01-01", "period_end": "2026-01-31", "format": fmt}
            ),
        ).report


def _ready(runtime: Deps, account: Account, took_seconds: float) -> uuid.UUID:
    """A CSV made for real, then said to have taken ``took_seconds`` from request to ready."""
    report = _request(runtime, account)
    outcome = generate_report(
        deps=runtime, report_id=report.report_id, is_final_attempt=lambda e: True
    )
    assert outcome is Outcome.READY
    with runtime.engine.begin() as conn:
        conn.execute(
            text(
                "UPDATE generated_report_contents c SET recorded_at = r.created_at"
                " + make_interval(secs => :took) FROM generated_reports r"
                " WHERE r.report_id = c.report_id AND c.report_id = :id"
            ),
            {"took": took_seconds, "id": report.report_id},
        )
    return report.report_id


def _listing(runtime: Deps, account: Account, now_after: timedelta) -> service.ReportListing:
    first = listed(runtime.engine, _ctx(account), limit=1, offset=0).items[0]
    with runtime.session_factory() as session:
        return service.report_listing(
            session=session,
            ctx=_ctx(account),
            query=ReportListQuery(limit=100),
            now=first.created_at + now_after,
        )


def test_ready_in_seconds_rounds_up_and_gives_up_when_overdue_or_unknown() -> None:
    assert service.ready_in_seconds(typical=20.0, elapsed=5.0) == 15
    assert service.ready_in_seconds(typical=20.0, elapsed=18.2) == 2
    assert service.ready_in_seconds(typical=20.0, elapsed=19.5) is None
    assert service.ready_in_seconds(typical=20.0, elapsed=40.0) is None
    assert service.ready_in_seconds(typical=None, elapsed=0.0) is None


def test_the_estimate_is_the_median_of_the_latest_of_the_same_kind_and_physician(
    engine: Engine, runtime: Deps
) -> None:
    physician = add_account(engine)
    other = add_account(engine)
    with runtime.session_factory.begin() as session:
        for account in (physician, other):
            add_paid_claims(
                session,
                provider_id=account.provider_id,
                count=3,
                first_payment=date(2026, 1, 5),
                days=5,
            )
    # Older than the sample: these slow ones must not count.
    for _ in range(2):
        _ready(runtime, physician, 900)
    sample = [4.0 + i for i in range(ESTIMATE_SAMPLE)]  # 4 … 13 s: median 8.5
    for took in sample:
        _ready(runtime, physician, took)
    for _ in range(3):
        _ready(runtime, other, 600)  # another physician's history is not theirs
    pending_csv = _request(runtime, physician)
    pending_pdf = _request(runtime, physician, "pdf_summary")
    assert pending_csv.status is ReportStatus.PENDING

    listing = _listing(runtime, physician, timedelta(seconds=3))
    # Both pending ones are newest; "now" is 3 s after the newest was asked for.
    waited_csv = 3 + (listing.page.items[0].created_at - pending_csv.created_at).total_seconds()
    assert set(listing.ready_in) == {pending_csv.report_id, pending_pdf.report_id}
    assert listing.ready_in[pending_csv.report_id] == service.ready_in_seconds(
        typical=8.5, elapsed=waited_csv
    )
    assert listing.ready_in[pending_csv.report_id] in (5, 6)
    assert listing.ready_in[pending_pdf.report_id] is None  # no PDF summary made yet

    overdue = _listing(runtime, physician, timedelta(seconds=30))
    assert overdue.ready_in[pending_csv.report_id] is None
    assert _listing(runtime, other, timedelta(seconds=1)).ready_in == {}


def test_the_receipt_is_the_first_completed_download_of_each_report(
    engine: Engine, runtime: Deps
) -> None:
    physician = add_account(engine)
    with runtime.session_factory.begin() as session:
        add_paid_claims(
            session,
            provider_id=physician.provider_id,
            count=2,
            first_payment=date(2026, 1, 5),
            days=5,
        )
    fetched = _ready(runtime, physician, 2)
    untouched = _ready(runtime, physician, 2)
    for _ in range(2):
        with runtime.session_factory.begin() as session:
            found = service.download_for(session=session, ctx=_ctx(physician), report_id=fetched)
            service.record_download(session=session, ctx=_ctx(physician), report=found.report)
    with runtime.session_factory() as session:
        detail = service.report_detail(session=session, ctx=_ctx(physician), report_id=fetched)
    listing = _listing(runtime, physician, timedelta(0))
    assert dict(listing.first_downloaded_at) == {fetched: detail.first_downloaded_at}
    assert detail.download_count == 2
    assert untouched not in listing.first_downloaded_at
    # An entry recorded under another provider (were one ever written) is not their receipt.
    stranger = add_account(engine)
    with runtime.engine.begin() as conn:
        for report_id in (fetched, untouched):
            conn.execute(
                text(
                    "INSERT INTO audit_log (provider_id, action, resource_type, resource_id,"
                    " details, occurred_at) VALUES (:p, 'analytics.report_downloaded', 'report',"
                    " :r, '{}', now() - interval '1 day')"
                ),
                {"p": stranger.provider_id, "r": report_id},
            )
    again = _listing(runtime, physician, timedelta(0))
    assert dict(again.first_downloaded_at) == {fetched: detail.first_downloaded_at}
