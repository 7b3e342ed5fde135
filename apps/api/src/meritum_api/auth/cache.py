"""An in-process cache of validated sessions that distrusts itself unless kept current.

Looking a session up costs a database round trip and a worker-thread hop on
every request; the cache answers repeat requests from memory. It is only as
good as its invalidation: PostgreSQL announces every revocation (logout, an
expiry moved earlier, a user's permissions or role changed) over
LISTEN/NOTIFY from triggers (migration 0008), and
:class:`~meritum_api.auth.invalidation.SessionListener` applies each
announcement here as it arrives.

Why a logged-out token is never accepted for more than ``staleness``
seconds, in any process, whatever happens to the listener:

- PostgreSQL delivers notifications in commit order. The listener keeps
  sending itself *pings* (a NOTIFY on a channel of its own) and records the
  local time each was sent. When a ping comes back, every change committed
  before the ping was sent has been delivered before it and applied.
- The cache answers only while the newest returned ping was sent less than
  ``staleness`` seconds ago. So if an entry is used at time *t*, every
  revocation committed before *t − staleness* has been applied: a revoked
  entry can survive at most ``staleness`` seconds.
- A lost, stalled or silently dead listener connection stops the pings,
  and within ``staleness`` every look-up goes to the database again (fail
  closed). A reconnect empties the cache before it is trusted again, since
  notifications sent while disconnected are gone.
- A look-up that reads the database races with revocations committed while
  it runs: it notes the cache's generation before reading and stores its
  answer only if no announcement arrived meanwhile.

Entries also carry deadlines of their own, computed from durations measured
by the database clock (never by comparing two clocks): the session's expiry,
and when its sliding expiry is due to be written again, after which the
next request goes to the database (which writes it).
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from meritum_api.auth.sessions import Principal

#: The channel the triggers of migration 0008 notify on.
CHANNEL: Final = "meritum_auth_changes"
#: Announcement payloads: ``session:<id>``, ``user:<id>``, or this (forget everything).
FORGET_ALL: Final = "*"

#: How old the newest confirmed ping may be for the cache to answer, in seconds.
DEFAULT_STALENESS: Final = 0.6


@dataclass(frozen=True, slots=True)
class _Entry:
    principal: Principal
    #: Local monotonic deadline: the session's expiry or its next touch, whichever is first.
    fresh_until: float


class SessionCache:
    """Validated sessions by token digest, answering only while confirmed current.

    Thread-safe: look-ups run on the event loop, fills may come from worker
    threads, announcements from the listener.
    """

    def __init__(
        self,
        *,
        max_entries: int,
        staleness: float = DEFAULT_STALENESS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_entries = max_entries
        self.staleness = staleness
        self.clock = clock
        self._lock = threading.Lock()
        # Insertion-ordered: the oldest entry is evicted first when full.
        self._entries: dict[bytes, _Entry] = {}
        self._by_session: dict[uuid.UUID, bytes] = {}
        self._by_user: dict[uuid.UUID, set[bytes]] = {}
        self._generation = 0
        #: Local time the newest returned ping was sent; None: not confirmed since (re)connect.
        self._confirmed_at: float | None = None

    # --- answering ---

    def trusted(self) -> bool:
        """Whether the cache is confirmed current (a ping returned within ``staleness``)."""
        confirmed = self._confirmed_at
        return confirmed is not None and self.clock() - confirmed < self.staleness

    def get(self, token_hash: bytes) -> Principal | None:
        """The cached principal for a token digest, if fresh and the cache is trusted."""
        if not self.trusted():
            return None
        entry = self._entries.get(token_hash)
        if entry is None or self.clock() >= entry.fresh_until:
            return None
        return entry.principal

    @property
    def generation(self) -> int:
        """Advances on every announcement; note it before reading the database."""
        return self._generation

    def put(
        self, token_hash: bytes, principal: Principal, *, fresh_until: float, generation: int
    ) -> bool:
        """Store a look-up's answer unless an announcement arrived since ``generation``."""
        if self.max_entries <= 0:
            return False
        with self._lock:
            if generation != self._generation:
                return False
            self._drop(token_hash)
            while len(self._entries) >= self.max_entries:
                self._drop(next(iter(self._entries)))
            self._entries[token_hash] = _Entry(principal, fresh_until)
            self._by_session[principal.session_id] = token_hash
            self._by_user.setdefault(principal.user_id, set()).add(token_hash)
        return True

    def __len__(self) -> int:
        return len(self._entries)

    # --- keeping current ---

    def announce(self, payload: str) -> None:
        """Apply one announcement from the database (an unknown payload forgets everything)."""
        kind, _, value = payload.partition(":")
        try:
            key = uuid.UUID(value) if kind in ("session", "user") else None
        except ValueError:
            key = None
        if key is None:
            self.forget_all()
        elif kind == "session":
            self.forget_session(key)
        else:
            self.forget_user(key)

    def forget_session(self, session_id: uuid.UUID) -> None:
        """Drop one session's entry."""
        with self._lock:
            self._generation += 1
            token_hash = self._by_session.get(session_id)
            if token_hash is not None:
                self._drop(token_hash)

    def forget_user(self, user_id: uuid.UUID) -> None:
        """Drop every entry of one user."""
        with self._lock:
            self._generation += 1
            for token_hash in list(self._by_user.get(user_id, ())):
                self._drop(token_hash)

    def forget_all(self) -> None:
        """Drop every entry."""
        with self._lock:
            self._generation += 1
            self._entries.clear()
            self._by_session.clear()
            self._by_user.clear()

    def confirm(self, sent_at: float) -> None:
        """A ping sent at local time ``sent_at`` came back: everything before it is applied."""
        with self._lock:
            if self._confirmed_at is None or sent_at > self._confirmed_at:
                self._confirmed_at = sent_at

    def distrust(self) -> None:
        """Stop answering until pings are confirmed again (the listener lost its connection)."""
        with self._lock:
            self._confirmed_at = None

    def reset(self) -> None:
        """Forget everything and distrust (a fresh listener connection may have missed changes)."""
        with self._lock:
            self._confirmed_at = None
        self.forget_all()

    def _drop(self, token_hash: bytes) -> None:
        entry = self._entries.pop(token_hash, None)
        if entry is None:
            return
        principal = entry.principal
        if self._by_session.get(principal.session_id) == token_hash:
            del self._by_session[principal.session_id]
        tokens = self._by_user.get(principal.user_id)
        if tokens is not None:
            tokens.discard(token_hash)
            if not tokens:
                del self._by_user[principal.user_id]
