"""The CLI's start-up hint: demo accounts are looked for only in development."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine

from meritum_api.cli import _login_hint
from meritum_api.db.cluster import fast_root
from meritum_api.deps import Deps, Role, build_deps
from workers import worker_settings


@pytest.fixture(scope="module")
def deps(db_url: str) -> Iterator[Deps]:
    with tempfile.TemporaryDirectory(prefix="meritum-cli-", dir=fast_root()) as path:
        built = build_deps(
            worker_settings(db_url, Path(path) / "reports"), db_url, role=Role.COMMAND
        )
        yield built
        built.close()


def _unreachable(deps: Deps, environment: str) -> Deps:
    # Any query on this engine fails: the hint must not send one outside development.
    engine = create_engine("postgresql+psycopg://nobody:secret@127.0.0.1:1/none")
    return deps.replace(
        engine=engine, settings=deps.settings.model_copy(update={"environment": environment})
    )


@pytest.mark.parametrize("environment", ["production", "test"])
def test_outside_development_the_hint_sends_no_query(deps: Deps, environment: str) -> None:
    hint = _login_hint(_unreachable(deps, environment), "http://127.0.0.1:8000")
    assert hint == "Log in: POST http://127.0.0.1:8000/api/v1/auth/login"


def test_in_development_the_hint_reads_the_demo_accounts(deps: Deps) -> None:
    developing = deps.replace(
        settings=deps.settings.model_copy(update={"environment": "development"})
    )
    hint = _login_hint(developing, "http://127.0.0.1:8000")
    assert "meritum seed" in hint  # this database has no demo accounts yet
