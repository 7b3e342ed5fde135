"""The in-process session cache: what it answers, and that revocations reach it in time.

Three layers, each against the real thing: the cache's rules on their own
(with a hand-turned clock), the triggers and the listener against real
PostgreSQL (including a connection that goes silent mid-stream), and two
``meritum serve`` processes sharing one database, where a logout, an expiry
and a delegate's lost permission must be honoured by the other process
within one second.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import psycopg
import pytest
from sqlalchemy import Engine, text
from sqlalchemy.engine import make_url

from apiserver import Account, add_account, bearer
from meritum_api.auth.cache import CHANNEL, SessionCache
from meritum_api.auth.invalidation import APPLICATION_NAME, SessionListener
from meritum_api.auth.sessions import Principal
from meritum_api.db.cluster import libpq_dsn
from meritum_shared.constants.auth import PHYSICIAN_PERMISSIONS, Permission, UserRole
from polling import wait_until
from processes import ApiProcess, process_env

ME = "/api/v1/auth/me"
LIST = "/api/v1/reports"

# --- the cache's rules, with a clock turned by hand ---


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _principal(user_id: uuid.UUID | None = None) -> Principal:
    return Principal(
        session_id=uuid.uuid4(),
        user_id=user_id or uuid.uuid4(),
        provider_id=uuid.uuid4(),
        role=UserRole.PHYSICIAN,
        permissions=PHYSICIAN_PERMISSIONS,
        expires_at=datetime.now(UTC),
        via="bearer",
        csrf_token_hash=b"c" * 32,
    )


def _confirmed_cache(clock: Clock, **kwargs: Any) -> SessionCache:
    cache = SessionCache(max_entries=kwargs.pop("max_entries", 100), clock=clock, **kwargs)
    cache.confirm(clock.now)
    return cache


def test_answers_only_while_a_ping_was_confirmed_within_the_staleness_bound() -> None:
    clock = Clock()
    cache = SessionCache(max_entries=10, staleness=0.6, clock=clock)
    principal = _principal()
    assert cache.put(b"t", principal, fresh_until=clock.now + 60, generation=cache.generation)
    assert cache.get(b"t") is None  # never confirmed: not trusted
    cache.confirm(clock.now)
    assert cache.get(b"t") == principal
    clock.now += 0.59
    assert cache.get(b"t") == principal
    clock.now += 0.02
    assert not cache.trusted()
    assert cache.get(b"t") is None  # the listener fell silent: fail closed
    cache.confirm(clock.now - 0.1)
    assert cache.get(b"t") == principal
    cache.distrust()
    assert cache.get(b"t") is None


def test_an_entry_ends_at_its_own_deadline() -> None:
    clock = Clock()
    cache = _confirmed_cache(clock, staleness=100)
    principal = _principal()
    cache.put(b"t", principal, fresh_until=clock.now + 5, generation=cache.generation)
    clock.now += 4.99
    assert cache.get(b"t") == principal
    clock.now += 0.01
    assert cache.get(b"t") is None


def test_an_answer_read_before_an_announcement_is_not_kept() -> None:
    clock = Clock()
    cache = _confirmed_cache(clock)
    noted = cache.generation
    cache.announce(f"session:{uuid.uuid4()}")  # arrives while the look-up runs
    assert not cache.put(b"t", _principal(), fresh_until=clock.now + 60, generation=noted)
    assert cache.get(b"t") is None
    assert len(cache) == 0


def test_announcements_drop_the_session_the_user_or_everything() -> None:
    clock = Clock()
    cache = _confirmed_cache(clock)
    user = uuid.uuid4()
    one, two, other = _principal(user), _principal(user), _principal()
    for token, principal in ((b"1", one), (b"2", two), (b"3", other)):
        cache.put(token, principal, fresh_until=clock.now + 60, generation=cache.generation)

    cache.announce(f"session:{one.session_id}")
    assert (cache.get(b"1"), cache.get(b"2"), cache.get(b"3")) == (None, two, other)
    cache.put(b"1", one, fresh_until=clock.now + 60, generation=cache.generation)
    cache.announce(f"user:{user}")
    assert (cache.get(b"1"), cache.get(b"2"), cache.get(b"3")) == (None, None, other)
    cache.announce("*")
    assert cache.get(b"3") is None
    cache.put(b"3", other, fresh_until=clock.now + 60, generation=cache.generation)
    cache.announce("something unexpected")  # unknown: forget everything, to be safe
    assert len(cache) == 0


def test_reset_forgets_everything_and_waits_for_a_new_confirmation() -> None:
    clock = Clock()
    cache = _confirmed_cache(clock)
    cache.put(b"t", _principal(), fresh_until=clock.now + 60, generation=cache.generation)
    noted = cache.generation
    cache.reset()
    assert not cache.trusted()
    assert len(cache) == 0
    assert not cache.put(b"u", _principal(), fresh_until=clock.now + 60, generation=noted)


def test_the_oldest_entry_makes_room_and_its_indexes_go_with_it() -> None:
    clock = Clock()
    cache = _confirmed_cache(clock, max_entries=2)
    first, second, third = _principal(), _principal(), _principal()
    for token, principal in ((b"1", first), (b"2", second), (b"3", third)):
        assert cache.put(token, principal, fresh_until=clock.now + 60, generation=cache.generation)
    assert len(cache) == 2
    assert (cache.get(b"1"), cache.get(b"2"), cache.get(b"3")) == (None, second, third)
    cache.announce(f"user:{first.user_id}")  # an evicted entry's user: nothing left to drop
    assert len(cache) == 2


def test_a_size_of_zero_keeps_nothing() -> None:
    clock = Clock()
    cache = _confirmed_cache(clock, max_entries=0)
    assert not cache.put(b"t", _principal(), fresh_until=clock.now + 60, generation=0)


# --- the triggers that announce revocations ---


@pytest.fixture
def announcements(db_url: str) -> Iterator[Callable[[], list[str]]]:
    """A LISTEN connection; calling the fixture drains what arrived so far."""
    with psycopg.connect(libpq_dsn(db_url), autocommit=True) as conn:
        conn.execute(f"LISTEN {CHANNEL}")

        def drain() -> list[str]:
            # A round trip of our own: everything committed before it has arrived.
            conn.execute("SELECT 1")
            return [n.payload for n in conn.notifies(timeout=0.2)]

        yield drain


def _login_row(engine: Engine, account: Account) -> uuid.UUID:
    from sqlalchemy.orm import Session

    from meritum_api.auth.service import LoginResult, login
    from meritum_api.settings import Settings

    with Session(engine) as session, session.begin():
        result = login(
            session=session,
            settings=Settings(environment="test"),
            email=account.email,
            password=account.password,
        )
    assert isinstance(result, LoginResult)
    return result.principal.session_id


def test_revoking_or_restricting_announces_and_touching_does_not(
    engine: Engine, announcements: Callable[[], list[str]]
) -> None:
    physician = add_account(engine)
    delegate = add_account(
        engine,
        role=UserRole.DELEGATE,
        provider_id=physician.provider_id,
        permissions={Permission.REPORT_VIEW},
    )
    first, second = _login_row(engine, physician), _login_row(engine, delegate)
    announcements()

    def run(sql: str, **params: Any) -> list[str]:
        with engine.begin() as conn:
            conn.execute(text(sql), params)
        return announcements()

    # A touch moves the expiry later: nothing to announce.
    touch = (
        "UPDATE auth_sessions SET last_seen_at = now(), expires_at = expires_at + interval '1 hour'"
    )
    assert run(touch + " WHERE session_id = :s", s=first) == []
    # Moving an expiry earlier, or ending a session, is a revocation.
    earlier = (
        "UPDATE auth_sessions SET expires_at = now() + interval '1 minute' WHERE session_id = :s"
    )
    assert run(earlier, s=first) == [f"session:{first}"]
    # A rehashed password changes nothing a session carries.
    rehash = "UPDATE users SET password_hash = password_hash, updated_at = now() WHERE user_id = :u"
    assert run(rehash, u=physician.user_id) == []
    grant = "UPDATE users SET permissions = :p WHERE user_id = :u"
    assert run(grant, p=["REPORT_VIEW", "REPORT_EXPORT"], u=delegate.user_id) == [
        f"user:{delegate.user_id}"
    ]
    assert run("DELETE FROM auth_sessions WHERE session_id = :s", s=second) == [f"session:{second}"]
    # Purging sessions that already expired announces nothing: no cache holds them.
    expired = (
        "UPDATE auth_sessions SET created_at = now() - interval '2 days', "
        "expires_at = now() - interval '1 second' WHERE session_id = :s"
    )
    assert run(expired, s=first) == [f"session:{first}"]
    assert run("DELETE FROM auth_sessions WHERE session_id = :s", s=first) == []


def test_an_announcement_is_sent_only_if_its_transaction_commits(
    engine: Engine, announcements: Callable[[], list[str]]
) -> None:
    physician = add_account(engine)
    session_id = _login_row(engine, physician)
    announcements()
    with engine.connect() as conn:
        conn.execute(text("DELETE FROM auth_sessions WHERE session_id = :s"), {"s": session_id})
        conn.rollback()
    assert announcements() == []


# --- the listener against real PostgreSQL ---


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def _eventually(predicate: Callable[[], bool], *, timeout: float, what: str) -> float:
    started = time.monotonic()
    while not predicate():
        if time.monotonic() - started > timeout:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(0.01)
    return time.monotonic() - started


class FreezableProxy:
    """TCP on 127.0.0.1 relayed to the cluster's unix socket; ``freeze`` stops every byte.

    A frozen relay is a connection that died without a word: nothing is
    closed, nothing arrives.
    """

    def __init__(self, unix_socket: str) -> None:
        self.unix_socket = unix_socket
        self.thawed = asyncio.Event()
        self.thawed.set()
        self.port = 0
        self._tasks: set[asyncio.Task[None]] = set()

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, asyncio.CancelledError):
            while data := await reader.read(65536):
                await self.thawed.wait()
                writer.write(data)
                await writer.drain()
        writer.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_unix_connection(self.unix_socket)
        for pipe in (self._pipe(reader, up_writer), self._pipe(up_reader, writer)):
            task = asyncio.create_task(pipe)
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[FreezableProxy]:
        server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = server.sockets[0].getsockname()[1]
        try:
            yield self
        finally:
            server.close()
            for task in list(self._tasks):
                task.cancel()


def _tcp_conninfo(db_url: str, port: int) -> str:
    url = make_url(db_url)
    return f"host=127.0.0.1 port={port} dbname={url.database} user={url.username}"


def _unix_socket(db_url: str) -> str:
    url = make_url(db_url)
    return f"{url.query['host']}/.s.PGSQL.{url.port or 5432}"


@pytest.mark.anyio
async def test_listener_applies_announcements_and_confirms_itself(
    db_url: str, engine: Engine
) -> None:
    cache = SessionCache(max_entries=100)
    listener = SessionListener(conninfo=libpq_dsn(db_url), cache=cache)
    principal = _principal()
    async with listener.running():
        await _eventually(cache.trusted, timeout=10, what="the first confirmed ping")
        assert cache.put(
            b"t", principal, fresh_until=time.monotonic() + 60, generation=cache.generation
        )
        with engine.begin() as conn:
            conn.execute(
                text("SELECT pg_notify(:c, :p)"),
                {"c": CHANNEL, "p": f"session:{principal.session_id}"},
            )
        await _eventually(lambda: len(cache) == 0, timeout=1, what="the announcement")
        assert cache.trusted()
    assert not cache.trusted()  # stopped: nobody keeps it current any more


@pytest.mark.anyio
async def test_a_terminated_listener_connection_fails_closed_and_reconnects_empty(
    db_url: str, engine: Engine
) -> None:
    cache = SessionCache(max_entries=100)
    listener = SessionListener(conninfo=libpq_dsn(db_url), cache=cache)
    async with listener.running():
        await _eventually(cache.trusted, timeout=10, what="the first confirmed ping")
        assert cache.put(
            b"t", _principal(), fresh_until=time.monotonic() + 60, generation=cache.generation
        )
        assert listener.connections == 1
        with engine.begin() as conn:
            conn.execute(
                text("SELECT pg_terminate_backend(:pid, 5000)"), {"pid": listener.backend_pid}
            )
        await _eventually(lambda: listener.connections == 2, timeout=10, what="a reconnect")
        # Announcements sent while it was away are lost: it starts empty.
        assert len(cache) == 0
        await _eventually(cache.trusted, timeout=10, what="trust after the reconnect")


@pytest.mark.anyio
async def test_a_silently_dead_listener_connection_stops_the_cache_within_the_bound(
    db_url: str,
) -> None:
    cache = SessionCache(max_entries=100)
    async with FreezableProxy(_unix_socket(db_url)).running() as proxy:
        listener = SessionListener(
            conninfo=_tcp_conninfo(db_url, proxy.port), cache=cache, io_timeout=1.0
        )
        async with listener.running():
            await _eventually(cache.trusted, timeout=10, what="the first confirmed ping")
            assert cache.put(
                b"t", _principal(), fresh_until=time.monotonic() + 60, generation=cache.generation
            )

            # A stall shorter than the listener's patience: distrusted meanwhile,
            # trusted again once the pings return, and nothing was lost.
            proxy.thawed.clear()  # no error, no close: the bytes just stop
            frozen_at = time.monotonic()
            await _eventually(lambda: not cache.trusted(), timeout=2, what="distrust")
            assert time.monotonic() - frozen_at < 1.0
            assert cache.get(b"t") is None
            proxy.thawed.set()
            await _eventually(cache.trusted, timeout=5, what="trust after the stall")
            assert cache.get(b"t") is not None
            assert listener.connections == 1

            # A connection that stays silent is given up; the next one starts empty.
            proxy.thawed.clear()
            await _eventually(lambda: listener.backend_pid is None, timeout=15, what="giving up")
            assert not cache.trusted()
            proxy.thawed.set()
            await _eventually(lambda: listener.connections == 2, timeout=15, what="a reconnect")
            await _eventually(cache.trusted, timeout=10, what="trust after the reconnect")
            assert cache.get(b"t") is None


# --- two API processes sharing one database ---


@pytest.fixture(scope="module")
def servers(db_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[str]]:
    """Two ``meritum serve`` processes (no worker) on the module's database."""
    root = tmp_path_factory.mktemp("session-cache")
    settings = {"rate_limit_per_minute": "100000"}
    with (
        ApiProcess(process_env(db_url, root / "a", **settings), root / "a.log") as a,
        ApiProcess(process_env(db_url, root / "b", **settings), root / "b.log") as b,
    ):
        a.wait_healthy()
        b.wait_healthy()
        yield [a.url, b.url]


@pytest.fixture(scope="module")
def physician(engine: Engine) -> Account:
    return add_account(engine)


def _login(base: str, account: Account) -> dict[str, Any]:
    response = httpx.post(
        f"{base}/api/v1/auth/login",
        json={"email": account.email, "password": account.password},
        timeout=30,
    )
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()["data"]
    return data


def _warm(bases: list[str], path: str, token: str) -> None:
    for base in bases:
        for _ in range(3):
            assert httpx.get(base + path, headers=bearer(token), timeout=30).status_code == 200


def _accepted_until_refused(
    base: str, path: str, token: str, *, refused: int, since: float, timeout: float = 10
) -> float:
    """Poll until ``refused``; returns how long after ``since`` the last acceptance was answered.

    Each poll's answer time bounds when the server accepted it, and
    ``since`` (taken before the change was even sent) bounds when it
    committed, so the figure can only overstate the delay.
    """
    last_accepted = since
    deadline = time.monotonic() + timeout
    while True:
        status = httpx.get(base + path, headers=bearer(token), timeout=30).status_code
        answered = time.monotonic()
        if status == refused:
            return last_accepted - since
        assert status == 200, status
        last_accepted = answered
        assert answered < deadline, f"still accepted after {timeout} s"
        time.sleep(0.01)


def _sql(engine: Engine, sql: str, **params: Any) -> None:
    with engine.begin() as conn:
        conn.execute(text(sql), params)


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def test_a_logout_through_one_process_is_refused_by_the_other_within_a_second(
    servers: list[str], physician: Account
) -> None:
    a, b = servers
    token = _login(a, physician)["token"]
    _warm(servers, ME, token)
    sent = time.monotonic()
    assert httpx.post(f"{a}/api/v1/auth/logout", headers=bearer(token)).status_code == 204
    assert httpx.get(a + ME, headers=bearer(token)).status_code == 401  # at once where it ended
    assert _accepted_until_refused(b, ME, token, refused=401, since=sent) < 1.0
    for base in servers:
        assert httpx.get(base + ME, headers=bearer(token)).status_code == 401


def test_the_caches_answer_from_memory_until_told_otherwise(
    servers: list[str], physician: Account, engine: Engine
) -> None:
    # Proof that the processes above were really answering from their caches:
    # the row goes without an announcement (triggers off, as a replica
    # applies changes), and both still accept the token, until the
    # announcement is sent by hand.
    token = _login(servers[0], physician)["token"]
    _warm(servers, ME, token)
    with engine.begin() as conn:
        conn.execute(text("SET LOCAL session_replication_role = replica"))
        session_id = conn.execute(
            text("DELETE FROM auth_sessions WHERE token_hash = :h RETURNING session_id"),
            {"h": _digest(token)},
        ).scalar_one()
    for base in servers:
        assert httpx.get(base + ME, headers=bearer(token)).status_code == 200
    sent = time.monotonic()
    _sql(engine, "SELECT pg_notify(:c, :p)", c=CHANNEL, p=f"session:{session_id}")
    for base in servers:
        assert _accepted_until_refused(base, ME, token, refused=401, since=sent) < 1.0


def test_losing_the_listener_connection_stops_trusting_the_cache(
    servers: list[str], physician: Account, engine: Engine
) -> None:
    token = _login(servers[0], physician)["token"]
    _warm(servers, ME, token)
    sent = time.monotonic()
    with engine.begin() as conn:
        # The session goes unannounced while the listeners lose their connections.
        conn.execute(text("SET LOCAL session_replication_role = replica"))
        conn.execute(text("DELETE FROM auth_sessions WHERE token_hash = :h"), {"h": _digest(token)})
        conn.execute(
            text(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE application_name = :name AND datname = current_database()"
            ),
            {"name": APPLICATION_NAME},
        )
    for base in servers:
        assert _accepted_until_refused(base, ME, token, refused=401, since=sent) < 1.0


def test_a_delegate_who_loses_a_permission_is_refused_by_both_within_a_second(
    servers: list[str], physician: Account, engine: Engine
) -> None:
    delegate = add_account(
        engine,
        role=UserRole.DELEGATE,
        provider_id=physician.provider_id,
        permissions={Permission.REPORT_VIEW, Permission.REPORT_EXPORT},
    )
    token = _login(servers[1], delegate)["token"]
    _warm(servers, LIST, token)
    sent = time.monotonic()
    _sql(
        engine,
        "UPDATE users SET permissions = :p WHERE user_id = :u",
        p=["REPORT_EXPORT"],
        u=delegate.user_id,
    )
    for base in servers:
        assert _accepted_until_refused(base, LIST, token, refused=403, since=sent) < 1.0
        me = httpx.get(base + ME, headers=bearer(token)).json()["data"]
        assert me["permissions"] == ["REPORT_EXPORT"]
    # Granted again: both see it as soon (a new look-up, not the old entry).
    _sql(
        engine,
        "UPDATE users SET permissions = :p WHERE user_id = :u",
        p=["REPORT_VIEW"],
        u=delegate.user_id,
    )
    for base in servers:

        def allowed(base: str = base) -> bool:
            return httpx.get(base + LIST, headers=bearer(token)).status_code == 200

        wait_until(allowed, timeout=1, what="the permission granted again")


#: How far the test's estimate of the expiry instant may lag the database's.
CLOCK_SLACK = 0.05


def test_a_cached_session_ends_when_it_expires(
    servers: list[str], physician: Account, engine: Engine
) -> None:
    token = _login(servers[0], physician)["token"]
    _warm(servers, ME, token)
    # An earlier expiry is announced; the caches read the session again and
    # keep it only until then. Expiry itself announces nothing.
    _sql(
        engine,
        "UPDATE auth_sessions SET expires_at = now() + interval '1.5 seconds' "
        "WHERE token_hash = :h",
        h=_digest(token),
    )
    with engine.connect() as conn:
        expires_in = conn.execute(
            text(
                "SELECT extract(epoch FROM expires_at - now()) FROM auth_sessions "
                "WHERE token_hash = :h"
            ),
            {"h": _digest(token)},
        ).scalar_one()
    expires_at = time.monotonic() + float(expires_in)
    _warm(servers, ME, token)
    for base in servers:
        late = _accepted_until_refused(base, ME, token, refused=401, since=expires_at)
        # Nothing accepted after the expiry, within how well this test knows the
        # database's instant of expiry (one round trip, measured above).
        assert late <= CLOCK_SLACK


@pytest.fixture(scope="module")
def sliding_servers(db_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[str]]:
    """Two processes that write the sliding expiry at most once a second."""
    root = tmp_path_factory.mktemp("session-cache-sliding")
    settings = {"rate_limit_per_minute": "100000", "session_touch_interval_seconds": "1"}
    with (
        ApiProcess(process_env(db_url, root / "a", **settings), root / "a.log") as a,
        ApiProcess(process_env(db_url, root / "b", **settings), root / "b.log") as b,
    ):
        a.wait_healthy()
        b.wait_healthy()
        yield [a.url, b.url]


def test_the_expiry_still_slides_while_the_caches_answer(
    sliding_servers: list[str], physician: Account, engine: Engine
) -> None:
    token = _login(sliding_servers[0], physician)["token"]

    def seen() -> tuple[datetime, datetime]:
        with engine.connect() as conn:
            row = conn.execute(
                text("SELECT last_seen_at, expires_at FROM auth_sessions WHERE token_hash = :h"),
                {"h": _digest(token)},
            ).one()
        return row.last_seen_at, row.expires_at

    first_seen, first_expiry = seen()
    slid: list[datetime] = []

    def used_and_slid() -> bool:
        for base in sliding_servers:
            assert httpx.get(base + ME, headers=bearer(token)).status_code == 200
        last_seen, expiry = seen()
        if expiry > first_expiry and last_seen > first_seen:
            slid.append(expiry)
        return len(slid) > 0 and (last_seen - first_seen).total_seconds() >= 2

    wait_until(used_and_slid, timeout=15, what="the expiry written again while in use")
    assert slid[-1] > first_expiry
