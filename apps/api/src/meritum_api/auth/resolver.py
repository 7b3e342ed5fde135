"""Resolving a request's credential: from the session cache, else from the database."""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import AsyncIterator
from functools import partial

import anyio.to_thread
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker
from starlette.applications import Starlette

from meritum_api.auth import service
from meritum_api.auth.cache import SessionCache
from meritum_api.auth.invalidation import SessionListener
from meritum_api.auth.sessions import Credential, Principal, digest, well_formed
from meritum_api.db.cluster import libpq_dsn
from meritum_api.settings import Settings


class SessionResolver:
    """Who a credential belongs to; repeat look-ups are answered from memory.

    A cache hit costs a SHA-256 and a dictionary look-up on the event loop;
    a miss reads (and, when due, slides) the session in a worker thread, the
    database driver being blocking. The cache answers only while its
    listener keeps it confirmed current (:mod:`meritum_api.auth.cache`);
    without a running listener (:meth:`running`) every look-up goes to the
    database.
    """

    def __init__(
        self, *, engine: Engine, session_factory: sessionmaker[Session], settings: Settings
    ) -> None:
        self.settings = settings
        self.session_factory = session_factory
        self.cache = SessionCache(max_entries=settings.session_cache_size)
        self.listener = SessionListener(
            conninfo=libpq_dsn(engine.url.render_as_string(hide_password=False)),
            cache=self.cache,
        )

    async def resolve(self, credential: Credential) -> Principal | None:
        """The principal behind ``credential``, or None (unknown, expired or malformed)."""
        if not well_formed(credential.token):
            return None
        token_hash = digest(credential.token)
        cache = self.cache
        cached = cache.get(token_hash)
        if cached is not None:
            if cached.via != credential.via:
                cached = dataclasses.replace(cached, via=credential.via)
            return cached
        # Noted before the read: an announcement arriving while it runs
        # means the answer may already be stale, so it is not kept.
        generation, started = cache.generation, cache.clock()
        found = await anyio.to_thread.run_sync(
            partial(
                service.resolve_session,
                session_factory=self.session_factory,
                settings=self.settings,
                token_hash=token_hash,
                via=credential.via,
            )
        )
        if found is None:
            return None
        # Deadlines from durations the database measured, counted from
        # before the read: never later than the database's own.
        fresh_for = min(found.expires_in, found.touch_due_in)
        if fresh_for > 0:
            cache.put(
                token_hash, found.principal, fresh_until=started + fresh_for, generation=generation
            )
        return found.principal

    def forget(self, principal: Principal) -> None:
        """Drop a session this process just ended (its announcement follows)."""
        self.cache.forget_session(principal.session_id)

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[SessionResolver]:
        """Keep the cache current for the duration of the block (an app's lifespan)."""
        if self.settings.session_cache_size <= 0:
            yield self
            return
        async with self.listener.running():
            yield self


def forget_ended(app: Starlette, principal: Principal) -> None:
    """After a logout commits: the app's process stops accepting that session at once.

    The other processes hear of it from PostgreSQL within a second; this one
    need not wait for its own listener.
    """
    resolver = getattr(app.state, "sessions", None)
    if isinstance(resolver, SessionResolver):
        resolver.forget(principal)
