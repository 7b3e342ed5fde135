"""The API's asynchronous read pool: the hottest read without a hop to a worker thread.

A sync route runs in a worker thread, and handing the request there and
the answer back costs the event loop about as much as the listing's query.
The reports list (polled by every client waiting for a report) therefore
reads on the event loop, through psycopg's asynchronous pool, in
autocommit: one statement, no BEGIN or ROLLBACK. Everything that writes, or
reads several statements that must agree, stays on the SQLAlchemy engine.

The pool belongs to one app (so to one event loop): it opens on first use
and closes with the app's lifespan. A pooled connection the server has hung
up on is replaced when it is taken, without a query, as the engine's pool
does (:func:`meritum_api.db.engine.hung_up`).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import psycopg
from psycopg_pool import AsyncConnectionPool

from meritum_api.db.cluster import libpq_dsn
from meritum_api.db.engine import hung_up


async def _refuse_hung_up(conn: psycopg.AsyncConnection[Any]) -> None:
    gone = hung_up(conn.pgconn)
    if gone is not None:
        # Closed, the pool discards it and opens another (a connection that
        # only failed its check would be handed out again).
        await conn.close()
        raise psycopg.OperationalError(gone)


#: Seconds a read waits for a pooled connection before failing.
WAIT_SECONDS = 5.0


class ReadPool:
    """Pooled asynchronous connections in autocommit, opened on first use."""

    def __init__(self, url: str, *, size: int) -> None:
        self._pool = AsyncConnectionPool(
            libpq_dsn(url),
            min_size=1,
            max_size=size,
            open=False,
            kwargs={"autocommit": True},
            check=_refuse_hung_up,
            # A read waits at most this long for a connection (queued behind
            # others, or the database unreachable) before it fails.
            timeout=WAIT_SECONDS,
            name="meritum-api-reads",
        )
        self._opened = False
        self._lock: asyncio.Lock | None = None

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
        """A connection for one read; it goes back to the pool when the block ends."""
        if not self._opened:
            await self._open()
        async with self._pool.connection() as conn:
            yield conn

    async def _open(self) -> None:
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            if not self._opened:
                await self._pool.open()
                self._opened = True

    async def close(self) -> None:
        """Close every connection (the app's shutdown); a pool never opened has none."""
        if self._opened:
            await self._pool.close()
