"""Notifications in Chromium: the header's unread count, the list, marking read without JS;
and the reports list's "ready in about N s" and download receipts."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Final

import pytest
from playwright.sync_api import Browser, expect
from sqlalchemy import func, insert, select, text

from apiserver import Account, add_account
from factories import report_values
from meritum_api.deps import Deps
from meritum_shared.constants.analytics import ReportFormat, ReportType
from meritum_shared.constants.notifications import NotificationEvent
from meritum_shared.schemas.db import audit_log, generated_reports, notifications
from meritum_web import formatting
from webtab import PASSWORD, PHYSICIAN, Tab, open_tab

READY_WITHIN: Final = 60_000  # ms


def fresh_physician(runtime: Deps) -> Account:
    """A physician of their own (no claims, no reports, no notices): counts start at zero."""
    return add_account(runtime.engine, password=PASSWORD)


def request_csv(tab: Tab) -> str:
    tab.go("/reports/new")
    tab.page.get_by_label("Last month").check()
    tab.page.get_by_label("CSV spreadsheet").check()
    tab.page.get_by_role("button", name="Request export").click()
    tab.page.wait_for_url(re.compile(r"/\?created="))
    return tab.page.url.rsplit("=", 1)[1]


def unread_in_db(runtime: Deps, account: Account) -> int:
    with runtime.engine.connect() as conn:
        return int(
            conn.execute(
                select(func.count())
                .select_from(notifications)
                .where(
                    notifications.c.user_id == account.user_id, notifications.c.read_at.is_(None)
                )
            ).scalar_one()
        )


def header_count(tab: Tab) -> str:
    value = tab.page.locator(".notices-link").get_attribute("data-unread")
    assert value is not None
    return value


def test_reading_a_notification_drops_the_unread_count(
    browser: Browser, base_url: str, runtime: Deps
) -> None:
    physician = fresh_physician(runtime)
    tab = open_tab(browser, base_url)
    try:
        tab.sign_in(physician.email)
        expect(tab.page.locator(".notices-link")).to_have_attribute("data-unread", "0")
        first = request_csv(tab)
        row = tab.page.locator(f'tr[data-report-id="{first}"]')
        expect(row.locator("[data-status-badge]")).to_have_text("Ready", timeout=READY_WITHIN)
        # The count in the header follows without a reload.
        expect(tab.page.locator(".notices-link")).to_have_attribute("data-unread", "1")
        expect(tab.page.locator(".unread-count")).to_have_text("(1 unread)")
        second = request_csv(tab)
        expect(tab.page.locator(f'tr[data-report-id="{second}"] [data-status-badge]')).to_have_text(
            "Ready", timeout=READY_WITHIN
        )
        expect(tab.page.locator(".notices-link")).to_have_attribute("data-unread", "2")

        tab.page.get_by_role("link", name=re.compile("^Notifications")).click()
        tab.page.wait_for_url(f"{base_url}/notifications")
        items = tab.page.locator("li.notice")
        expect(items).to_have_count(2)
        # Newest first, each linking to its report's page.
        assert items.nth(0).get_attribute("data-notification-id") is not None
        newest = items.nth(0).get_by_role("link")
        expect(newest).to_have_text(re.compile(r"^Your accountant summary for \w+ \d{4} is ready$"))
        expect(newest).to_have_attribute("href", f"/reports/{second}")
        expect(items.nth(1).get_by_role("link")).to_have_attribute("href", f"/reports/{first}")
        expect(tab.page.get_by_text("2 unread notifications.")).to_be_visible()

        items.nth(1).get_by_role("button", name=re.compile("^Mark as read")).click()
        tab.page.wait_for_url(f"{base_url}/notifications")
        expect(tab.page.locator(".notices-link")).to_have_attribute("data-unread", "1")
        expect(tab.page.locator("li.notice-unread")).to_have_count(1)
        expect(tab.page.locator("li.notice-unread").get_by_role("link")).to_have_attribute(
            "href", f"/reports/{second}"
        )
        assert unread_in_db(runtime, physician) == 1

        tab.page.get_by_role("button", name="Mark all as read").click()
        tab.page.wait_for_url(f"{base_url}/notifications")
        expect(tab.page.locator(".notices-link")).to_have_attribute("data-unread", "0")
        expect(tab.page.locator(".unread-count")).to_have_count(0)
        expect(tab.page.get_by_role("button", name="Mark all as read")).to_have_count(0)
        assert unread_in_db(runtime, physician) == 0

        tab.page.locator("li.notice").first.get_by_role("link").click()
        tab.page.wait_for_url(f"{base_url}/reports/{second}")
        tab.watch.assert_clean()
    finally:
        tab.page.context.close()


def _notices(runtime: Deps, account: Account, count: int) -> list[uuid.UUID]:
    """``count`` REPORT_READY notices of their own reports, one a minute; oldest first."""
    base = datetime(2026, 11, 1, 15, 0, tzinfo=UTC)
    made = []
    with runtime.engine.begin() as conn:
        for n in range(count):
            report_id = conn.execute(
                insert(generated_reports)
                .values(
                    **report_values(
                        account.provider_id,
                        report_type=ReportType.ACCOUNTANT_SUMMARY,
                        period_start=date(2026, 1 + n % 12, 1),
                        period_end=date(2026, 1 + n % 12, 21),
                    )
                )
                .returning(generated_reports.c.report_id)
            ).scalar_one()
            made.append(
                conn.execute(
                    insert(notifications)
                    .values(
                        user_id=account.user_id,
                        provider_id=account.provider_id,
                        event=NotificationEvent.REPORT_READY,
                        report_id=report_id,
                        created_at=base + timedelta(minutes=n),
                    )
                    .returning(notifications.c.notification_id)
                ).scalar_one()
            )
    return made


def test_notifications_are_paged_newest_first(
    browser: Browser, base_url: str, runtime: Deps
) -> None:
    physician = fresh_physician(runtime)
    made = _notices(runtime, physician, 25)
    tab = open_tab(browser, base_url, width=375)
    try:
        tab.sign_in(physician.email)
        expect(tab.page.locator(".notices-link")).to_have_attribute("data-unread", "25")
        tab.go("/notifications")
        ids = tab.page.locator("li.notice")
        expect(ids).to_have_count(20)
        shown = [ids.nth(i).get_attribute("data-notification-id") for i in range(20)]
        assert shown == [str(n) for n in reversed(made[5:])]
        expect(tab.page.get_by_text("Page 1 of 2 (25 notifications)")).to_be_visible()
        tab.page.get_by_role("link", name="Older").click()
        tab.page.wait_for_url(f"{base_url}/notifications?page=2")
        expect(ids).to_have_count(5)
        assert [ids.nth(i).get_attribute("data-notification-id") for i in range(5)] == [
            str(n) for n in reversed(made[:5])
        ]
        # Marking one on page 2 leads back to page 2.
        ids.nth(4).get_by_role("button", name=re.compile("^Mark as read")).click()
        tab.page.wait_for_url(f"{base_url}/notifications?page=2")
        expect(tab.page.locator(".notices-link")).to_have_attribute("data-unread", "24")
        with runtime.engine.connect() as conn:
            read = (
                conn.execute(
                    select(notifications.c.notification_id).where(
                        notifications.c.user_id == physician.user_id,
                        notifications.c.read_at.is_not(None),
                    )
                )
                .scalars()
                .all()
            )
        assert read == [made[0]]
        tab.go("/notifications?page=9")
        expect(tab.page.get_by_text("No notifications on this page.")).to_be_visible()
        tab.watch.assert_clean()
    finally:
        tab.page.context.close()


@pytest.mark.parametrize("token", [None, "x" * 43])
def test_marking_read_without_the_sessions_token_is_refused_and_changes_nothing(
    browser: Browser, base_url: str, runtime: Deps, token: str | None
) -> None:
    physician = fresh_physician(runtime)
    (notice,) = _notices(runtime, physician, 1)
    tab = open_tab(browser, base_url)
    try:
        tab.sign_in(physician.email)
        form: dict[str, str | float | bool] = {} if token is None else {"csrf_token": token}
        for path in (f"/notifications/{notice}/read", "/notifications/read-all"):
            forged = tab.page.request.post(base_url + path, form=form)
            assert forged.status == 403
            assert "security token" in forged.text()
        assert unread_in_db(runtime, physician) == 1
    finally:
        tab.page.context.close()


def test_another_users_notification_cannot_be_marked(
    browser: Browser, base_url: str, runtime: Deps
) -> None:
    owner = fresh_physician(runtime)
    (theirs,) = _notices(runtime, owner, 1)
    intruder = fresh_physician(runtime)
    tab = open_tab(browser, base_url)
    try:
        tab.sign_in(intruder.email)
        tab.go("/notifications")
        expect(tab.page.get_by_text("No notifications yet.")).to_be_visible()
        token = tab.page.locator('form.sign-out input[name="csrf_token"]').input_value()
        for target in (theirs, uuid.uuid4(), "not-an-id"):
            answer = tab.page.request.post(
                f"{base_url}/notifications/{target}/read", form={"csrf_token": token}
            )
            assert answer.status == 404
            assert "Notification not found" in answer.text()
        tab.page.request.post(f"{base_url}/notifications/read-all", form={"csrf_token": token})
        assert unread_in_db(runtime, owner) == 1
    finally:
        tab.page.context.close()


def _pending(runtime: Deps, account: Account, report_type: ReportType, fmt: ReportFormat) -> str:
    """A report left pending (no generation job): it stays in progress while the test looks."""
    with runtime.engine.begin() as conn:
        report_id = conn.execute(
            insert(generated_reports)
            .values(**report_values(account.provider_id, report_type=report_type, format=fmt))
            .returning(generated_reports.c.report_id)
        ).scalar_one()
    return str(report_id)


def test_the_list_says_when_a_report_should_be_ready_and_when_it_was_downloaded(
    browser: Browser, base_url: str, runtime: Deps
) -> None:
    physician = fresh_physician(runtime)
    tab = open_tab(browser, base_url)
    try:
        tab.sign_in(physician.email)
        made = request_csv(tab)
        made_row = tab.page.locator(f'tr[data-report-id="{made}"]')
        expect(made_row.locator("[data-status-badge]")).to_have_text("Ready", timeout=READY_WITHIN)
        expect(made_row.locator('td[data-label="Downloaded"]')).to_have_text("Not yet")
        # Say the one made took ten minutes: the next of its kind should take as long.
        with runtime.engine.begin() as conn:
            conn.execute(
                text(
                    "UPDATE generated_report_contents c SET recorded_at = r.created_at"
                    " + interval '600 seconds' FROM generated_reports r"
                    " WHERE r.report_id = c.report_id AND c.report_id = :id"
                ),
                {"id": made},
            )
        waiting = _pending(runtime, physician, ReportType.ACCOUNTANT_SUMMARY, ReportFormat.CSV)
        unknown = _pending(runtime, physician, ReportType.ACCOUNTANT_DETAIL, ReportFormat.PDF)
        tab.go("/")
        eta = tab.page.locator(f'tr[data-report-id="{waiting}"] [data-eta]')
        expect(eta).to_have_text(re.compile(r"^ready in about (59\d|600) s$"))
        expect(tab.page.locator(f'tr[data-report-id="{unknown}"] [data-eta]')).to_have_text(
            "ready shortly"
        )
        expect(made_row.locator("[data-eta]")).to_have_count(0)

        tab.go(f"/reports/{made}")
        with tab.page.expect_download():
            tab.page.get_by_role("link", name=re.compile("^Download CSV")).click()
        expect(tab.page.locator("[data-download-progress]")).to_have_attribute(
            "data-outcome", "verified"
        )
        tab.go("/")
        with runtime.engine.connect() as conn:
            first = conn.execute(
                select(func.min(audit_log.c.occurred_at))
                .where(audit_log.c.resource_id == uuid.UUID(made))
                .where(audit_log.c.action == "analytics.report_downloaded")
            ).scalar_one()
        assert first is not None
        expect(made_row.locator('td[data-label="Downloaded"]')).to_have_text(
            f"Downloaded {formatting.when(first, now=datetime.now(UTC))}"
        )
        tab.watch.assert_clean()
    finally:
        tab.page.context.close()


def test_static_files_are_cached_by_version_and_pages_never(tab: Tab) -> None:
    tab.sign_in(PHYSICIAN)
    tab.go("/")
    stylesheet = tab.page.locator('link[rel="stylesheet"]').get_attribute("href")
    assert stylesheet is not None
    assert re.fullmatch(r"/static/app\.css\?v=[0-9a-f]{16}", stylesheet)
    current = tab.page.request.get(tab.base_url + stylesheet)
    assert current.status == 200
    assert current.headers["cache-control"] == "public, max-age=31536000, immutable"
    for stale in ("/static/app.css", "/static/app.css?v=0000000000000000"):
        answer = tab.page.request.get(tab.base_url + stale)
        assert answer.status == 200
        assert answer.headers["cache-control"] == "no-cache"
        assert answer.body() == current.body()
    page = tab.page.request.get(tab.base_url + "/")
    assert page.headers["cache-control"] == "no-store"
    assert tab.page.request.get(tab.base_url + "/static/missing.js").status == 404
