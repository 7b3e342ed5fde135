"""Rate limits with the ``limits`` library: a sliding window counter, kept in memory.

A sliding window counter keeps two counters per key and weighs the previous
window by how much of it still overlaps: constant time and memory per hit,
where a moving window stores (and scans) every hit. It may be off by a
small fraction around window edges, which a rate limit can afford.

The window lives in this process's memory. That is right for one API
process; several processes (or hosts) behind a load balancer would each
count separately and so allow N times the limit: they need a shared storage
(``limits`` supports Redis, Memcached, MongoDB) passed as ``storage``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable
from typing import Final

from limits import RateLimitItem, RateLimitItemPerSecond
from limits.aio import storage as aio_storage
from limits.aio import strategies as aio_strategies
from limits.storage import MemoryStorage, Storage
from limits.strategies import SlidingWindowCounterRateLimiter
from starlette.types import ASGIApp, Receive, Scope, Send

from meritum_api.http.errors import ApiError, api_error_response


class RateLimiter:
    """At most ``amount`` hits per ``seconds`` for each key, over a sliding window."""

    def __init__(self, *, amount: int, seconds: int, storage: Storage | None = None) -> None:
        self.item: RateLimitItem = RateLimitItemPerSecond(amount, seconds)
        self._limiter = SlidingWindowCounterRateLimiter(storage or MemoryStorage())

    def hit(self, key: str) -> int | None:
        """Count one hit: None when allowed, else the seconds to wait (Retry-After)."""
        if self._limiter.hit(self.item, key):
            return None
        return self.retry_after(key)

    def allowed(self, key: str) -> bool:
        """Whether a hit would be allowed now, without counting one."""
        return self._limiter.test(self.item, key)

    def retry_after(self, key: str) -> int:
        """Whole seconds until the oldest hit in the window leaves it."""
        reset_at = self._limiter.get_window_stats(self.item, key).reset_time
        return max(1, math.ceil(reset_at - time.time()))


class AsyncRateLimiter:
    """The same sliding window, for the event loop (the limit on every request).

    ``limits``' synchronous memory storage expires keys from a short-lived
    timer thread that it starts again whenever the last one has ended: on a
    busy server a new thread every few requests, each start blocking the
    event loop until the thread runs. Its asynchronous storage expires keys
    in a task on the loop instead.
    """

    def __init__(
        self, *, amount: int, seconds: int, storage: aio_storage.Storage | None = None
    ) -> None:
        self.item: RateLimitItem = RateLimitItemPerSecond(amount, seconds)
        self._limiter = aio_strategies.SlidingWindowCounterRateLimiter(
            storage or aio_storage.MemoryStorage()
        )

    async def hit(self, key: str) -> int | None:
        """Count one hit: None when allowed, else the seconds to wait (Retry-After)."""
        if await self._limiter.hit(self.item, key):
            return None
        reset_at = (await self._limiter.get_window_stats(self.item, key)).reset_time
        return max(1, math.ceil(reset_at - time.time()))


def rate_limited(retry_after: int) -> ApiError:
    """The 429 answer."""
    return ApiError.of(429, headers={"Retry-After": str(retry_after)})


#: Paths never limited: load balancers poll health.
DEFAULT_EXEMPT: Final = frozenset({"/health"})


class RateLimitMiddleware:
    """One limiter over all requests, keyed by the signed-in user or the client address.

    ``identify`` reads the key from the scope after authentication has run
    (the user id of a valid session); anonymous requests, and requests whose
    credential is invalid, count against their client address, so inventing
    tokens does not buy a fresh allowance.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        limiter: AsyncRateLimiter,
        identify: Callable[[Scope], str | None],
        exempt_paths: Iterable[str] = DEFAULT_EXEMPT,
    ) -> None:
        self.app = app
        self.limiter = limiter
        self.identify = identify
        self.exempt_paths = frozenset(exempt_paths)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("path") in self.exempt_paths:
            await self.app(scope, receive, send)
            return
        user = self.identify(scope)
        if user is not None:
            key = f"user:{user}"
        else:
            # Behind a reverse proxy this is the proxy's address unless the
            # server is told to trust its X-Forwarded-For (uvicorn
            # --forwarded-allow-ips).
            client = scope.get("client")
            key = f"ip:{client[0] if client else 'unknown'}"
        retry_after = await self.limiter.hit(key)
        if retry_after is not None:
            await api_error_response(rate_limited(retry_after))(scope, receive, send)
            return
        await self.app(scope, receive, send)
