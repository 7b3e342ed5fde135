"""Hardening over real HTTP: headers, error bodies, body limits, rate limits, log redaction."""

from __future__ import annotations

import asyncio
import json
import logging
import re
import secrets
import socket
import threading
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel
from sqlalchemy import Engine
from starlette.types import Message, Receive, Scope, Send

from apiserver import add_account, bearer, build_app, cookie_header, serve, settings_for
from meritum_api.http.log_redaction import RedactingFilter, redact
from meritum_api.http.middleware import API_CSP, DOCS_CSP, BodyPolicyMiddleware

SECRET_IN_EXCEPTION = "Failing row contains (123456789, reports/0b1c/2f3e.bin)"

# --- a test-only router ---

probe = APIRouter(prefix="/test-probe")
received: list[int] = []
gate = threading.Event()


class Note(BaseModel):
    note: str


@probe.get("/boom")
def boom() -> None:
    raise RuntimeError(SECRET_IN_EXCEPTION)


@probe.post("/echo")
def echo(body: Note) -> dict[str, Any]:
    received.append(len(body.note))
    return {"data": {"length": len(body.note)}}


@probe.post("/raw")
async def raw(request: Request) -> dict[str, Any]:
    body = await request.body()  # read outside FastAPI's body parsing
    received.append(len(body))
    return {"data": {"length": len(body)}}


@probe.get("/stream")
def stream() -> StreamingResponse:
    def chunks() -> Iterator[bytes]:
        yield b"first-chunk\n"
        yield b"second-chunk\n" if gate.wait(timeout=10) else b"timed-out\n"

    return StreamingResponse(chunks(), media_type="application/octet-stream")


@probe.get("/broken-stream")
def broken_stream() -> StreamingResponse:
    def chunks() -> Iterator[bytes]:
        yield b"x" * 1024
        raise RuntimeError("storage read failed")

    return StreamingResponse(chunks(), media_type="application/octet-stream")


def _app(engine: Engine, db_url: str, **overrides: Any) -> FastAPI:
    app = build_app(engine, settings_for(db_url, **overrides))
    app.include_router(probe)
    return app


@pytest.fixture(scope="module")
def base_url(engine: Engine, db_url: str) -> Iterator[str]:
    with serve(_app(engine, db_url, rate_limit_per_minute=10_000)) as url:
        yield url


@pytest.fixture
def client(base_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=base_url, timeout=30) as c:
        yield c


# --- headers ---


def _requests(client: httpx.Client) -> dict[str, httpx.Response]:
    return {
        "ok": client.get("/health"),
        "unknown-route": client.get("/no/such/route"),
        "unauthenticated": client.get("/api/v1/auth/me"),
        "validation": client.post("/api/v1/auth/login", json={}),
        "method": client.delete("/health"),
        "crash": client.get("/test-probe/boom"),
        "too-large": client.post("/test-probe/echo", json={"note": "x" * 70_000}),
    }


def test_every_response_carries_the_security_headers(client: httpx.Client) -> None:
    responses = _requests(client)
    assert {name: r.status_code for name, r in responses.items()} == {
        "ok": 200,
        "unknown-route": 404,
        "unauthenticated": 401,
        "validation": 400,
        "method": 405,
        "crash": 500,
        "too-large": 413,
    }
    ids = set()
    for name, response in responses.items():
        headers = response.headers
        assert headers["content-security-policy"] == API_CSP, name
        assert "default-src 'none'" in API_CSP
        assert "frame-ancestors 'none'" in API_CSP
        assert headers["x-content-type-options"] == "nosniff", name
        assert headers["referrer-policy"] == "no-referrer", name
        assert headers["x-frame-options"] == "DENY", name
        assert headers["cache-control"] == "no-store", name
        assert headers["strict-transport-security"].startswith("max-age="), name
        assert "server" not in headers, name
        assert "x-powered-by" not in headers, name
        assert re.fullmatch(r"[0-9a-f]{32}", headers["x-request-id"]), name
        ids.add(headers["x-request-id"])
    assert len(ids) == len(responses)


def test_every_error_answer_carries_the_error_body(client: httpx.Client) -> None:
    for name, response in _requests(client).items():
        if response.status_code < 400:
            continue
        assert response.headers["content-type"] == "application/json", name
        error = response.json()["error"]
        assert set(error) <= {"code", "message", "details"}, name
        assert error["code"], name
        assert error["message"], name


def test_docs_are_served_only_in_development(
    client: httpx.Client, engine: Engine, db_url: str
) -> None:
    for path in ("/docs", "/redoc", "/openapi.json"):
        assert client.get(path).status_code == 404
    with (
        serve(_app(engine, db_url, environment="development")) as url,
        httpx.Client(base_url=url) as dev,
    ):
        docs = dev.get("/docs")
        assert docs.status_code == 200
        assert docs.headers["content-security-policy"] == DOCS_CSP
        health = dev.get("/health")
        assert health.headers["content-security-policy"] == API_CSP
        assert "strict-transport-security" not in health.headers
        assert dev.get("/openapi.json").status_code == 200


_ASSET_TYPES = {".js": "text/javascript", ".css": "text/css", ".png": "image/png"}


def test_docs_work_offline_from_this_origin_under_a_strict_policy(
    engine: Engine, db_url: str
) -> None:
    with (
        serve(_app(engine, db_url, environment="development")) as url,
        httpx.Client(base_url=url) as dev,
    ):
        page = dev.get("/docs")
        assert page.status_code == 200
        assert page.headers["content-type"].startswith("text/html")
        # The policy names no other origin and allows no inline code.
        policy = page.headers["content-security-policy"]
        for directive in policy.split(";"):
            name, *sources = directive.split()
            assert set(sources) <= {"'self'", "'none'", "data:"}, name
        assert "script-src 'self'" in policy
        assert "style-src 'self'" in policy
        assert "default-src 'none'" in policy
        # Every script is a file of this origin, and there is no inline code.
        scripts = re.findall(r"<script([^>]*)>(.*?)</script>", page.text, re.DOTALL)
        assert len(scripts) == 2
        assert all('src="' in attributes and body.strip() == "" for attributes, body in scripts)
        assert "<style" not in page.text
        assert " style=" not in page.text
        assert " on" not in re.sub(r'"[^"]*"', '""', page.text)  # no onload= handlers
        references = re.findall(r'(?:src|href)="([^"]*)"', page.text)
        assert len(references) == 4
        for reference in references:
            assert reference.startswith("/"), reference
            assert not reference.startswith("//"), reference
            asset = dev.get(reference)
            assert asset.status_code == 200, reference
            media_type = _ASSET_TYPES[reference[reference.rindex(".") :]]
            assert asset.headers["content-type"].split(";")[0] == media_type, reference
            assert asset.headers["x-content-type-options"] == "nosniff"
        bundle = dev.get("/docs/assets/swagger-ui-bundle.js").text
        assert "SwaggerUIBundle" in bundle
        assert "isOAS31" in bundle  # Swagger UI 5: it reads FastAPI's OpenAPI 3.1
        init = dev.get("/docs/assets/swagger-init.js").text
        assert "openapiUrl" in init
        assert "http" not in init  # no URL of anywhere else
        (openapi_url,) = re.findall(r'data-openapi-url="([^"]+)"', page.text)
        document = dev.get(openapi_url)
        assert document.status_code == 200
        assert document.json()["openapi"].startswith("3.1")
        missing = dev.get("/docs/assets/index.html")
        assert missing.status_code == 404
        assert missing.json() == {"error": {"code": "NOT_FOUND", "message": "Not found"}}
        assert dev.get("/docs/oauth2-redirect").status_code == 404
        assert dev.get("/redoc").status_code == 404


# --- error bodies ---


def test_unknown_route_and_wrong_method(client: httpx.Client) -> None:
    missing = client.get("/api/v1/nothing-here")
    assert missing.json() == {"error": {"code": "NOT_FOUND", "message": "Not found"}}
    wrong = client.put("/api/v1/auth/login", json={})
    assert wrong.status_code == 405
    assert wrong.json() == {
        "error": {"code": "METHOD_NOT_ALLOWED", "message": "Method not allowed"}
    }
    assert wrong.headers["allow"] == "POST"


def test_validation_errors_name_fields_but_never_echo_values(client: httpx.Client) -> None:
    password = "my-secret-password-" + "x" * 1100
    response = client.post(
        "/api/v1/auth/login",
        json={"email": "dr@clinic.example", "password": password, "phn": "123456789"},
    )
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "VALIDATION_ERROR"
    assert error["message"] == "Request validation failed"
    fields = {d["field"] for d in error["details"]}
    assert fields == {"password", "phn"}
    assert all(set(d) == {"field", "message"} for d in error["details"])
    assert "my-secret-password" not in response.text
    assert "123456789" not in response.text

    malformed = client.post(
        "/api/v1/auth/login",
        content=b'{"email": "a@b.c", "password": "hunter2-hunter2',
        headers={"Content-Type": "application/json"},
    )
    assert malformed.status_code == 400
    assert malformed.json()["error"]["details"] == [{"field": "body", "message": "Malformed JSON"}]
    assert "hunter2" not in malformed.text


def test_a_body_nested_past_the_decoder_is_a_validation_error(client: httpx.Client) -> None:
    before = list(received)
    deep = b"[" * 30_000 + b"]" * 30_000
    response = client.post(
        "/test-probe/echo", content=deep, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 400
    assert response.json() == {
        "error": {
            "code": "VALIDATION_ERROR",
            "message": "Request validation failed",
            "details": [{"field": "body", "message": "Malformed JSON"}],
        }
    }
    assert received == before


def test_a_malformed_content_length_is_named() -> None:
    # The HTTP parser in front normally refuses it first; the app refuses it too.
    sent: list[Message] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        raise AssertionError("the request must not get through")

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        sent.append(message)

    scope: Scope = {
        "type": "http",
        "method": "POST",
        "path": "/",
        "headers": [(b"content-length", b"12abc"), (b"content-type", b"application/json")],
    }
    asyncio.run(BodyPolicyMiddleware(app, max_body_bytes=100)(scope, receive, send))
    assert sent[0]["status"] == 400
    assert json.loads(sent[1]["body"]) == {
        "error": {
            "code": "BAD_REQUEST",
            "message": "Bad request",
            "details": [{"field": "Content-Length", "message": "Must be a whole number of bytes"}],
        }
    }


@pytest.mark.parametrize(
    "content_type", [None, "text/plain", "application/x-www-form-urlencoded", "multipart/form-data"]
)
def test_bodies_must_be_json(client: httpx.Client, content_type: str | None) -> None:
    headers = {"Content-Type": content_type} if content_type else {}
    before = list(received)
    response = client.post("/test-probe/echo", content=b'{"note": "hi"}', headers=headers)
    assert response.status_code == 415
    assert response.json()["error"]["code"] == "UNSUPPORTED_MEDIA_TYPE"
    assert received == before


def test_unhandled_exception_is_a_generic_500_with_a_request_id(
    client: httpx.Client, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR, logger="meritum.http"):
        response = client.get("/test-probe/boom")
    assert response.status_code == 500
    request_id = response.headers["x-request-id"]
    assert response.json() == {
        "error": {
            "code": "INTERNAL_ERROR",
            "message": "Internal server error",
            "details": {"request_id": request_id},
        }
    }
    for leak in ("RuntimeError", "Failing row", "123456789", "reports/", "Traceback"):
        assert leak not in response.text
    # The traceback is in the log, under the request id, with the PHN masked.
    (logged,) = [r for r in caplog.records if request_id in r.getMessage()]
    assert logged.exc_text is not None
    assert "RuntimeError" in logged.exc_text
    assert "123456789" not in logged.exc_text
    assert "[PHN]" in logged.exc_text


def test_a_stream_that_breaks_midway_is_aborted_not_completed(client: httpx.Client) -> None:
    with client.stream("GET", "/test-probe/broken-stream") as response:
        assert response.status_code == 200
        with pytest.raises(httpx.RemoteProtocolError):
            response.read()


def test_streamed_responses_pass_through_unbuffered(client: httpx.Client) -> None:
    gate.clear()
    with client.stream("GET", "/test-probe/stream") as response:
        assert response.headers["content-security-policy"] == API_CSP
        chunks = response.iter_raw()
        first = next(chunks)
        # The generator is still waiting: the middleware forwarded the first
        # chunk as it came rather than collecting the body.
        assert first == b"first-chunk\n"
        gate.set()
        rest = b"".join(chunks)
    assert rest == b"second-chunk\n"


# --- body size ---


def test_body_within_the_limit_is_accepted(client: httpx.Client) -> None:
    response = client.post("/test-probe/echo", json={"note": "x" * 60_000})
    assert response.status_code == 200
    assert response.json() == {"data": {"length": 60_000}}


def test_declared_oversized_body_is_refused_unread(client: httpx.Client) -> None:
    before = list(received)
    response = client.post("/test-probe/echo", json={"note": "x" * 70_000})
    assert response.status_code == 413
    assert response.json() == {
        "error": {"code": "PAYLOAD_TOO_LARGE", "message": "Request body too large"}
    }
    assert received == before


@pytest.mark.parametrize("path", ["/test-probe/echo", "/test-probe/raw"])
def test_undeclared_oversized_body_is_cut_off_while_streaming(
    client: httpx.Client, path: str
) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"note": "'
        for _ in range(20):
            yield b"x" * 8192
        yield b'"}'

    before = list(received)
    response = client.post(path, content=chunks(), headers={"Content-Type": "application/json"})
    assert response.request.headers.get("transfer-encoding") == "chunked"
    assert "content-length" not in response.request.headers
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "PAYLOAD_TOO_LARGE"
    assert received == before


def _raw_request(base_url: str, head: bytes, body: bytes) -> bytes:
    parts = urlsplit(base_url)
    with socket.create_connection((parts.hostname, parts.port), timeout=10) as sock:
        sock.sendall(head + body)
        sock.shutdown(socket.SHUT_WR)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    return data


def test_a_content_length_that_understates_the_body_does_not_get_past(base_url: str) -> None:
    # Content-Length claims 10 bytes; Transfer-Encoding (which wins) carries 100 KiB.
    payload = b'{"note": "' + b"x" * 100_000 + b'"}'
    body = b"%x\r\n%s\r\n0\r\n\r\n" % (len(payload), payload)
    head = (
        b"POST /test-probe/echo HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        b"Content-Type: application/json\r\nContent-Length: 10\r\n"
        b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    )
    before = list(received)
    answer = _raw_request(base_url, head, body)
    status_line = answer.split(b"\r\n", 1)[0]
    assert status_line.split()[1] == b"413", status_line
    assert received == before


# --- rate limit ---


def test_rate_limit_per_user_and_per_address(engine: Engine, db_url: str) -> None:
    account = add_account(engine)
    with (
        serve(_app(engine, db_url)) as url,  # the default: 100 requests a minute
        httpx.Client(base_url=url, timeout=30) as c,
    ):
        login = c.post(
            "/api/v1/auth/login", json={"email": account.email, "password": account.password}
        )
        token = login.json()["data"]["token"]
        c.cookies.clear()
        for _ in range(99):  # with the login, 100 anonymous requests from this address
            assert c.get("/no/such/route").status_code == 404
        limited = c.get("/no/such/route")
        assert limited.status_code == 429
        assert limited.json() == {"error": {"code": "RATE_LIMITED", "message": "Too many requests"}}
        assert 1 <= int(limited.headers["retry-after"]) <= 60
        assert limited.headers["x-request-id"]
        # An invented token is no way around the address's limit...
        assert c.get("/api/v1/auth/me", headers=bearer("y" * 43)).status_code == 429
        # ...but a signed-in user has an allowance of their own.
        for _ in range(100):
            assert c.get("/api/v1/auth/me", headers=bearer(token)).status_code == 200
        over = c.get("/api/v1/auth/me", headers=cookie_header(token))
        assert over.status_code == 429
        assert int(over.headers["retry-after"]) >= 1
        assert c.get("/health").status_code == 200  # load balancers are not limited


# --- log redaction ---


_TOKEN = secrets.token_urlsafe(32)


@pytest.mark.parametrize(
    ("line", "secret"),
    [
        (f"Cookie: meritum_session={_TOKEN}; theme=dark", _TOKEN),
        (f"set-cookie: meritum_session={_TOKEN}; HttpOnly", _TOKEN),
        ("Authorization: Bearer abc.def-ghi_jkl", "abc.def-ghi_jkl"),
        ("headers=[(b'authorization', b'Bearer zzz-top-secret')]", "zzz-top-secret"),
        ("[(b'cookie', b'meritum_session=short-one')]", "short-one"),
        ('{"email": "a@b.c", "password": "hunter2-hunter2"}', "hunter2"),
        ("{'password': 'hunter2-hunter2'}", "hunter2"),
        ("{'password': 'correct horse battery staple'}", "battery"),
        ('{"password": "correct horse battery staple"}', "staple"),
        ("password=hunter2-hunter2&next=/", "hunter2"),
        ("password=correct horse battery staple", "staple"),
        ("GET /api/v1/reports?token=abc123def HTTP/1.1", "abc123def"),
        ('{"csrf_token": "csrf-value-1"}', "csrf-value-1"),
        ("X-CSRF-Token: csrf-value-2", "csrf-value-2"),
        (f"opaque {_TOKEN} value", _TOKEN),
        ("patient 123456789 claim", "123456789"),
        ("phn=987654321", "987654321"),
        ("PHN987654321.", "987654321"),
        ("(123456789, 'x')", "123456789"),
    ],
)
def test_redact_masks_secrets_and_phns(line: str, secret: str) -> None:
    assert secret not in redact(line)
    assert redact(redact(line)) == redact(line)


@pytest.mark.parametrize(
    "line",
    [
        'GET /api/v1/reports/0b9f5a3e-7c1d-4e2a-9f00-1a2b3c4d5e6f HTTP/1.1" 200',
        "report 0b9f5a3e-7c1d-4e2a-9f00-1a2b3c4d5e6f ready, 1234567890 bytes",
        "cleanup expired 42 reports in 0.8 s",
        "sha256 " + "0123456789abcdef" * 4,
        # Nine decimal digits inside a UUID's last group are not a PHN.
        "report 155e667f-89c1-4ef9-93dd-986655463e67: generating",
        "report 155e667f-89c1-4ef9-93dd-986655463000 ready",
    ],
)
def test_redact_leaves_ordinary_lines_alone(line: str) -> None:
    assert redact(line) == line


def test_filter_keeps_access_log_arguments_a_tuple() -> None:
    record = logging.LogRecord(
        "uvicorn.access",
        logging.INFO,
        __file__,
        1,
        '%s - "%s %s HTTP/%s" %d',
        ("127.0.0.1:5000", "GET", f"/x?token={_TOKEN}", "1.1", 200),
        None,
    )
    assert RedactingFilter().filter(record)
    assert isinstance(record.args, tuple)
    assert record.args[-1] == 200
    assert _TOKEN not in record.getMessage()


def test_logs_hold_no_password_token_cookie_or_phn(
    client: httpx.Client, engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    account = add_account(engine)
    phn = "123456789"
    with caplog.at_level(logging.DEBUG):
        login = client.post(
            "/api/v1/auth/login", json={"email": account.email, "password": account.password}
        )
        data = login.json()["data"]
        client.cookies.clear()
        client.post("/api/v1/auth/login", json={"email": account.email, "password": "Wr0ng-pw!"})
        client.get("/api/v1/auth/me", headers=cookie_header(data["token"]))
        client.get("/api/v1/auth/me", params={"token": data["token"], "phn": phn})
        client.get("/test-probe/boom", headers=bearer(data["token"]))
        app_log = logging.getLogger("meritum.test")
        app_log.info("request headers %s", [(b"cookie", f"meritum_session={data['token']}")])
        app_log.warning("csrf %s for %s", data["csrf_token"], phn)
        app_log.info("login body %s", {"email": account.email, "password": account.password})
        try:
            raise ValueError(f"duplicate key (phn)=({phn}) token={data['token']}")
        except ValueError:
            app_log.exception("insert failed")

    formatter = logging.Formatter("%(name)s %(message)s")
    text = "\n".join(formatter.format(record) for record in caplog.records)
    assert "uvicorn.access" in text  # the access log was captured too
    assert "/api/v1/auth/me" in text
    secrets_sent = (account.password, "Wr0ng-pw!", data["token"], data["csrf_token"], phn)
    for secret in (*secrets_sent, *account.password.split()):
        assert secret not in text, secret
