"""Keeping a :class:`~meritum_api.auth.cache.SessionCache` current over LISTEN/NOTIFY.

One connection per API process listens on the announcement channel and on
a ping channel of its own, and sends itself a ping every ``ping_interval``
seconds. Announcements are applied to the cache as they arrive; a returning
ping confirms the cache current up to the moment it was sent (see the
cache module for why that bounds staleness). Any error, or a ping that does
not return within ``io_timeout``, closes the connection: the cache stops
answering within its staleness bound, and the listener reconnects with
backoff, emptying the cache before it is trusted again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections.abc import AsyncIterator
from typing import Final

import psycopg
from psycopg import sql

from meritum_api.auth.cache import CHANNEL, SessionCache

log = logging.getLogger("meritum.auth.listener")

#: Shown in ``pg_stat_activity``.
APPLICATION_NAME: Final = "meritum-session-listener"


class SessionListener:
    """The task that keeps one process's session cache current."""

    def __init__(
        self,
        *,
        conninfo: str,
        cache: SessionCache,
        ping_interval: float = 0.1,
        io_timeout: float = 2.0,
        max_backoff: float = 5.0,
    ) -> None:
        self.conninfo = conninfo
        self.cache = cache
        self.ping_interval = ping_interval
        self.io_timeout = io_timeout
        self.max_backoff = max_backoff
        self.ping_channel = f"meritum_auth_ping_{secrets.token_hex(8)}"
        #: The listening connection's backend pid (None while disconnected).
        self.backend_pid: int | None = None
        self.connections = 0

    async def run(self) -> None:
        """Listen until cancelled, reconnecting after any failure."""
        backoff = 0.05
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(
                    self.conninfo,
                    autocommit=True,
                    application_name=APPLICATION_NAME,
                    connect_timeout=max(2, int(self.io_timeout)),
                    # Notice a peer that vanished without closing the connection.
                    keepalives=1,
                    keepalives_idle=5,
                    keepalives_interval=2,
                    keepalives_count=2,
                ) as conn:
                    await self._listen(conn)
                    backoff = 0.05
                    await self._pump(conn)
            except asyncio.CancelledError:
                self.cache.distrust()
                raise
            except Exception as exc:  # any failure: distrust, then reconnect
                self.cache.distrust()
                log.warning(
                    "session listener: connection lost (%s); sessions are looked up in the "
                    "database until it is back",
                    type(exc).__name__,
                )
            finally:
                self.backend_pid = None
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, self.max_backoff)

    async def _listen(self, conn: psycopg.AsyncConnection[tuple[object, ...]]) -> None:
        async with asyncio.timeout(self.io_timeout):
            for channel in (CHANNEL, self.ping_channel):
                await conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(channel)))
        # Listening from here on; whatever was announced before may be missed.
        self.cache.reset()
        self.backend_pid = conn.info.backend_pid
        self.connections += 1
        log.info("session listener: listening (connection %d)", self.connections)

    async def _pump(self, conn: psycopg.AsyncConnection[tuple[object, ...]]) -> None:
        sent: dict[int, float] = {}
        seq = 0
        while True:
            seq += 1
            sent[seq] = time.monotonic()
            async with asyncio.timeout(self.io_timeout):
                await conn.execute("SELECT pg_notify(%s, %s)", (self.ping_channel, str(seq)))
            async for notify in conn.notifies(timeout=self.ping_interval):
                if notify.channel == CHANNEL:
                    self.cache.announce(notify.payload)
                    continue
                returned = int(notify.payload)
                sent_at = sent.get(returned)
                if sent_at is not None:
                    self.cache.confirm(sent_at)
                for older in [n for n in sent if n <= returned]:
                    del sent[older]
            oldest = min(sent, default=None)
            if oldest is not None and time.monotonic() - sent[oldest] > self.io_timeout:
                raise TimeoutError("a ping did not return")

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[SessionListener]:
        """Run the listener in the background for the duration of the block."""
        task = asyncio.create_task(self.run(), name="session-listener")
        try:
            yield self
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
