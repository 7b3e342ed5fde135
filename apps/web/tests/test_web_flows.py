"""The physician's web app in Chromium: sign in, request, watch, download, delegates, CSRF."""

from __future__ import annotations

import hashlib
import re
import uuid
from typing import Final

import httpx
import pytest
from playwright.sync_api import Browser, expect
from sqlalchemy import func, select, text, update

from apiserver import add_account
from cutproxy import cutting_proxy
from meritum_api.deps import Deps
from meritum_shared.constants.auth import Permission, UserRole
from meritum_shared.schemas.db import GeneratedReport
from meritum_shared.schemas.validation.analytics import ACCOUNTANT_OUTPUT, AccountantFormat
from meritum_web.pages import FORMAT_LABELS, accountant_formats, portability_available
from polling import wait_until
from webtab import DELEGATE, PASSWORD, PHYSICIAN, Tab, open_tab

READY_WITHIN: Final = 60_000  # ms


def api_token(base_url: str, email: str) -> str:
    """A bearer token of the API, to fetch what the page should have shown."""
    answer = httpx.post(
        f"{base_url}/api/v1/auth/login", json={"email": email, "password": PASSWORD}
    )
    assert answer.status_code == 200, answer.text
    token: str = answer.json()["data"]["token"]
    return token


def report_count(runtime: Deps) -> int:
    with runtime.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(GeneratedReport)).scalar_one())


def request_csv(tab: Tab) -> str:
    """Request last month's CSV from the form; the new report's id."""
    tab.go("/reports/new")
    tab.page.get_by_label("Last month").check()
    tab.page.get_by_label("CSV spreadsheet").check()
    tab.page.get_by_role("button", name="Request export").click()
    tab.page.wait_for_url(re.compile(r"/\?created="))
    created = re.search(r"created=([0-9a-f-]{36})", tab.page.url)
    assert created is not None
    return created.group(1)


def test_a_wrong_password_is_said_in_words_and_does_not_reveal_accounts(tab: Tab) -> None:
    tab.sign_in(PHYSICIAN, "not the password")
    wrong = tab.page.get_by_role("alert").inner_text()
    assert "Wrong email or password" in wrong
    assert tab.page.get_by_label("Email").input_value() == PHYSICIAN
    tab.sign_in("nobody@clinic.example", "not the password")
    assert tab.page.get_by_role("alert").inner_text() == wrong
    tab.watch.console_errors.clear()  # the 401s of the refused sign-ins
    assert tab.watch.foreign_requests == []


def test_signing_in_leads_back_to_the_page_asked_for(tab: Tab) -> None:
    tab.go("/reports/new")
    assert "/sign-in?next=%2Freports%2Fnew" in tab.page.url
    tab.page.get_by_label("Email").fill(PHYSICIAN)
    tab.page.get_by_label("Password").fill(PASSWORD)
    tab.page.get_by_role("button", name="Sign in").click()
    tab.page.wait_for_url(f"{tab.base_url}/reports/new")
    expect(tab.page.get_by_role("heading", level=1)).to_have_text("Request an accountant export")
    tab.watch.assert_clean()


def test_a_requested_csv_becomes_ready_without_reloading_and_downloads_verified(
    tab: Tab, base_url: str, runtime: Deps
) -> None:
    tab.sign_in(PHYSICIAN)
    # The worker may be quicker than the browser: until the page shows the report in
    # progress, its generator is kept waiting on the claims it reads (the request and
    # the list read none), so that what follows is the live update, never a first render.
    with runtime.engine.connect() as holder:
        holder.execute(text("LOCK TABLE claims IN ACCESS EXCLUSIVE MODE"))
        report_id = request_csv(tab)
        row = tab.page.locator(f'tr[data-report-id="{report_id}"]')
        expect(tab.page.locator("tbody tr").first).to_have_attribute("data-report-id", report_id)
        expect(row).to_have_attribute("data-status", re.compile(r"^(pending|generating)$"))
        tab.page.evaluate("window.stillTheSamePage = true")
        holder.rollback()
    expect(row.locator("[data-status-badge]")).to_have_text("Ready", timeout=READY_WITHIN)
    assert tab.page.evaluate("window.stillTheSamePage") is True
    expect(tab.page.locator("#announcer")).to_contain_text("Ready")
    expect(row.locator('td[data-label="Size"]')).to_have_text(
        re.compile(r"^\d+(\.\d)? (kB|MB|bytes)$")
    )
    expect(row.locator('td[data-label="Link"]')).to_have_text(
        re.compile(r"^expires in (29|30) days$")
    )

    row.get_by_role("link").click()
    tab.page.wait_for_url(f"{base_url}/reports/{report_id}")
    token = api_token(base_url, PHYSICIAN)
    auth = {"Authorization": f"Bearer {token}"}
    detail = httpx.get(f"{base_url}/api/v1/reports/{report_id}", headers=auth).json()["data"]
    expect(tab.page.locator("code.digest")).to_have_text(detail["sha256"])
    with tab.page.expect_download() as info:
        tab.page.get_by_role("link", name=re.compile("^Download CSV")).click()
    received = info.value.path().read_bytes()
    expected = httpx.get(f"{base_url}/api/v1/reports/{report_id}/download", headers=auth).content
    assert received == expected
    assert hashlib.sha256(received).hexdigest() == detail["sha256"]
    assert info.value.suggested_filename.endswith(".csv")
    expect(tab.page.locator("[data-download-progress]")).to_have_attribute(
        "data-outcome", "verified"
    )
    tab.page.reload()
    expect(tab.page.get_by_text(re.compile(r"Downloaded [12] times?, first"))).to_be_visible()
    tab.watch.assert_clean()


def test_validation_errors_appear_beside_their_field(tab: Tab, runtime: Deps) -> None:
    tab.sign_in(PHYSICIAN)
    before = report_count(runtime)
    tab.go("/reports/new")
    tab.page.get_by_label("Custom dates").check()
    tab.page.get_by_label("First day").fill("2026-03-31")
    tab.page.get_by_label("Last day").fill("2026-03-01")
    tab.page.get_by_role("button", name="Request export").click()
    tab.page.wait_for_load_state()
    error = tab.page.locator("#period_end-error")
    expect(error).to_have_text("The last day must not be before the first day.")
    expect(tab.page.get_by_label("Last day")).to_have_attribute("aria-invalid", "true")
    assert report_count(runtime) == before
    tab.watch.console_errors.clear()  # the 400 of the refused form
    assert tab.watch.foreign_requests == []


def test_an_expired_report_offers_make_it_again_and_that_works(tab: Tab, runtime: Deps) -> None:
    tab.sign_in(PHYSICIAN)
    old_id = request_csv(tab)
    row = tab.page.locator(f'tr[data-report-id="{old_id}"]')
    expect(row.locator("[data-status-badge]")).to_have_text("Ready", timeout=READY_WITHIN)
    with runtime.engine.begin() as conn:
        conn.execute(
            update(GeneratedReport)
            .where(GeneratedReport.report_id == uuid.UUID(old_id))
            .values(download_link_expires_at=text("now() - interval '1 second'"))
        )
    tab.go(f"/reports/{old_id}")
    expect(tab.page.get_by_text("The download link of this report expired")).to_be_visible()
    expect(tab.page.get_by_role("link", name=re.compile("^Download"))).to_have_count(0)
    tab.page.get_by_role("button", name="Make it again").click()
    tab.page.wait_for_url(re.compile(r"/reports/[0-9a-f-]{36}$"))
    new_id = tab.page.url.rsplit("/", 1)[1]
    assert new_id != old_id
    expect(tab.page.locator("[data-status-badge]")).to_have_text("Ready", timeout=READY_WITHIN)
    expect(tab.page.get_by_role("link", name=re.compile("^Download CSV"))).to_be_visible()
    with runtime.engine.connect() as conn:
        old, new = (
            conn.execute(
                select(GeneratedReport.period_start, GeneratedReport.period_end).where(
                    GeneratedReport.report_id == uuid.UUID(report_id)
                )
            ).one()
            for report_id in (old_id, new_id)
        )
    assert old == new
    tab.watch.assert_clean()


def test_a_delegate_sees_whom_they_act_for_and_only_their_actions(tab: Tab) -> None:
    tab.sign_in(DELEGATE)
    expect(tab.page.locator(".acting-for")).to_have_text(re.compile(r"^Acting for Dr\. \S"))
    nav = tab.page.get_by_role("navigation", name="Main")
    # Exact: "Scheduled reports" also contains "Reports".
    expect(nav.get_by_role("link", name="Reports", exact=True)).to_be_visible()
    expect(nav.get_by_role("link", name="Scheduled reports")).to_be_visible()
    expect(nav.get_by_role("link", name="Request an export")).to_be_visible()
    expect(nav.get_by_role("link", name="All my data")).to_have_count(0)
    tab.watch.assert_clean()


def test_a_forged_form_for_a_hidden_action_is_refused(
    browser: Browser, base_url: str, runtime: Deps
) -> None:
    provider = add_account(runtime.engine).provider_id
    viewer = add_account(
        runtime.engine,
        role=UserRole.DELEGATE,
        provider_id=provider,
        permissions={Permission.REPORT_VIEW},
        password=PASSWORD,
    )
    tab = open_tab(browser, base_url)
    try:
        tab.sign_in(viewer.email)
        expect(tab.page.get_by_role("heading", level=1)).to_have_text("Reports")
        expect(tab.page.get_by_role("link", name=re.compile("Request"))).to_have_count(0)
        token = tab.page.locator('form.sign-out input[name="csrf_token"]').input_value()
        before = report_count(runtime)
        forged = tab.page.request.post(
            f"{base_url}/reports/new",
            form={"csrf_token": token, "preset": "last_month", "format": "csv"},
        )
        assert forged.status == 403
        assert "may not request reports" in forged.text()
        assert report_count(runtime) == before
    finally:
        tab.page.context.close()


@pytest.mark.parametrize("token", [None, "x" * 43])
def test_a_form_without_the_sessions_csrf_token_is_refused(
    tab: Tab, runtime: Deps, token: str | None
) -> None:
    tab.sign_in(PHYSICIAN)
    before = report_count(runtime)
    form: dict[str, str | float | bool] = {"preset": "last_month", "format": "csv"}
    if token is not None:
        form["csrf_token"] = token
    forged = tab.page.request.post(f"{tab.base_url}/reports/new", form=form)
    assert forged.status == 403
    assert "security token" in forged.text()
    assert report_count(runtime) == before


def test_pages_carry_a_strict_policy_and_are_not_stored(tab: Tab) -> None:
    tab.sign_in(PHYSICIAN)
    for path in ("/", "/reports/new", "/data-portability", "/sign-in"):
        answer = tab.page.request.get(f"{tab.base_url}{path}", max_redirects=0)
        policy = answer.headers["content-security-policy"]
        assert "default-src 'self'" in policy
        assert "frame-ancestors 'none'" in policy
        assert "unsafe-inline" not in policy
        assert answer.headers["cache-control"] == "no-store"
        assert answer.headers["x-frame-options"] == "DENY"
    api = tab.page.request.get(f"{tab.base_url}/api/v1/reports")
    assert api.headers["content-security-policy"].startswith("default-src 'none'")


def test_data_portability_asks_twice_for_a_password_then_exports_all_data(
    tab: Tab, base_url: str
) -> None:
    assert portability_available()
    tab.sign_in(PHYSICIAN)
    tab.go("/data-portability")
    expect(tab.page.get_by_text("72 hours")).to_be_visible()
    expect(tab.page.get_by_text("built-in archive tools cannot open")).to_be_visible()
    tab.page.get_by_label("Password", exact=True).fill("short")
    expect(tab.page.locator("[data-strength]")).to_contain_text("Too short")
    tab.page.get_by_label("Password", exact=True).fill("four unrelated words here")
    expect(tab.page.locator("[data-strength]")).to_have_text("Strong.")
    tab.page.get_by_label("Password again").fill("four unrelated words HERE")
    tab.page.get_by_role("button", name="Request the export").click()
    tab.page.wait_for_load_state()
    expect(tab.page.locator("#confirmation-error")).to_have_text(
        "The two passwords are not the same."
    )
    tab.page.get_by_label("Password", exact=True).fill("four unrelated words here")
    tab.page.get_by_label("Password again").fill("four unrelated words here")
    tab.page.get_by_role("button", name="Request the export").click()
    tab.page.wait_for_url(re.compile(r"/reports/[0-9a-f-]{36}$"))
    report_id = tab.page.url.rsplit("/", 1)[1]
    expect(tab.page.locator("h1")).to_contain_text("All my data")
    expect(tab.page.locator("[data-status-badge]")).to_have_text("Ready", timeout=READY_WITHIN)
    with tab.page.expect_download(timeout=READY_WITHIN) as info:
        tab.page.get_by_role("link", name=re.compile("^Download ZIP")).click()
    received = info.value.path().read_bytes()
    auth = {"Authorization": f"Bearer {api_token(base_url, PHYSICIAN)}"}
    detail = httpx.get(f"{base_url}/api/v1/reports/{report_id}", headers=auth).json()["data"]
    assert hashlib.sha256(received).hexdigest() == detail["sha256"]
    assert received[:2] == b"PK"
    tab.watch.console_errors.clear()  # the 400 of the mismatched confirmation
    assert tab.watch.foreign_requests == []


def test_signing_out_ends_the_session_and_back_shows_nothing(tab: Tab) -> None:
    tab.sign_in(PHYSICIAN)
    request_csv(tab)
    tab.page.get_by_role("button", name="Sign out").click()
    tab.page.wait_for_url(f"{tab.base_url}/sign-in")
    tab.page.go_back()
    tab.page.wait_for_load_state()
    assert "/sign-in" in tab.page.url
    expect(tab.page.locator("table.reports")).to_have_count(0)
    tab.watch.assert_clean()


def test_a_dropped_download_resumes_where_it_stopped(browser: Browser, base_url: str) -> None:
    with cutting_proxy(base_url, cut_after=4000) as proxy:
        through = f"http://127.0.0.1:{proxy.port}"
        tab = open_tab(browser, through)
        try:
            tab.sign_in(PHYSICIAN)
            tab.go("/reports/new")
            tab.page.get_by_label("Year to date").check()
            tab.page.get_by_role("button", name="Request export").click()
            tab.page.wait_for_url(re.compile(r"/\?created="))
            report_id = tab.page.url.rsplit("=", 1)[1]
            tab.go(f"/reports/{report_id}")
            badge = tab.page.locator("[data-status-badge]")
            expect(badge).to_have_text("Ready", timeout=READY_WITHIN)
            download_path = f"/api/v1/reports/{report_id}/download"
            ranges: list[str | None] = []
            tab.page.on(
                "request",
                lambda r: (
                    ranges.append(r.headers.get("range"))
                    if r.url == through + download_path
                    else None
                ),
            )
            bar = tab.page.locator("#download-bar")
            with tab.page.expect_download(timeout=READY_WITHIN) as info:
                tab.page.get_by_role("link", name=re.compile("^Download CSV")).click()
                wait_until(
                    lambda: bar.evaluate("(bar) => bar.value") > 0,
                    timeout=30,
                    what="the first part of the file",
                )
                proxy.cut_now.set()
            received = info.value.path().read_bytes()
            progress = tab.page.locator("[data-download-progress]")
            expect(progress).to_have_attribute("data-outcome", "verified")
            assert progress.get_attribute("data-attempts") == "1"
            # The browser reports the cut as a failed resource.
            tab.watch.console_errors = [
                e for e in tab.watch.console_errors if "CONTENT_LENGTH_MISMATCH" not in e
            ]
            tab.watch.assert_clean()
        finally:
            tab.page.context.close()
    assert proxy.cuts == 1
    token = api_token(base_url, PHYSICIAN)
    auth = {"Authorization": f"Bearer {token}"}
    assert received == httpx.get(base_url + download_path, headers=auth).content
    assert ranges[0] is None
    resumed_at = re.fullmatch(r"bytes=(\d+)-", ranges[-1] or "")
    assert resumed_at is not None, ranges
    assert 0 < int(resumed_at.group(1)) < len(received)


@pytest.mark.parametrize("offered", accountant_formats(), ids=str)
def test_each_offered_format_becomes_ready_and_downloads_verified(
    tab: Tab, base_url: str, offered: AccountantFormat
) -> None:
    tab.sign_in(PHYSICIAN)
    tab.go("/reports/new")
    labels = tab.page.locator('input[name="format"]')
    assert [labels.nth(i).get_attribute("value") for i in range(labels.count())] == [
        f.value for f in accountant_formats()
    ]
    tab.page.get_by_label("Last quarter").check()
    tab.page.get_by_label(FORMAT_LABELS[offered]).check()
    tab.page.get_by_role("button", name="Request export").click()
    tab.page.wait_for_url(re.compile(r"/\?created="))
    report_id = tab.page.url.rsplit("=", 1)[1]
    tab.go(f"/reports/{report_id}")
    expect(tab.page.locator("[data-status-badge]")).to_have_text("Ready", timeout=READY_WITHIN)
    with tab.page.expect_download() as info:
        tab.page.get_by_role("link", name=re.compile("^Download ")).click()
    received = info.value.path().read_bytes()
    auth = {"Authorization": f"Bearer {api_token(base_url, PHYSICIAN)}"}
    detail = httpx.get(f"{base_url}/api/v1/reports/{report_id}", headers=auth).json()["data"]
    assert hashlib.sha256(received).hexdigest() == detail["sha256"]
    assert detail["format"] == ACCOUNTANT_OUTPUT[offered][1].value
    tab.watch.assert_clean()
