"""The web app in a real Chromium, against the real app over HTTP, a worker and seeded data."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Playwright, sync_playwright
from sqlalchemy import Engine

from apiserver import serve, settings_for
from meritum_api.app import create_app
from meritum_api.db.cluster import ThrowawayCluster
from meritum_api.db.engine import make_engine
from meritum_api.deps import Deps, Role, build_deps
from meritum_api.seed import seed_demo
from webtab import CHROMIUM, CHROMIUM_ARGS, Tab, open_tab
from workers import FAST_RECOVERY, in_process_worker


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[ThrowawayCluster]:
    cluster = ThrowawayCluster()
    cluster.start()
    yield cluster
    cluster.stop()


@pytest.fixture(scope="module")
def db_url(pg_cluster: ThrowawayCluster, request: pytest.FixtureRequest) -> Iterator[str]:
    """A database of this test module's own, cloned from the migrated template."""
    name = "w_" + re.sub(r"[^a-z0-9_]", "_", request.module.__name__.lower())[-50:]
    url = pg_cluster.clone(name)
    yield url
    pg_cluster.drop(name)


@pytest.fixture(scope="module")
def engine(db_url: str) -> Iterator[Engine]:
    eng = make_engine(db_url, pool_size=4)
    yield eng
    eng.dispose()


@pytest.fixture(scope="module")
def runtime(db_url: str, engine: Engine) -> Iterator[Deps]:
    """The app's container, over a database seeded with one demo physician and a delegate."""
    seed_demo(engine, physicians=2, years=1, claims_per_month=40)
    deps = build_deps(
        settings_for(db_url, rate_limit_per_minute=100_000, **FAST_RECOVERY),
        db_url,
        role=Role.SERVE,
    )
    yield deps
    deps.close()


@pytest.fixture(scope="module")
def base_url(runtime: Deps, db_url: str) -> Iterator[str]:
    """``meritum serve`` in a thread: the app over HTTP and an in-process worker."""
    with in_process_worker(db_url, runtime, poll_seconds=0.5), serve(create_app(runtime)) as url:
        yield url


@pytest.fixture(scope="session")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as pw:
        yield pw


@pytest.fixture(scope="session")
def browser(playwright: Playwright) -> Iterator[Browser]:
    chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=list(CHROMIUM_ARGS))
    yield chromium
    chromium.close()


@pytest.fixture
def tab(browser: Browser, base_url: str) -> Iterator[Tab]:
    opened = open_tab(browser, base_url)
    yield opened
    opened.page.context.close()
