"""Scheduled reports in Chromium: subscribe, change, pause, resume, delete without JavaScript;
clear refusals; a delegate without REPORT_EXPORT sees no action and cannot forge one."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect
from sqlalchemy import func, select

from apiserver import Account, add_account
from meritum_api.deps import Deps
from meritum_shared.constants.analytics import AuditAction
from meritum_shared.constants.auth import Permission, UserRole
from meritum_shared.schemas.db import audit_log, report_subscriptions
from meritum_web import formatting
from webtab import PASSWORD, Tab, Watch, open_tab

S = report_subscriptions.c


def rows(runtime: Deps, account: Account) -> list[Any]:
    with runtime.engine.connect() as conn:
        return list(
            conn.execute(
                select(report_subscriptions).where(S.provider_id == account.provider_id)
            ).all()
        )


def audited(runtime: Deps, account: Account, action: AuditAction) -> int:
    with runtime.engine.connect() as conn:
        return int(
            conn.execute(
                select(func.count())
                .select_from(audit_log)
                .where(
                    audit_log.c.provider_id == account.provider_id,
                    audit_log.c.action == action.value,
                )
            ).scalar_one()
        )


def card(page: Page, kind: str) -> Any:
    return page.locator("li.subscription").filter(
        has=page.get_by_role("heading", name=kind, exact=True)
    )


def subscribe(
    tab: Tab, kind: str, *, frequency: str | None = None, delivery: str | None = None
) -> None:
    form = tab.page.locator("form").filter(has=tab.page.get_by_role("button", name="Schedule it"))
    form.get_by_label("Kind").select_option(label=kind)
    if frequency is not None:
        form.get_by_label("Frequency").select_option(label=frequency)
    if delivery is not None:
        form.get_by_label("Delivery").select_option(label=delivery)
    form.get_by_role("button", name="Schedule it").click()
    tab.page.wait_for_load_state()


@pytest.fixture
def physician(runtime: Deps) -> Account:
    return add_account(runtime.engine, password=PASSWORD)


def test_a_subscription_is_made_changed_paused_resumed_and_deleted_without_javascript(
    browser: Browser, base_url: str, runtime: Deps, physician: Account
) -> None:
    # Every action is a plain form POST: it works with scripts off.
    context = browser.new_context(java_script_enabled=False, timezone_id="America/Edmonton")
    tab = Tab(page=context.new_page(), watch=Watch(origin=base_url), base_url=base_url)
    tab.page.on("console", tab.watch.on_console)
    tab.page.on("request", tab.watch.on_request)
    try:
        tab.sign_in(physician.email)
        tab.page.get_by_role("navigation", name="Main").get_by_role(
            "link", name="Scheduled reports"
        ).click()
        tab.page.wait_for_url(f"{base_url}/scheduled-reports")
        expect(tab.page.get_by_text("No scheduled reports yet.")).to_be_visible()

        subscribe(tab, "Weekly summary", delivery="By email")
        tab.page.wait_for_url(f"{base_url}/scheduled-reports?done=created")
        expect(tab.page.locator(".alert[role=status]")).to_contain_text(
            "The subscription is set up."
        )
        weekly = card(tab.page, "Weekly summary")
        expect(weekly.locator('[data-field="frequency"]')).to_have_text(
            "Weekly (the only one for this kind)"
        )
        expect(weekly.get_by_label("Delivery")).to_have_value("EMAIL")
        expect(weekly.locator('[data-field="last-run"]')).to_have_text("Not yet")
        (row,) = rows(runtime, physician)
        assert (row.report_type, row.frequency, row.delivery_method, row.is_active) == (
            "WEEKLY_SUMMARY",
            "WEEKLY",
            "EMAIL",
            True,
        )
        expect(weekly.locator('[data-field="next-run"]')).to_have_text(
            formatting.run_time(row.next_run_at, now=datetime.now(UTC))
        )
        assert formatting.local(row.next_run_at).strftime("%H:%M") == "06:00"
        # The kind taken is no longer offered.
        kinds = tab.page.get_by_label("Kind").locator("option")
        assert "Weekly summary" not in kinds.all_inner_texts()

        weekly.get_by_role("button", name=re.compile("^Pause")).click()
        tab.page.wait_for_url(f"{base_url}/scheduled-reports?done=paused")
        expect(weekly.locator(".badge")).to_have_text("Paused")
        expect(weekly.locator('[data-field="next-run"]')).to_have_text("None while paused")
        assert rows(runtime, physician)[0].is_active is False

        weekly.get_by_role("button", name=re.compile("^Resume")).click()
        tab.page.wait_for_url(f"{base_url}/scheduled-reports?done=resumed")
        expect(weekly.locator(".badge")).to_have_text("Active")
        assert rows(runtime, physician)[0].is_active is True

        weekly.get_by_label("Delivery").select_option(label="In the app and by email")
        weekly.get_by_role("button", name=re.compile("^Save changes")).click()
        tab.page.wait_for_url(f"{base_url}/scheduled-reports?done=changed")
        expect(weekly.get_by_label("Delivery")).to_have_value("BOTH")
        assert rows(runtime, physician)[0].delivery_method == "BOTH"

        weekly.get_by_role("button", name=re.compile("^Delete")).click()
        tab.page.wait_for_url(f"{base_url}/scheduled-reports?done=deleted")
        expect(tab.page.locator("li.subscription")).to_have_count(0)
        assert rows(runtime, physician) == []
        assert audited(runtime, physician, AuditAction.SUBSCRIPTION_CREATED) == 1
        assert audited(runtime, physician, AuditAction.SUBSCRIPTION_UPDATED) == 3
        assert audited(runtime, physician, AuditAction.SUBSCRIPTION_CANCELLED) == 1
        tab.watch.assert_clean()
    finally:
        context.close()


def test_a_duplicate_or_a_frequency_not_allowed_is_said_clearly_and_changes_nothing(
    tab: Tab, runtime: Deps, physician: Account
) -> None:
    tab.sign_in(physician.email)
    tab.go("/scheduled-reports")
    subscribe(tab, "Weekly summary", frequency="Daily")
    error = tab.page.locator("#subscription-error")
    expect(error).to_have_text("A Weekly summary can be made weekly only.")
    expect(tab.page.get_by_label("Frequency")).to_have_attribute("aria-invalid", "true")
    assert rows(runtime, physician) == []

    subscribe(tab, "Monthly performance", frequency="Quarterly")
    expect(card(tab.page, "Monthly performance").get_by_label("Frequency")).to_have_value(
        "QUARTERLY"
    )
    token = tab.page.locator('form.sign-out input[name="csrf_token"]').input_value()
    again = tab.page.request.post(
        f"{tab.base_url}/scheduled-reports",
        form={"csrf_token": token, "report_type": "MONTHLY_PERFORMANCE", "frequency": ""},
    )
    assert again.status == 409
    assert "You already have a Monthly performance subscription" in again.text()
    (row,) = rows(runtime, physician)
    # A changed frequency the kind does not allow (the form offers only allowed ones).
    forged = tab.page.request.post(
        f"{tab.base_url}/scheduled-reports/{row.subscription_id}",
        form={"csrf_token": token, "frequency": "DAILY", "delivery_method": "IN_APP"},
    )
    assert forged.status == 422
    assert "A Monthly performance can be made monthly or quarterly only." in forged.text()
    assert rows(runtime, physician)[0].frequency == "QUARTERLY"
    on_demand = tab.page.request.post(
        f"{tab.base_url}/scheduled-reports",
        form={"csrf_token": token, "report_type": "ACCOUNTANT_SUMMARY"},
    )
    assert on_demand.status == 422
    assert "Accountant summary reports cannot be scheduled." in on_demand.text()
    assert len(rows(runtime, physician)) == 1
    tab.watch.console_errors.clear()  # the refused forms' 4xx
    assert tab.watch.foreign_requests == []


def test_another_physicians_subscription_is_not_found(
    browser: Browser, tab: Tab, runtime: Deps, physician: Account
) -> None:
    owner = add_account(runtime.engine, password=PASSWORD)
    owner_tab = open_tab(browser, tab.base_url)
    try:
        owner_tab.sign_in(owner.email)
        owner_tab.go("/scheduled-reports")
        subscribe(owner_tab, "RRNP quarterly")
    finally:
        owner_tab.page.context.close()
    (theirs,) = rows(runtime, owner)
    tab.sign_in(physician.email)
    tab.go("/scheduled-reports")
    token = tab.page.locator('form.sign-out input[name="csrf_token"]').input_value()
    for action in ("", "/pause", "/resume", "/delete"):
        for target in (theirs.subscription_id, uuid.uuid4()):
            answer = tab.page.request.post(
                f"{tab.base_url}/scheduled-reports/{target}{action}",
                form={"csrf_token": token, "frequency": "QUARTERLY"},
            )
            assert answer.status == 404, action
            assert "Subscription not found" in answer.text()
    assert rows(runtime, owner) == [theirs]


def test_a_delegate_without_report_export_sees_no_action_and_a_forged_one_is_refused(
    browser: Browser, base_url: str, runtime: Deps, physician: Account
) -> None:
    owner_tab = open_tab(browser, base_url)
    try:
        owner_tab.sign_in(physician.email)
        owner_tab.go("/scheduled-reports")
        subscribe(owner_tab, "WCB timing")
    finally:
        owner_tab.page.context.close()
    (row,) = rows(runtime, physician)
    viewer = add_account(
        runtime.engine,
        role=UserRole.DELEGATE,
        provider_id=physician.provider_id,
        permissions={Permission.REPORT_VIEW},
        password=PASSWORD,
    )
    tab = open_tab(browser, base_url)
    try:
        tab.sign_in(viewer.email)
        tab.go("/scheduled-reports")
        wcb = card(tab.page, "WCB timing")
        expect(wcb.locator('[data-field="frequency"]')).to_have_text("Weekly")
        for name in ("Schedule it", "Pause", "Resume", "Delete", "Save changes"):
            expect(tab.page.get_by_role("button", name=re.compile(f"^{name}"))).to_have_count(0)
        expect(tab.page.locator("select")).to_have_count(0)
        token = tab.page.locator('form.sign-out input[name="csrf_token"]').input_value()
        forged = [
            ("/scheduled-reports", {"report_type": "WEEKLY_SUMMARY"}),
            (f"/scheduled-reports/{row.subscription_id}", {"frequency": "DAILY"}),
            (f"/scheduled-reports/{row.subscription_id}/pause", {}),
            (f"/scheduled-reports/{row.subscription_id}/delete", {}),
        ]
        for path, fields in forged:
            answer = tab.page.request.post(base_url + path, form={"csrf_token": token, **fields})
            assert answer.status == 403, path
            assert "may not change scheduled reports" in answer.text()
        assert rows(runtime, physician) == [row]
        assert audited(runtime, physician, AuditAction.SUBSCRIPTION_UPDATED) == 0
        tab.watch.assert_clean()
    finally:
        tab.page.context.close()


def test_the_subscriptions_path_leads_to_the_page_and_a_delegate_without_view_sees_neither(
    browser: Browser, base_url: str, runtime: Deps, physician: Account
) -> None:
    outsider = add_account(
        runtime.engine,
        role=UserRole.DELEGATE,
        provider_id=physician.provider_id,
        permissions={Permission.DATA_EXPORT},
        password=PASSWORD,
    )
    owner = open_tab(browser, base_url)
    tab = open_tab(browser, base_url)
    try:
        owner.sign_in(physician.email)
        moved = owner.page.request.get(base_url + "/subscriptions", max_redirects=0)
        assert moved.status == 308
        assert moved.headers["location"] == "/scheduled-reports"
        assert moved.headers["cache-control"] == "no-store"
        assert moved.headers["content-security-policy"].startswith("default-src 'self'")
        owner.go("/subscriptions")
        owner.page.wait_for_url(f"{base_url}/scheduled-reports")
        expect(owner.page.get_by_role("heading", level=1)).to_have_text("Scheduled reports")
        subscribe(owner, "Weekly summary")
        assert len(rows(runtime, physician)) == 1
        owner.watch.assert_clean()

        tab.sign_in(outsider.email)
        nav = tab.page.get_by_role("navigation", name="Main")
        expect(nav.get_by_role("link", name="All my data")).to_be_visible()
        expect(nav.get_by_role("link", name="Scheduled reports")).to_have_count(0)
        answer = tab.page.goto(base_url + "/subscriptions")
        assert answer is not None
        assert answer.status == 403
        assert answer.url == f"{base_url}/scheduled-reports"
        expect(tab.page.get_by_role("heading", level=1)).to_have_text("Not allowed")
        expect(tab.page.locator("li.subscription")).to_have_count(0)
    finally:
        tab.page.context.close()
        owner.page.context.close()
