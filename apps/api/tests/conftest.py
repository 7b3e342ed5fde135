"""Real PostgreSQL 16 for every test: one cluster per session, one clone per module."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from meritum_api.db.cluster import ThrowawayCluster
from meritum_api.db.engine import make_engine


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[ThrowawayCluster]:
    cluster = ThrowawayCluster()
    cluster.start()
    yield cluster
    cluster.stop()


@pytest.fixture(scope="module")
def db_url(pg_cluster: ThrowawayCluster, request: pytest.FixtureRequest) -> Iterator[str]:
    """A database of this test module's own, cloned from the migrated template."""
    name = "t_" + re.sub(r"[^a-z0-9_]", "_", request.module.__name__.lower())[-50:]
    url = pg_cluster.clone(name)
    yield url
    pg_cluster.drop(name)


@pytest.fixture(scope="module")
def engine(db_url: str) -> Iterator[Engine]:
    eng = make_engine(db_url, pool_size=4)
    yield eng
    eng.dispose()


@pytest.fixture
def session(engine: Engine) -> Iterator[Session]:
    """A session whose work is rolled back at the end of the test."""
    with engine.connect() as conn:
        outer = conn.begin()
        with Session(bind=conn, join_transaction_mode="create_savepoint") as sess:
            yield sess
        outer.rollback()
