"""Engine and session factory for a database URL."""

from __future__ import annotations

import select
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg.pq import ConnStatus
from psycopg.pq.abc import PGconn
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.orm import Session, sessionmaker


def make_engine(url: str, *, pool_size: int = 10) -> Engine:
    """A psycopg 3 engine; connections the server has closed are replaced on checkout."""
    engine = create_engine(url, pool_size=pool_size, max_overflow=pool_size)
    event.listen(engine, "checkout", refuse_closed_connection)
    return engine


def refuse_closed_connection(dbapi_connection: Any, record: Any, proxy: Any) -> None:
    """Pool checkout hook: a connection the server has hung up on is replaced, without a query.

    A server that restarts, or terminates a backend, first sends the client
    a FATAL message and closes the socket. A pooled connection is idle: it
    has nothing to read unless the server said goodbye, so a readable socket
    (or a broken one) means the connection is gone, and raising
    ``DisconnectionError`` makes the pool open a fresh one. This replaces
    ``pool_pre_ping``, which costs a ``SELECT 1`` round trip on every
    checkout. At worst an unexpected message costs one reconnect.
    """
    gone = hung_up(dbapi_connection.pgconn)
    if gone is not None:
        raise DisconnectionError(gone)


def hung_up(pgconn: PGconn) -> str | None:
    """Why an idle connection can no longer be used (None: it can), without a round trip."""
    if pgconn.status != ConnStatus.OK:
        return "the connection is broken"
    readable, _, _ = select.select([pgconn.socket], [], [], 0)
    if readable:
        return "the server closed the connection"
    return None


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    """Sessions that keep loaded rows usable after commit."""
    return sessionmaker(engine, expire_on_commit=False)


@contextmanager
def autocommit_session(session_factory: sessionmaker[Session]) -> Iterator[Session]:
    """A session for reads that need no transaction (one statement, or no consistency between).

    Without a transaction the driver sends no BEGIN before the first
    statement and no ROLLBACK when the session closes: two round trips
    fewer on the hottest reads. The connection returns to the pool with its
    isolation level reset.
    """
    with session_factory() as session:
        session.connection(execution_options={"isolation_level": "AUTOCOMMIT"})
        yield session


def driver_connection(session: Session) -> psycopg.Connection[Any]:
    """The driver connection under ``session``, in its transaction (or autocommit) if any.

    For the hottest reads, which run SQL compiled once on the driver's
    cursor: SQLAlchemy's execution layer costs as much as their query.
    """
    driver = session.connection().connection.driver_connection
    assert isinstance(driver, psycopg.Connection)
    return driver
