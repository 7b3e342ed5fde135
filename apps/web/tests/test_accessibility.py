"""Every page in Chromium at 1280 and 375 px: axe-core, console, origins, screenshots, keyboard."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from typing import Any, Final

import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Browser, expect
from sqlalchemy import func, insert, literal, select, text, update

from meritum_api.context import AuthContext
from meritum_api.deps import Deps
from meritum_api.domains.subscriptions import service as subscriptions
from meritum_shared.constants.analytics import ReportType
from meritum_shared.constants.auth import PHYSICIAN_PERMISSIONS
from meritum_shared.schemas.db import GeneratedReport, users
from meritum_shared.schemas.validation.subscriptions import SubscriptionCreate, SubscriptionUpdate
from webtab import DELEGATE, PHYSICIAN, SHOTS, Tab, open_tab

WIDTHS: Final = (1280, 375)
#: axe-core impacts that fail the build.
BLOCKING: Final = frozenset({"serious", "critical"})
_AXE: Final = Axe()


@dataclass(frozen=True, slots=True)
class Reports:
    ready: str
    expired: str


@pytest.fixture(scope="module")
def reports(browser: Browser, base_url: str, runtime: Deps) -> Reports:
    """Two ready CSV exports of the demo physician, the second made expired."""
    tab = open_tab(browser, base_url)
    tab.sign_in(PHYSICIAN)
    made = []
    for preset in ("Last month", "Last quarter"):
        tab.go("/reports/new")
        tab.page.get_by_label(preset).check()
        tab.page.get_by_role("button", name="Request export").click()
        tab.page.wait_for_url(re.compile(r"/\?created="))
        report_id = tab.page.url.rsplit("=", 1)[1]
        row = tab.page.locator(f'tr[data-report-id="{report_id}"] [data-status-badge]')
        expect(row).to_have_text("Ready", timeout=60_000)
        made.append(report_id)
    tab.page.context.close()
    with runtime.engine.begin() as conn:
        conn.execute(
            update(GeneratedReport)
            .where(GeneratedReport.report_id == uuid.UUID(made[1]))
            .values(download_link_expires_at=text("now() - interval '1 day'"))
        )
        # One left in progress (no generation job), so the list shows its estimate.
        conn.execute(
            insert(GeneratedReport).from_select(
                [
                    "provider_id",
                    "report_type",
                    "format",
                    "period_start",
                    "period_end",
                    "file_path",
                    "file_size_bytes",
                    "download_link_expires_at",
                ],
                select(
                    GeneratedReport.provider_id,
                    GeneratedReport.report_type,
                    GeneratedReport.format,
                    GeneratedReport.period_start,
                    GeneratedReport.period_end,
                    func.concat(GeneratedReport.file_path, "-pending"),
                    literal(0),
                    GeneratedReport.download_link_expires_at,
                ).where(GeneratedReport.report_id == uuid.UUID(made[0])),
            )
        )
    # Two subscriptions, one of them paused, for the scheduled reports page.
    with runtime.engine.connect() as conn:
        user_id, provider_id = conn.execute(
            select(users.c.user_id, users.c.provider_id).where(users.c.email == PHYSICIAN)
        ).one()
    ctx = AuthContext(provider_id=provider_id, user_id=user_id, permissions=PHYSICIAN_PERMISSIONS)
    with runtime.session_factory.begin() as session:
        for kind in (ReportType.WEEKLY_SUMMARY, ReportType.REJECTION_DIGEST):
            made_sub = subscriptions.create_subscription(
                deps=runtime,
                session=session,
                ctx=ctx,
                request=SubscriptionCreate(report_type=kind),
            )
        subscriptions.update_subscription(
            deps=runtime,
            session=session,
            ctx=ctx,
            subscription_id=made_sub.subscription_id,
            request=SubscriptionUpdate(is_active=False),
        )
    return Reports(ready=made[0], expired=made[1])


def _pages(reports: Reports) -> list[tuple[str, str | None, str, int]]:
    """(name, who signs in, path, expected status) of every page there is."""
    return [
        ("sign-in", None, "/sign-in", 200),
        ("reports", PHYSICIAN, "/", 200),
        ("reports-filtered-empty", PHYSICIAN, "/?kind=WCB_TIMING", 200),
        ("request", PHYSICIAN, "/reports/new", 200),
        ("detail-ready", PHYSICIAN, f"/reports/{reports.ready}", 200),
        ("detail-expired", PHYSICIAN, f"/reports/{reports.expired}", 200),
        ("data-portability", PHYSICIAN, "/data-portability", 200),
        ("notifications", PHYSICIAN, "/notifications", 200),
        ("scheduled-reports", PHYSICIAN, "/scheduled-reports", 200),
        ("not-found", PHYSICIAN, f"/reports/{uuid.uuid4()}", 404),
        ("delegate-reports", DELEGATE, "/", 200),
        ("delegate-forbidden", DELEGATE, "/data-portability", 403),
        ("delegate-notifications", DELEGATE, "/notifications", 200),
        ("delegate-scheduled-reports", DELEGATE, "/scheduled-reports", 200),
    ]


def blocking_violations(tab: Tab) -> list[dict[str, Any]]:
    """axe-core's serious and critical violations on the tab's page."""
    results = _AXE.run(tab.page)
    violations: list[dict[str, Any]] = results.response["violations"]
    return [
        {"id": v["id"], "impact": v["impact"], "nodes": [n["target"] for n in v["nodes"]]}
        for v in violations
        if v["impact"] in BLOCKING
    ]


def shoot(tab: Tab, name: str, width: int) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    tab.page.screenshot(path=str(SHOTS / f"{name}-{width}.png"), full_page=True)


@pytest.mark.parametrize("width", WIDTHS)
def test_every_page_is_accessible_clean_and_photographed(
    browser: Browser, base_url: str, reports: Reports, width: int
) -> None:
    problems: dict[str, Any] = {}
    signed_in_as: dict[str | None, Tab] = {}
    try:
        for name, who, path, status in _pages(reports):
            if who not in signed_in_as:
                signed_in_as[who] = open_tab(browser, base_url, width=width, height=800)
                if who is not None:
                    signed_in_as[who].sign_in(who)
            tab = signed_in_as[who]
            answer = tab.page.goto(base_url + path)
            assert answer is not None
            assert answer.status == status, name
            tab.page.wait_for_load_state("networkidle")
            found = blocking_violations(tab)
            if found:
                problems[name] = found
            overflow = tab.page.evaluate(
                "document.documentElement.scrollWidth > document.documentElement.clientWidth"
            )
            if overflow:
                problems[f"{name} (scrolls sideways)"] = True
            shoot(tab, name, width)
            if status >= 400:
                # The browser reports the page's own status as a failed resource.
                tab.watch.console_errors = [
                    e for e in tab.watch.console_errors if f"status of {status}" not in e
                ]
            tab.watch.assert_clean()
        # A sign-in that failed, with its message.
        anonymous = signed_in_as[None]
        anonymous.sign_in(PHYSICIAN, "wrong password")
        if found := blocking_violations(anonymous):
            problems["sign-in-error"] = found
        shoot(anonymous, "sign-in-error", width)
        # The request form with errors beside its fields.
        physician = signed_in_as[PHYSICIAN]
        physician.go("/reports/new")
        physician.page.get_by_label("Custom dates").check()
        physician.page.get_by_role("button", name="Request export").click()
        physician.page.wait_for_load_state()
        expect(physician.page.locator("#period_start-error")).to_be_visible()
        if found := blocking_violations(physician):
            problems["request-errors"] = found
        shoot(physician, "request-errors", width)
        # A schedule the kind does not allow, said beside the form.
        physician.go("/scheduled-reports")
        new = physician.page.get_by_role("form", name="Schedule a report")
        new.get_by_label("Kind").select_option(label="Monthly performance")
        new.get_by_label("Frequency").select_option(label="Daily")
        new.get_by_role("button", name="Schedule it").click()
        physician.page.wait_for_load_state()
        expect(physician.page.locator("#subscription-error")).to_be_visible()
        if found := blocking_violations(physician):
            problems["scheduled-reports-error"] = found
        shoot(physician, "scheduled-reports-error", width)
    finally:
        for tab in signed_in_as.values():
            tab.page.context.close()
    assert problems == {}


def test_the_request_flow_can_be_done_with_the_keyboard_alone(tab: Tab) -> None:
    tab.sign_in(PHYSICIAN)
    tab.go("/reports/new")
    visited = []
    for _ in range(40):
        tab.page.keyboard.press("Tab")
        focused = tab.page.evaluate(
            "(() => { const e = document.activeElement;"
            " return [e.tagName, e.getAttribute('name') || '', e.textContent.trim(),"
            " e.matches(':focus-visible')]; })()"
        )
        visited.append(focused)
        assert focused[3] is True, f"focus is not visible on {focused}"
        if focused[0] == "INPUT" and focused[1] == "preset":
            # Arrow keys move between the radio buttons of a group.
            tab.page.keyboard.press("ArrowDown")
        if focused[0] == "BUTTON" and focused[2] == "Request export":
            break
    else:
        raise AssertionError(f"the submit button was never reached: {visited}")
    tab.page.keyboard.press("Enter")
    tab.page.wait_for_url(re.compile(r"/\?created="))
    created = tab.page.url.rsplit("=", 1)[1]
    expect(tab.page.locator("tbody tr").first).to_have_attribute("data-report-id", created)
    tab.watch.assert_clean()
