"""Serving an app over real HTTP for tests: uvicorn on 127.0.0.1, in a thread.

The app is the real ``create_app`` over a real PostgreSQL; only the process
boundary is saved. Session cookies are ``Secure`` outside development, and
httpx (like any cookie jar) will not send a Secure cookie over plain http,
so tests pass the cookie explicitly with :func:`cookie_header`, as a
browser on an HTTPS origin would.
"""

from __future__ import annotations

import itertools
import socket
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import uvicorn
from fastapi import FastAPI
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from factories import add_provider
from meritum_api.app import create_app
from meritum_api.auth.service import create_user
from meritum_api.auth.sessions import SESSION_COOKIE
from meritum_api.db.cluster import fast_root
from meritum_api.deps import Role, build_deps
from meritum_api.settings import Settings
from meritum_shared.constants.auth import Permission, UserRole
from workers import TEST_KEYS

PASSWORD = "correct horse battery staple"
_emails = itertools.count(1)


def settings_for(db_url: str, **overrides: Any) -> Settings:
    """Settings of a test app (environment ``test`` unless overridden).

    Report files go to a fresh directory under tmpfs, encrypted with the
    fixed test key.
    """
    storage = Path(tempfile.mkdtemp(prefix="meritum-api-", dir=fast_root()))
    values: dict[str, Any] = {
        "environment": "test",
        "database_url": db_url,
        "serve_with_worker": False,
        "master_keys": TEST_KEYS,
        "data_dir": storage,
        "storage_dir": storage / "reports",
    }
    values.update(overrides)
    return Settings(**values)


def build_app(engine: Engine, settings: Settings) -> FastAPI:
    """The product app over ``engine``, wired as ``meritum serve`` wires it."""
    assert settings.database_url is not None
    return create_app(build_deps(settings, settings.database_url, role=Role.SERVE, engine=engine))


@contextmanager
def serve(app: FastAPI) -> Iterator[str]:
    """Serve ``app`` on a free port of 127.0.0.1; yields its base URL."""
    # proto=IPPROTO_TCP matters: asyncio enables TCP_NODELAY only on sockets
    # that say they are TCP; without it every keep-alive response waits ~40 ms
    # for a delayed ACK (Nagle).
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        app,
        http="h11",
        ws="none",
        lifespan="on",
        server_header=False,
        date_header=True,
        access_log=True,
        # Leave logging alone: uvicorn's loggers then propagate to the root,
        # where pytest's caplog sees the access log too.
        log_config=None,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the test server did not start")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=20)
        sock.close()


@dataclass(frozen=True, slots=True)
class Account:
    user_id: uuid.UUID
    provider_id: uuid.UUID
    email: str
    password: str


def add_account(
    engine: Engine,
    *,
    role: UserRole = UserRole.PHYSICIAN,
    provider_id: uuid.UUID | None = None,
    permissions: set[Permission] | None = None,
    password: str = PASSWORD,
) -> Account:
    """Commit a user (and a provider when none is given)."""
    email = f"user{next(_emails)}.{uuid.uuid4().hex[:8]}@clinic.example"
    with Session(engine) as session:
        if provider_id is None:
            provider_id = add_provider(session)
        user_id = create_user(
            session=session,
            email=email,
            password=password,
            provider_id=provider_id,
            role=role,
            permissions=permissions,
        )
        session.commit()
    return Account(user_id=user_id, provider_id=provider_id, email=email, password=password)


def cookie_header(token: str) -> dict[str, str]:
    """The Cookie header a browser would send with the session cookie."""
    return {"Cookie": f"{SESSION_COOKIE}={token}"}


def bearer(token: str) -> dict[str, str]:
    """The Authorization header of an API client."""
    return {"Authorization": f"Bearer {token}"}
