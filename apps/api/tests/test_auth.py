"""Sign-in, sessions, CSRF and permissions, over real HTTP and real PostgreSQL."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

import httpx
import psycopg
import pytest
from argon2 import PasswordHasher
from fastapi import APIRouter, Depends, FastAPI
from sqlalchemy import Engine, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from apiserver import (
    PASSWORD,
    Account,
    add_account,
    bearer,
    build_app,
    cookie_header,
    serve,
    settings_for,
)
from factories import add_provider
from meritum_api.auth import passwords
from meritum_api.auth.dependencies import require
from meritum_api.auth.service import create_user, purge_expired_sessions
from meritum_api.context import AuthContext
from meritum_shared.constants.auth import Permission, UserRole

LOGIN = "/api/v1/auth/login"
LOGOUT = "/api/v1/auth/logout"
ME = "/api/v1/auth/me"

# --- a test-only router: routes guarded by permissions, with a visible side effect ---

probe = APIRouter(prefix="/test-probe")
exports: list[uuid.UUID] = []


@probe.get("/view")
def probe_view(
    ctx: Annotated[AuthContext, Depends(require(Permission.REPORT_VIEW))],
) -> dict[str, Any]:
    return {"data": {"provider_id": str(ctx.provider_id)}}


@probe.post("/export")
def probe_export(
    ctx: Annotated[AuthContext, Depends(require(Permission.REPORT_EXPORT))],
) -> dict[str, Any]:
    exports.append(ctx.provider_id)
    return {"data": {"exported": True}}


def _app(engine: Engine, db_url: str, **overrides: Any) -> FastAPI:
    settings = {"rate_limit_per_minute": 10_000, "login_max_failures": 3, **overrides}
    app = build_app(engine, settings_for(db_url, **settings))
    app.include_router(probe)
    return app


@pytest.fixture(scope="module")
def base_url(engine: Engine, db_url: str) -> Iterator[str]:
    with serve(_app(engine, db_url)) as url:
        yield url


@pytest.fixture
def client(base_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=base_url, timeout=30) as c:
        yield c


@pytest.fixture(scope="module")
def physician(engine: Engine) -> Account:
    return add_account(engine)


def login(client: httpx.Client, account: Account) -> dict[str, Any]:
    """Sign in; returns the response's data (with ``token`` and ``csrf_token``)."""
    response = client.post(LOGIN, json={"email": account.email, "password": account.password})
    assert response.status_code == 200, response.text
    client.cookies.clear()  # every test states the credential it sends
    data: dict[str, Any] = response.json()["data"]
    return data


def cookie_attributes(response: httpx.Response) -> dict[str, str]:
    (header,) = response.headers.get_list("set-cookie")
    first, *attributes = (part.strip() for part in header.split(";"))
    name, _, value = first.partition("=")
    parsed = {"name": name, "value": value}
    for attribute in attributes:
        key, _, val = attribute.partition("=")
        parsed[key.lower()] = val
    return parsed


def session_row(engine: Engine, token: str) -> dict[str, Any] | None:
    with engine.connect() as conn:
        row = (
            conn.execute(
                text("SELECT * FROM auth_sessions WHERE token_hash = :h"),
                {"h": hashlib.sha256(token.encode()).digest()},
            )
            .mappings()
            .one_or_none()
        )
    return dict(row) if row is not None else None


# --- login ---


def test_login_answers_the_user_and_sets_a_hardened_cookie(
    client: httpx.Client, physician: Account
) -> None:
    response = client.post(
        LOGIN, json={"email": physician.email.upper(), "password": physician.password}
    )
    assert response.status_code == 200
    data = response.json()["data"]
    assert data["user_id"] == str(physician.user_id)
    assert data["provider_id"] == str(physician.provider_id)
    assert data["role"] == "physician"
    assert data["permissions"] == [p.value for p in Permission]
    assert datetime.fromisoformat(data["expires_at"]) > datetime.now(UTC) + timedelta(hours=23)
    assert len(data["csrf_token"]) >= 43
    cookie = cookie_attributes(response)
    assert cookie["name"] == "meritum_session"
    assert cookie["value"] == data["token"]
    assert "httponly" in cookie
    assert cookie["samesite"].lower() == "lax"
    assert cookie["path"] == "/"
    assert "secure" in cookie  # environment "test" is not development
    assert "max-age" not in cookie  # the server decides when the session ends
    assert "expires" not in cookie


@pytest.mark.parametrize("environment", ["production", "development"])
def test_cookie_is_secure_everywhere_but_development(
    engine: Engine, db_url: str, physician: Account, environment: str
) -> None:
    with (
        serve(_app(engine, db_url, environment=environment)) as url,
        httpx.Client(base_url=url) as c,
    ):
        response = c.post(LOGIN, json={"email": physician.email, "password": PASSWORD})
    assert response.status_code == 200
    cookie = cookie_attributes(response)
    assert "httponly" in cookie
    assert cookie["samesite"].lower() == "lax"
    if environment == "development":
        assert "secure" not in cookie
        assert "strict-transport-security" not in response.headers
    else:
        assert "secure" in cookie
        assert response.headers["strict-transport-security"].startswith("max-age=")


def test_wrong_password_and_unknown_email_answer_identically(
    client: httpx.Client, physician: Account, monkeypatch: pytest.MonkeyPatch
) -> None:
    verifications: list[str] = []
    real = passwords._hasher

    class Counting(PasswordHasher):
        def verify(self, hash: str | bytes, password: str | bytes) -> Literal[True]:
            verifications.append("verify")
            return real.verify(hash, password)

    monkeypatch.setattr(passwords, "_hasher", Counting())
    wrong = client.post(LOGIN, json={"email": physician.email, "password": "not-the-password"})
    assert verifications == ["verify"]
    unknown = client.post(
        LOGIN, json={"email": "nobody@clinic.example", "password": "not-the-password"}
    )
    assert verifications == ["verify", "verify"]  # no timing shortcut for unknown emails
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json() == unknown.json()
    assert wrong.json() == {
        "error": {"code": "INVALID_CREDENTIALS", "message": "Invalid email or password"}
    }
    assert "set-cookie" not in wrong.headers
    assert "set-cookie" not in unknown.headers
    assert wrong.headers["www-authenticate"] == unknown.headers["www-authenticate"]


def test_repeated_failures_for_one_email_are_throttled(
    client: httpx.Client, engine: Engine
) -> None:
    account = add_account(engine)
    for _ in range(3):
        failed = client.post(LOGIN, json={"email": account.email, "password": "wrong-password"})
        assert failed.status_code == 401
    throttled = client.post(LOGIN, json={"email": account.email, "password": account.password})
    assert throttled.status_code == 429
    assert throttled.json()["error"]["code"] == "RATE_LIMITED"
    assert int(throttled.headers["retry-after"]) >= 1


def test_cross_origin_login_is_refused(client: httpx.Client, physician: Account) -> None:
    body = {"email": physician.email, "password": physician.password}
    foreign = client.post(LOGIN, json=body, headers={"Origin": "https://evil.example"})
    assert foreign.status_code == 403
    assert foreign.json()["error"]["code"] == "CSRF_FAILED"
    assert "set-cookie" not in foreign.headers
    null_origin = client.post(LOGIN, json=body, headers={"Origin": "null"})
    assert null_origin.status_code == 403
    cross_site = client.post(LOGIN, json=body, headers={"Sec-Fetch-Site": "cross-site"})
    assert cross_site.status_code == 403
    same = client.post(LOGIN, json=body, headers={"Origin": str(client.base_url).rstrip("/")})
    assert same.status_code == 200
    proxied = client.post(
        LOGIN,
        json=body,
        headers={
            "Origin": "https://app.meritum.example",
            "X-Forwarded-Host": "app.meritum.example",
        },
    )
    assert proxied.status_code == 200


def test_login_rehashes_a_hash_made_with_old_parameters(
    client: httpx.Client, engine: Engine
) -> None:
    account = add_account(engine)
    weak = PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1).hash(account.password)
    with engine.begin() as conn:
        conn.execute(
            text("UPDATE users SET password_hash = :h WHERE user_id = :u"),
            {"h": weak, "u": account.user_id},
        )
    login(client, account)
    with engine.connect() as conn:
        stored = conn.execute(
            text("SELECT password_hash FROM users WHERE user_id = :u"), {"u": account.user_id}
        ).scalar_one()
    assert stored != weak
    assert "m=65536,t=3,p=4" in stored
    assert PasswordHasher().verify(stored, account.password)


NUL_MESSAGE = "Must not contain a NUL character"
SURROGATE_MESSAGE = "Must be text that can be encoded as UTF-8"


def _auth_rows(engine: Engine) -> tuple[int, ...]:
    with engine.connect() as conn:
        return tuple(
            conn.execute(text(f"SELECT count(*) FROM {table}")).scalar_one()
            for table in ("auth_sessions", "audit_log", "users")
        )


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        # NUL reached PostgreSQL (psycopg.DataError, a 500) before the fix.
        (
            b'{"email": "dr\\u0000@clinic.example", "password": "%(password)s"}',
            "email",
            NUL_MESSAGE,
        ),
        # A lone surrogate reached argon2 (UnicodeEncodeError, a 500).
        (b'{"email": "%(email)s", "password": "\\ud800"}', "password", SURROGATE_MESSAGE),
        (b'{"email": "%(email)s", "password": "pass\\u0000word-long"}', "password", NUL_MESSAGE),
        (
            b'{"email": "dr\\udfff@clinic.example", "password": "%(password)s"}',
            "email",
            SURROGATE_MESSAGE,
        ),
        # The same surrogate as raw bytes (invalid UTF-8 that Python's JSON decoder lets through).
        (b'{"email": "%(email)s", "password": "\xed\xa0\x80"}', "password", SURROGATE_MESSAGE),
        # Bytes that are no UTF-8 at all.
        (
            b'{"email": "dr\xff@clinic.example", "password": "%(password)s"}',
            "body",
            "The request body must be UTF-8 encoded JSON",
        ),
    ],
)
def test_malformed_text_is_refused_before_the_database_or_the_hash(
    client: httpx.Client,
    engine: Engine,
    physician: Account,
    body: bytes,
    field: str,
    message: str,
) -> None:
    before = _auth_rows(engine)
    content = body % {b"email": physician.email.encode(), b"password": physician.password.encode()}
    response = client.post(LOGIN, content=content, headers={"Content-Type": "application/json"})
    assert response.status_code == 400, response.text
    assert response.json() == {
        "error": {
            "code": "VALIDATION_ERROR",
            "message": "Request validation failed",
            "details": [{"field": field, "message": message}],
        }
    }
    assert "set-cookie" not in response.headers
    assert _auth_rows(engine) == before


# --- sessions ---


def test_only_digests_of_the_tokens_are_stored(
    client: httpx.Client, engine: Engine, physician: Account
) -> None:
    data = login(client, physician)
    row = session_row(engine, data["token"])
    assert row is not None
    assert row["csrf_token_hash"] == hashlib.sha256(data["csrf_token"].encode()).digest()
    with engine.connect() as conn:
        dump = conn.execute(text("SELECT string_agg(t::text, '|') FROM auth_sessions t")).scalar()
    assert data["token"] not in str(dump)
    assert data["csrf_token"] not in str(dump)


def test_me_answers_with_cookie_and_with_bearer(client: httpx.Client, physician: Account) -> None:
    data = login(client, physician)
    for headers in (cookie_header(data["token"]), bearer(data["token"])):
        response = client.get(ME, headers=headers)
        assert response.status_code == 200
        me = response.json()["data"]
        assert me["user_id"] == str(physician.user_id)
        assert me["provider_id"] == str(physician.provider_id)
        assert "token" not in me
        assert "csrf_token" not in me


@pytest.mark.parametrize(
    "headers",
    [
        {},
        bearer("x" * 43),
        {"Authorization": "Basic dXNlcjpwYXNz"},
        cookie_header("not-a-session-token-but-long-enough-to-look-like-one"),
        cookie_header(""),
    ],
    ids=["none", "unknown-bearer", "basic", "unknown-cookie", "empty-cookie"],
)
def test_no_valid_credential_is_401(client: httpx.Client, headers: dict[str, str]) -> None:
    response = client.get(ME, headers=headers)
    assert response.status_code == 401
    assert response.json() == {
        "error": {"code": "UNAUTHENTICATED", "message": "Authentication required"}
    }
    assert response.headers["www-authenticate"].startswith("Bearer")


def test_logout_deletes_the_session_and_clears_the_cookie(
    client: httpx.Client, engine: Engine, physician: Account
) -> None:
    data = login(client, physician)
    response = client.post(
        LOGOUT, headers={**cookie_header(data["token"]), "X-CSRF-Token": data["csrf_token"]}
    )
    assert response.status_code == 204
    assert response.content == b""
    cleared = cookie_attributes(response)
    assert cleared["name"] == "meritum_session"
    assert cleared["value"] in {"", '""'}
    assert cleared["max-age"] == "0"
    assert session_row(engine, data["token"]) is None
    assert client.get(ME, headers=cookie_header(data["token"])).status_code == 401
    assert client.get(ME, headers=bearer(data["token"])).status_code == 401


def test_bearer_requests_need_no_csrf_token(
    client: httpx.Client, engine: Engine, physician: Account
) -> None:
    data = login(client, physician)
    exported = client.post("/test-probe/export", headers=bearer(data["token"]))
    assert exported.status_code == 200
    assert client.post(LOGOUT, headers=bearer(data["token"])).status_code == 204
    assert session_row(engine, data["token"]) is None


def test_expired_session_is_refused_and_purgeable(
    client: httpx.Client, engine: Engine, physician: Account
) -> None:
    data = login(client, physician)
    with engine.begin() as conn:
        conn.execute(
            text(
                "UPDATE auth_sessions SET created_at = now() - interval '2 days', "
                "expires_at = now() - interval '1 second' WHERE token_hash = :h"
            ),
            {"h": hashlib.sha256(data["token"].encode()).digest()},
        )
    assert client.get(ME, headers=bearer(data["token"])).status_code == 401
    assert client.get(ME, headers=cookie_header(data["token"])).status_code == 401
    assert session_row(engine, data["token"]) is not None  # refused, not yet purged
    with Session(engine) as session, session.begin():  # the caller owns the transaction
        assert purge_expired_sessions(session=session) >= 1
    assert session_row(engine, data["token"]) is None


def _age_session(engine: Engine, token: str, *, last_seen_ago: str) -> None:
    with engine.begin() as conn:
        conn.execute(
            text(
                "UPDATE auth_sessions SET created_at = now() - interval '1 day', "
                "last_seen_at = now() - CAST(:ago AS interval), "
                "expires_at = now() + interval '1 hour' WHERE token_hash = :h"
            ),
            {"ago": last_seen_ago, "h": hashlib.sha256(token.encode()).digest()},
        )


def test_expiry_slides_forward_on_use_at_most_once_a_minute(
    client: httpx.Client, engine: Engine, physician: Account
) -> None:
    data = login(client, physician)
    _age_session(engine, data["token"], last_seen_ago="2 minutes")
    response = client.get(ME, headers=bearer(data["token"]))
    assert response.status_code == 200
    row = session_row(engine, data["token"])
    assert row is not None
    with engine.connect() as conn:
        db_now = conn.execute(text("SELECT now()")).scalar_one()
    assert row["expires_at"] > db_now + timedelta(hours=23, minutes=58)
    assert datetime.fromisoformat(response.json()["data"]["expires_at"]) == row["expires_at"]

    # Used again within the minute: no write, the expiry stays where it is.
    _age_session(engine, data["token"], last_seen_ago="10 seconds")
    before = session_row(engine, data["token"])
    assert client.get(ME, headers=bearer(data["token"])).status_code == 200
    assert session_row(engine, data["token"]) == before


# --- CSRF ---


@pytest.mark.parametrize(
    "csrf", [None, "", "wrong-token", "x" * 43], ids=["missing", "empty", "wrong", "guess"]
)
def test_cookie_request_without_the_csrf_token_is_refused_and_changes_nothing(
    client: httpx.Client, engine: Engine, physician: Account, csrf: str | None
) -> None:
    data = login(client, physician)
    headers = cookie_header(data["token"])
    if csrf is not None:
        headers["X-CSRF-Token"] = csrf
    before = list(exports)
    refused = client.post("/test-probe/export", headers=headers)
    assert refused.status_code == 403
    assert refused.json() == {
        "error": {"code": "CSRF_FAILED", "message": "Missing or invalid CSRF token"}
    }
    assert exports == before
    assert client.post(LOGOUT, headers=headers).status_code == 403
    assert session_row(engine, data["token"]) is not None  # still signed in
    # Reading needs no CSRF token; the right token lets the change through.
    assert client.get(ME, headers=cookie_header(data["token"])).status_code == 200
    headers["X-CSRF-Token"] = data["csrf_token"]
    assert client.post("/test-probe/export", headers=headers).status_code == 200
    assert exports == [*before, physician.provider_id]


def test_another_sessions_csrf_token_does_not_fit(client: httpx.Client, physician: Account) -> None:
    first, second = login(client, physician), login(client, physician)
    refused = client.post(
        "/test-probe/export",
        headers={**cookie_header(first["token"]), "X-CSRF-Token": second["csrf_token"]},
    )
    assert refused.status_code == 403


# --- permissions and scope ---


def test_delegate_holds_only_the_granted_permissions_for_their_physician(
    client: httpx.Client, engine: Engine, physician: Account
) -> None:
    delegate = add_account(
        engine,
        role=UserRole.DELEGATE,
        provider_id=physician.provider_id,
        permissions={Permission.REPORT_VIEW},
    )
    data = login(client, delegate)
    assert data["role"] == "delegate"
    assert data["permissions"] == ["REPORT_VIEW"]
    assert data["provider_id"] == str(physician.provider_id)
    viewed = client.get("/test-probe/view", headers=bearer(data["token"]))
    assert viewed.status_code == 200
    assert viewed.json()["data"]["provider_id"] == str(physician.provider_id)
    before = list(exports)
    refused = client.post("/test-probe/export", headers=bearer(data["token"]))
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "FORBIDDEN"
    assert exports == before


def test_scope_comes_from_the_session_not_the_request(
    client: httpx.Client, engine: Engine, physician: Account
) -> None:
    other = add_account(engine)
    data = login(client, other)
    viewed = client.get(
        "/test-probe/view",
        params={"provider_id": str(physician.provider_id)},
        headers={**bearer(data["token"]), "X-Provider-Id": str(physician.provider_id)},
    )
    assert viewed.json()["data"]["provider_id"] == str(other.provider_id)


# --- accounts ---


def test_create_user_normalises_the_email_and_hashes_with_argon2id(engine: Engine) -> None:
    with Session(engine) as session:
        provider_id = add_provider(session)
        user_id = create_user(
            session=session,
            email="  Dr.Who@Clinic.Example ",
            password=PASSWORD,
            provider_id=provider_id,
            role=UserRole.PHYSICIAN,
        )
        email, password_hash, permissions = session.execute(
            text("SELECT email, password_hash, permissions FROM users WHERE user_id = :u"),
            {"u": user_id},
        ).one()
        session.rollback()
    assert email == "dr.who@clinic.example"
    assert password_hash.startswith("$argon2id$")
    assert PASSWORD not in password_hash
    assert permissions == []


@pytest.mark.parametrize(
    ("role", "permissions", "password"),
    [
        (UserRole.PHYSICIAN, {Permission.REPORT_VIEW}, PASSWORD),
        (UserRole.DELEGATE, {Permission.REPORT_VIEW}, "short"),
        ("admin", None, PASSWORD),
    ],
    ids=["physician-with-grants", "short-password", "unknown-role"],
)
def test_create_user_refuses_invalid_accounts(
    session: Session, role: Any, permissions: set[Permission] | None, password: str
) -> None:
    provider_id = add_provider(session)
    with pytest.raises(ValueError):  # noqa: PT011 - each case has its own message
        create_user(
            session=session,
            email="someone@clinic.example",
            password=password,
            provider_id=provider_id,
            role=role,
            permissions=permissions,
        )


_VALID_HASH = "$argon2id$v=19$m=65536,t=3,p=4$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA"


@pytest.mark.parametrize(
    ("column_values", "constraint"),
    [
        ({"email": "Dr@Clinic.example"}, "ck_users_email_normalized"),
        ({"email": "no-at-sign"}, "ck_users_email_shape"),
        ({"password_hash": "hunter2hunter2"}, "ck_users_password_hash_argon2id"),
        ({"role": "admin"}, "ck_users_role_valid"),
        (
            {"role": "physician", "permissions": ["REPORT_VIEW"]},
            "ck_users_permissions_only_for_delegates",
        ),
        ({"role": "delegate", "permissions": ["SUPERUSER"]}, "ck_users_permissions_valid"),
    ],
    ids=[
        "upper-case-email",
        "email-shape",
        "plaintext-password",
        "role",
        "physician-grants",
        "unknown-permission",
    ],
)
def test_postgres_refuses_invalid_users(
    engine: Engine, column_values: dict[str, Any], constraint: str
) -> None:
    with Session(engine) as session:
        values: dict[str, Any] = {
            "email": f"{uuid.uuid4().hex}@clinic.example",
            "password_hash": _VALID_HASH,
            "provider_id": add_provider(session),
            "role": "delegate",
            "permissions": [],
            **column_values,
        }
        with pytest.raises(IntegrityError) as caught:
            session.execute(
                text(
                    "INSERT INTO users (email, password_hash, provider_id, role, permissions) "
                    "VALUES (:email, :password_hash, :provider_id, :role, "
                    "CAST(:permissions AS varchar(20)[]))"
                ),
                values,
            )
        session.rollback()
    orig = caught.value.orig
    assert isinstance(orig, psycopg.errors.CheckViolation)
    assert orig.diag.constraint_name == constraint


def test_one_physician_account_per_provider(engine: Engine, physician: Account) -> None:
    with pytest.raises(IntegrityError) as caught:
        add_account(engine, provider_id=physician.provider_id)
    assert isinstance(caught.value.orig, psycopg.errors.UniqueViolation)
