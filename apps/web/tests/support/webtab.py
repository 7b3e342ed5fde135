"""Driving the web app in Chromium: a watched tab, signing in, the demo accounts."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final
from urllib.parse import urlsplit

from playwright.sync_api import Browser, ConsoleMessage, Page, Request

from meritum_api.seed import DEMO_DOMAIN, DEMO_PASSWORD

CHROMIUM: Final = "/usr/bin/chromium"
CHROMIUM_ARGS: Final = (
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
)
#: Screenshots of every page land here (not committed); MERITUM_WEB_SHOTS moves them.
SHOTS: Final = Path(os.environ.get("MERITUM_WEB_SHOTS", "test-output/web"))
PHYSICIAN: Final = f"physician1@{DEMO_DOMAIN}"
DELEGATE: Final = f"delegate1@{DEMO_DOMAIN}"
PASSWORD: Final = DEMO_PASSWORD


@dataclass
class Watch:
    """What a page did that a test forbids: console errors, requests to other origins."""

    origin: str
    console_errors: list[str] = field(default_factory=list)
    foreign_requests: list[str] = field(default_factory=list)

    def on_console(self, message: ConsoleMessage) -> None:
        if message.type == "error":
            self.console_errors.append(message.text)

    def on_request(self, request: Request) -> None:
        parts = urlsplit(request.url)
        if parts.scheme in ("data", "blob"):
            return
        if f"{parts.scheme}://{parts.netloc}" != self.origin:
            self.foreign_requests.append(request.url)

    def assert_clean(self) -> None:
        assert self.console_errors == []
        assert self.foreign_requests == []


@dataclass
class Tab:
    """A browser page at the test server, and what it was watched doing."""

    page: Page
    watch: Watch
    base_url: str

    def go(self, path: str) -> None:
        self.page.goto(self.base_url + path)

    def sign_in(self, email: str, password: str = PASSWORD) -> None:
        self.go("/sign-in")
        self.page.get_by_label("Email").fill(email)
        self.page.get_by_label("Password").fill(password)
        self.page.get_by_role("button", name="Sign in").click()
        self.page.wait_for_load_state()


def open_tab(browser: Browser, base_url: str, *, width: int = 1280, height: int = 900) -> Tab:
    """A fresh browser context (no cookies) with its watchers attached."""
    context = browser.new_context(
        viewport={"width": width, "height": height},
        accept_downloads=True,
        timezone_id="America/Edmonton",
        locale="en-CA",
    )
    page = context.new_page()
    watch = Watch(origin=base_url)
    page.on("console", watch.on_console)
    page.on("request", watch.on_request)
    return Tab(page=page, watch=watch, base_url=base_url)
