"""The engine's pool: closed connections replaced without a ping, reads without a transaction."""

from __future__ import annotations

import psycopg
import pytest
from sqlalchemy import text

from meritum_api.db.cluster import libpq_dsn
from meritum_api.db.engine import autocommit_session, make_engine, make_session_factory
from meritum_api.db.reads import ReadPool


def _terminate(db_url: str, pid: int) -> None:
    with psycopg.connect(libpq_dsn(db_url), autocommit=True) as admin:
        # With a timeout, returns once the backend is gone (its goodbye sent).
        assert admin.execute("SELECT pg_terminate_backend(%s, 5000)", (pid,)).fetchone() == (True,)


def test_a_pooled_connection_the_server_closed_is_replaced_on_checkout(db_url: str) -> None:
    engine = make_engine(db_url, pool_size=1)
    try:
        with engine.connect() as conn:
            first = conn.execute(text("SELECT pg_backend_pid()")).scalar_one()
        _terminate(db_url, first)  # as a server restart or an administrator would
        with engine.connect() as conn:
            second = conn.execute(text("SELECT pg_backend_pid()")).scalar_one()
        assert second != first
    finally:
        engine.dispose()


def test_a_live_pooled_connection_is_reused(db_url: str) -> None:
    engine = make_engine(db_url, pool_size=1)
    try:
        pids = set()
        for _ in range(3):
            with engine.connect() as conn:
                pids.add(conn.execute(text("SELECT pg_backend_pid()")).scalar_one())
        assert len(pids) == 1
    finally:
        engine.dispose()


def test_autocommit_reads_run_outside_a_transaction_and_leave_the_pool_transactional(
    db_url: str,
) -> None:
    engine = make_engine(db_url, pool_size=1)
    factory = make_session_factory(engine)
    xid = text("SELECT txid_current()")
    try:
        with autocommit_session(factory) as session:
            # Each statement is its own transaction: no BEGIN was sent.
            assert session.execute(xid).scalar_one() != session.execute(xid).scalar_one()
        with factory() as session:
            # The same pooled connection, back in a transaction per session.
            assert session.execute(xid).scalar_one() == session.execute(xid).scalar_one()
            session.execute(text("CREATE TEMP TABLE scratch (n int)"))
            session.rollback()
            assert (
                session.execute(
                    text("SELECT count(*) FROM pg_tables WHERE tablename = 'scratch'")
                ).scalar_one()
                == 0
            )
    finally:
        engine.dispose()


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.mark.anyio
async def test_the_read_pool_reads_in_autocommit_and_survives_a_failed_statement(
    db_url: str,
) -> None:
    reads = ReadPool(db_url, size=1)
    try:
        xid = "SELECT txid_current()"
        async with reads.connection() as conn:
            pid = conn.info.backend_pid
            # Each statement is its own transaction: no BEGIN was sent.
            first = await (await conn.execute(xid)).fetchone()
            assert first != await (await conn.execute(xid)).fetchone()
            with pytest.raises(psycopg.errors.DivisionByZero):
                await conn.execute("SELECT 1 / 0")
        async with reads.connection() as conn:
            assert conn.info.backend_pid == pid  # the same connection, still usable
            assert await (await conn.execute("SELECT 1")).fetchone() == (1,)
    finally:
        await reads.close()


@pytest.mark.anyio
async def test_the_read_pool_replaces_a_connection_the_server_closed(db_url: str) -> None:
    reads = ReadPool(db_url, size=1)
    try:
        async with reads.connection() as conn:
            first = conn.info.backend_pid
        _terminate(db_url, first)
        async with reads.connection() as conn:
            assert conn.info.backend_pid != first
            assert await (await conn.execute("SELECT 1")).fetchone() == (1,)
    finally:
        await reads.close()
