"""The reports endpoints over real HTTP, real PostgreSQL, a real worker and real files.

Each test acts as a client would: it signs in, requests, polls, downloads,
and checks bytes, headers, status codes and what the database recorded.
"""

from __future__ import annotations

import csv
import hashlib
import io
import itertools
import json
import re
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pypdf
import pytest
from sqlalchemy import Engine, insert, select, text, update
from sqlalchemy.orm import Session

from apiserver import Account, add_account, bearer, cookie_header, serve, settings_for
from factories import add_paid_claims, expected_file, report_values
from meritum_api.app import create_app
from meritum_api.context import AuthContext
from meritum_api.deps import Deps, Role, build_deps
from meritum_api.domains.analytics import repository, service
from meritum_api.domains.analytics.exceptions import UnsupportedReport
from meritum_api.domains.analytics.keys import storage_key
from meritum_shared.constants.analytics import ReportFormat, ReportStatus, ReportType
from meritum_shared.constants.auth import Permission, UserRole
from meritum_shared.schemas.db import GeneratedReport
from meritum_shared.schemas.validation.analytics import ReportOut
from polling import wait_until
from workers import FAST_RECOVERY, in_process_worker

BASE = "/api/v1/reports"
PERIOD = {"period_start": "2026-01-01", "period_end": "2026-03-31"}


@pytest.fixture(scope="module")
def runtime(db_url: str) -> Iterator[Deps]:
    rt = build_deps(
        settings_for(db_url, rate_limit_per_minute=100_000, **FAST_RECOVERY),
        db_url,
        role=Role.COMMAND,
    )
    yield rt
    rt.close()


@pytest.fixture(scope="module")
def base_url(runtime: Deps) -> Iterator[str]:
    with serve(create_app(runtime)) as url:
        yield url


@pytest.fixture(scope="module")
def worker(db_url: str, runtime: Deps) -> Iterator[None]:
    with in_process_worker(db_url, runtime, poll_seconds=0.5):
        yield


@pytest.fixture(scope="module")
def client(base_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=base_url, timeout=60) as http:
        yield http


def login(client: httpx.Client, account: Account) -> dict[str, Any]:
    """Sign in; the response's data (``token``, ``csrf_token``, …)."""
    response = client.post(
        "/api/v1/auth/login", json={"email": account.email, "password": account.password}
    )
    assert response.status_code == 200, response.text
    client.cookies.clear()  # each request below states the credential it sends
    data: dict[str, Any] = response.json()["data"]
    return data


def token_of(client: httpx.Client, account: Account) -> dict[str, str]:
    return bearer(login(client, account)["token"])


def physician_with_claims(engine: Engine, claims: int = 40) -> Account:
    account = add_account(engine)
    with Session(engine) as session, session.begin():
        add_paid_claims(
            session,
            provider_id=account.provider_id,
            count=claims,
            first_payment=date(2026, 1, 5),
            days=60,
        )
    return account


def ready_report(runtime: Deps, account: Account, content: bytes) -> uuid.UUID:
    """A ready report of ``account`` holding ``content`` (made without the queue)."""
    ctx = AuthContext(provider_id=account.provider_id)
    with runtime.session_factory.begin() as session:
        view = repository.create_report(
            session=session,
            ctx=ctx,
            report_type=ReportType.ACCOUNTANT_SUMMARY,
            format=ReportFormat.CSV,
            period_start=date(2026, 1, 1),
            period_end=date(2026, 3, 31),
        )
        repository.move_status(
            session=session,
            report_id=view.report_id,
            expected=ReportStatus.PENDING,
            target=ReportStatus.GENERATING,
        )
        key = storage_key(provider_id=account.provider_id, report_id=view.report_id)
        stored = runtime.storage.write(key, [content])
        repository.finish_ready(
            session=session, report=view, size=stored.size, sha256=stored.sha256
        )
    return view.report_id


def phns_of(engine: Engine, account: Account) -> list[str]:
    with engine.connect() as conn:
        return list(
            conn.execute(
                text("SELECT phn FROM patients WHERE provider_id = :p"),
                {"p": account.provider_id},
            ).scalars()
        )


def audit_actions(engine: Engine, report_id: uuid.UUID) -> list[tuple[str, bool]]:
    with engine.connect() as conn:
        rows = conn.execute(
            text("SELECT action, sensitive FROM audit_log WHERE resource_id = :r ORDER BY id"),
            {"r": report_id},
        ).all()
    return [(row.action, row.sensitive) for row in rows]


def wait_ready(client: httpx.Client, headers: dict[str, str], report_id: str) -> dict[str, Any]:
    state: dict[str, Any] = {}

    def ready() -> bool:
        response = client.get(f"{BASE}/{report_id}", headers=headers)
        assert response.status_code == 200, response.text
        state.update(response.json()["data"])
        status = str(state["status"])
        if status in ("pending", "generating"):
            assert response.headers["retry-after"] == "2"
        return status == "ready"

    wait_until(ready, timeout=60, what="the report to become ready")
    return state


# --- the whole path --------------------------------------------------------------


@pytest.mark.usefixtures("worker")
def test_request_generate_download_the_accountant_csv(
    client: httpx.Client, runtime: Deps, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("DEBUG")
    account = physician_with_claims(runtime.engine)
    auth = token_of(client, account)
    created = client.post(f"{BASE}/accountant", json={**PERIOD, "format": "csv"}, headers=auth)
    assert created.status_code == 201, created.text
    body = created.json()
    assert body == {"data": {"report_id": body["data"]["report_id"], "status": "pending"}}
    report_id = body["data"]["report_id"]
    assert created.headers["location"] == f"{BASE}/{report_id}"

    detail = wait_ready(client, auth, report_id)
    assert detail["report_type"] == "ACCOUNTANT_SUMMARY"
    assert detail["format"] == "CSV"
    assert detail["downloaded"] is False
    assert detail["download_count"] == 0
    assert detail["first_downloaded_at"] is None
    assert "file_path" not in detail

    download = client.get(f"{BASE}/{report_id}/download", headers=auth)
    assert download.status_code == 200
    content = download.content
    assert content == expected_file(
        runtime.engine, AuthContext(provider_id=account.provider_id), uuid.UUID(report_id)
    )
    rows = list(csv.reader(io.StringIO(content.decode("utf-8-sig"))))
    assert len(rows) == 41  # header and the 40 paid claims of the period
    headers = download.headers
    assert headers["content-type"] == "text/csv; charset=utf-8"
    assert headers["content-length"] == str(detail["file_size_bytes"]) == str(len(content))
    assert headers["content-disposition"] == (
        'attachment; filename="meritum-accountant-summary-2026-01-01-to-2026-03-31.csv"'
    )
    assert headers["cache-control"] == "no-store"
    assert headers["accept-ranges"] == "bytes"
    digest = hashlib.sha256(content)
    assert headers["etag"] == f'"{digest.hexdigest()}"'
    assert headers["repr-digest"] == (
        "sha-256=:" + __import__("base64").b64encode(digest.digest()).decode() + ":"
    )
    assert detail["sha256"] == digest.hexdigest()

    def recorded() -> bool:
        data = client.get(f"{BASE}/{report_id}", headers=auth).json()["data"]
        return bool(data["downloaded"])

    wait_until(recorded, timeout=10, what="the download to be recorded")
    after = client.get(f"{BASE}/{report_id}", headers=auth).json()["data"]
    assert after["download_count"] == 1
    assert after["first_downloaded_at"] is not None
    assert audit_actions(runtime.engine, uuid.UUID(report_id)) == [
        ("analytics.report_generated", False),
        ("analytics.report_downloaded", False),
    ]

    # Nothing anywhere carries the storage key or a patient's health number.
    key = storage_key(provider_id=account.provider_id, report_id=uuid.UUID(report_id))
    phns = phns_of(runtime.engine, account)
    assert phns
    seen = [created, download]
    seen += [client.get(f"{BASE}/{report_id}", headers=auth), client.get(BASE, headers=auth)]
    for response in seen:
        blob = response.text + "\n".join(f"{k}: {v}" for k, v in response.headers.items())
        assert key not in blob
        assert str(account.provider_id) + "/" not in blob
        assert not any(phn in blob for phn in phns)
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert f"report {report_id}: ready" in logged  # the worker's lines were captured
    assert key not in logged
    assert not any(phn in logged for phn in phns)


@pytest.mark.usefixtures("worker")
@pytest.mark.parametrize("kind", ["summary", "detail"])
def test_request_generate_download_an_accountant_pdf(
    client: httpx.Client, runtime: Deps, kind: str
) -> None:
    account = physician_with_claims(runtime.engine)
    auth = token_of(client, account)
    created = client.post(
        f"{BASE}/accountant", json={**PERIOD, "format": f"pdf_{kind}"}, headers=auth
    )
    assert created.status_code == 201, created.text
    report_id = created.json()["data"]["report_id"]

    detail = wait_ready(client, auth, report_id)
    assert detail["report_type"] == f"ACCOUNTANT_{kind.upper()}"
    assert detail["format"] == "PDF"
    download = client.get(f"{BASE}/{report_id}/download", headers=auth)
    assert download.status_code == 200
    assert download.headers["content-type"] == "application/pdf"
    assert download.headers["content-disposition"] == (
        f'attachment; filename="meritum-accountant-{kind}-2026-01-01-to-2026-03-31.pdf"'
    )
    assert download.headers["content-length"] == str(detail["file_size_bytes"])
    content = download.content
    assert content.startswith(b"%PDF-")
    first = pypdf.PdfReader(io.BytesIO(content)).pages[0].extract_text()
    assert f"Meritum — Accountant {kind}" in first
    assert f"Report {report_id}" in first
    # The worker dates the file from the report row: generating again gives the same bytes.
    created_at = datetime.fromisoformat(detail["created_at"])
    assert created_at.astimezone(ZoneInfo("America/Edmonton")).strftime("%Y-%m-%d %H:%M") in first
    ctx = AuthContext(provider_id=account.provider_id)
    assert expected_file(runtime.engine, ctx, uuid.UUID(report_id)) == content
    assert not any(phn in first for phn in phns_of(runtime.engine, account))


def test_a_pair_without_a_generator_is_refused_when_asked_and_changes_nothing(
    runtime: Deps,
) -> None:
    # Every pair the API offers has a generator now; the service still refuses
    # any other at request time, before a row or a job exists.
    account = add_account(runtime.engine)
    before = count_rows(runtime.engine)
    with pytest.raises(UnsupportedReport) as refused, runtime.session_factory.begin() as session:
        service.request_report(
            session=session,
            ctx=AuthContext(provider_id=account.provider_id),
            queue=runtime.queue,
            report_type=ReportType.WEEKLY_SUMMARY,
            format=ReportFormat.PDF,
            period_start=date(2026, 1, 5),
            period_end=date(2026, 1, 11),
        )
    assert "not available yet" in str(refused.value)
    assert count_rows(runtime.engine) == before


TOO_LONG = (
    "Must be before the same day two years after period_start (a period covers at most two years)"
)


def own_reports(engine: Engine, account: Account) -> int:
    with engine.connect() as conn:
        return int(
            conn.execute(
                text("SELECT count(*) FROM generated_reports WHERE provider_id = :p"),
                {"p": account.provider_id},
            ).scalar_one()
        )


@pytest.mark.parametrize(
    ("path", "body", "field", "message"),
    [
        (
            "accountant",
            {"period_start": "2024-03-31", "period_end": "2026-03-31"},
            "period_end",
            TOO_LONG,
        ),
        (
            "accountant",
            {"period_start": "2024-02-29", "period_end": "2026-02-28"},
            "period_end",
            TOO_LONG,
        ),
        (
            "accountant",
            {"period_start": "2026-03-31", "period_end": "2026-03-30"},
            "period_end",
            "Must not be before period_start",
        ),
        ("data-portability", {"password": "short"}, "password", "Must have at least 12 characters"),
        (
            "data-portability",
            {"password": "x" * 129},
            "password",
            "Must have at most 128 characters",
        ),
    ],
)
def test_request_rules_answer_400_naming_the_field(
    client: httpx.Client,
    runtime: Deps,
    path: str,
    body: dict[str, str],
    field: str,
    message: str,
) -> None:
    account = add_account(runtime.engine)
    auth = token_of(client, account)
    if path == "accountant":
        body = {**body, "format": "csv"}
    response = client.post(f"{BASE}/{path}", json=body, headers=auth)
    assert response.status_code == 400, response.text
    assert response.json() == {
        "error": {
            "code": "VALIDATION_ERROR",
            "message": "Request validation failed",
            "details": [{"field": field, "message": message}],
        }
    }
    assert own_reports(runtime.engine, account) == 0


def test_the_longest_period_is_accepted(client: httpx.Client, runtime: Deps) -> None:
    account = add_account(runtime.engine)
    auth = token_of(client, account)
    body = {"period_start": "2024-03-31", "period_end": "2026-03-30", "format": "csv"}
    assert client.post(f"{BASE}/accountant", json=body, headers=auth).status_code == 201
    leap = {"period_start": "2024-02-29", "period_end": "2026-02-27", "format": "csv"}
    assert client.post(f"{BASE}/accountant", json=leap, headers=auth).status_code == 201
    assert own_reports(runtime.engine, account) == 2


def test_data_portability_is_limited_to_three_a_day(client: httpx.Client, runtime: Deps) -> None:
    account = add_account(runtime.engine)
    with runtime.engine.begin() as conn:
        for _ in range(3):
            conn.execute(
                text(
                    "INSERT INTO generated_reports (provider_id, report_type, format, file_path,"
                    " file_size_bytes, download_link_expires_at, status)"
                    " VALUES (:p, 'DATA_PORTABILITY', 'ZIP', 'reports/x/' || gen_random_uuid(),"
                    " 0, now() + interval '3 days', 'failed')"
                ),
                {"p": account.provider_id},
            )
    response = client.post(f"{BASE}/data-portability", json={}, headers=token_of(client, account))
    assert response.status_code == 429
    assert response.json()["error"]["code"] == "RATE_LIMITED"
    assert 0 < int(response.headers["retry-after"]) <= 86_400


# --- authentication, permissions, tenancy ----------------------------------------


#: Each route, with the permission it needs.
ROUTES: list[tuple[str, str, str, Permission]] = [
    ("POST", "/accountant", "accountant", Permission.REPORT_EXPORT),
    ("POST", "/data-portability", "data-portability", Permission.DATA_EXPORT),
    ("GET", "", "list", Permission.REPORT_VIEW),
    ("GET", "/{id}", "detail", Permission.REPORT_VIEW),
    ("GET", "/{id}/download", "download", Permission.REPORT_EXPORT),
    ("HEAD", "/{id}/download", "download", Permission.REPORT_EXPORT),
]
BODIES: dict[str, dict[str, Any]] = {
    "accountant": {**PERIOD, "format": "csv"},
    "data-portability": {},
}
#: What an allowed request answers (data portability: 429 once the physician's three
#: exports of the day are taken by the principals before).
ALLOWED_STATUS = {
    Permission.REPORT_EXPORT: {201, 200},
    Permission.DATA_EXPORT: {201, 429},
    Permission.REPORT_VIEW: {200},
}


def routes(report_id: uuid.UUID) -> Iterator[tuple[str, str, dict[str, Any] | None, Permission]]:
    for method, suffix, name, needed in ROUTES:
        yield method, BASE + suffix.format(id=report_id), BODIES.get(name), needed


def test_every_route_answers_401_without_a_session(client: httpx.Client, runtime: Deps) -> None:
    account = add_account(runtime.engine)
    report_id = ready_report(runtime, account, b"a,b\r\n")
    for method, path, body, _ in routes(report_id):
        for headers in ({}, bearer("not-a-real-token"), cookie_header("forged")):
            response = client.request(method, path, json=body, headers=headers)
            assert response.status_code == 401, (method, path, headers)
            if method != "HEAD":
                assert response.json()["error"]["code"] == "UNAUTHENTICATED"


def test_permission_matrix_physician_and_every_delegate_subset(
    client: httpx.Client, runtime: Deps
) -> None:
    physician = add_account(runtime.engine)
    report_id = ready_report(runtime, physician, b"date,fee\r\n2026-01-01,1.00\r\n")
    subsets = [
        frozenset(combo)
        for size in range(len(Permission) + 1)
        for combo in itertools.combinations(list(Permission), size)
    ]
    assert len(subsets) == 16
    principals: list[tuple[str, frozenset[Permission], Account]] = [
        ("physician", frozenset(Permission), physician)
    ]
    for subset in subsets:
        delegate = add_account(
            runtime.engine,
            role=UserRole.DELEGATE,
            provider_id=physician.provider_id,
            permissions=set(subset),
        )
        principals.append(("delegate", subset, delegate))
    tested = 0
    for role, held, account in principals:
        auth = token_of(client, account)
        for method, path, body, needed in routes(report_id):
            response = client.request(method, path, json=body, headers=auth)
            if needed in held:
                assert response.status_code in ALLOWED_STATUS[needed], (role, sorted(held), path)
            else:
                assert response.status_code == 403, (role, sorted(held), method, path)
                if method != "HEAD":
                    assert response.json()["error"]["code"] == "FORBIDDEN"
            tested += 1
    assert tested == 17 * 6
    # A delegate acts for their physician: they see the physician's reports.
    viewer = next(a for r, h, a in principals if r == "delegate" and h == {Permission.REPORT_VIEW})
    listed = client.get(BASE, headers=token_of(client, viewer)).json()["data"]
    assert str(report_id) in {item["report_id"] for item in listed}


def test_another_physicians_report_is_404_on_every_id_route(
    client: httpx.Client, runtime: Deps
) -> None:
    owner, intruder = add_account(runtime.engine), add_account(runtime.engine)
    report_id = ready_report(runtime, owner, b"secret,row\r\n")
    auth = token_of(client, intruder)
    unknown = uuid.uuid4()
    for target in (report_id, unknown):
        for method, suffix in (("GET", ""), ("GET", "/download"), ("HEAD", "/download")):
            response = client.request(method, f"{BASE}/{target}{suffix}", headers=auth)
            assert response.status_code == 404, (target, method, suffix)
            if method == "GET":
                assert response.json() == {
                    "error": {"code": "NOT_FOUND", "message": "Report not found"}
                }
    assert str(report_id) not in client.get(BASE, headers=auth).text
    with runtime.engine.connect() as conn:
        downloaded = conn.execute(
            select(GeneratedReport.downloaded).where(GeneratedReport.report_id == report_id)
        ).scalar_one()
    assert downloaded is False


@pytest.mark.parametrize(
    "path",
    [
        f"{BASE}/not-a-uuid",
        f"{BASE}/not-a-uuid/download",
        f"{BASE}/..%2F..%2Fetc%2Fpasswd/download",
        f"{BASE}/%00/download",
        f"{BASE}/{'9' * 400}",
    ],
)
def test_malformed_ids_are_refused_cleanly(client: httpx.Client, runtime: Deps, path: str) -> None:
    auth = token_of(client, add_account(runtime.engine))
    response = client.get(path, headers=auth)
    assert response.status_code in (400, 404)
    assert "error" in response.json()


def test_cookie_requests_need_the_csrf_token(client: httpx.Client, runtime: Deps) -> None:
    account = add_account(runtime.engine)
    session = login(client, account)
    before = count_rows(runtime.engine)
    refused = client.post(
        f"{BASE}/accountant",
        json={**PERIOD, "format": "csv"},
        headers=cookie_header(session["token"]),
    )
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "CSRF_FAILED"
    assert count_rows(runtime.engine) == before
    accepted = client.post(
        f"{BASE}/accountant",
        json={**PERIOD, "format": "csv"},
        headers={**cookie_header(session["token"]), "X-CSRF-Token": session["csrf_token"]},
    )
    assert accepted.status_code == 201


# --- expiry ------------------------------------------------------------------


def test_expired_link_answers_410_with_the_request_to_make_it_again(
    client: httpx.Client, runtime: Deps
) -> None:
    account = add_account(runtime.engine)
    auth = token_of(client, account)
    report_id = ready_report(runtime, account, b"a,b\r\n")
    assert client.get(f"{BASE}/{report_id}/download", headers=auth).status_code == 200
    with runtime.engine.begin() as conn:
        # By the database clock: a moment ago.
        conn.execute(
            update(GeneratedReport)
            .where(GeneratedReport.report_id == report_id)
            .values(download_link_expires_at=text("now() - interval '1 second'"))
        )
    gone = client.get(f"{BASE}/{report_id}/download", headers=auth)
    assert gone.status_code == 410
    error = gone.json()["error"]
    assert error["code"] == "REPORT_EXPIRED"
    assert error["details"]["reason"] == "link_expired"
    assert error["details"]["regenerate"] == {
        "method": "POST",
        "path": f"{BASE}/accountant",
        "body": {**PERIOD, "format": "csv"},
    }
    assert client.head(f"{BASE}/{report_id}/download", headers=auth).status_code == 410
    # The cleanup moves it to expired: still 410, now because retention ended.
    with runtime.session_factory.begin() as session:
        repository.expire_due(session=session, limit=100)
    gone = client.get(f"{BASE}/{report_id}/download", headers=auth)
    assert gone.status_code == 410
    assert gone.json()["error"]["details"]["reason"] == "retention_ended"
    # The status route still tells the story; and the advertised request works.
    assert client.get(f"{BASE}/{report_id}", headers=auth).json()["data"]["status"] == "expired"
    regenerate = error["details"]["regenerate"]
    again = client.post(regenerate["path"], json=regenerate["body"], headers=auth)
    assert again.status_code == 201


def test_reports_not_ready_are_404_to_download(client: httpx.Client, runtime: Deps) -> None:
    account = add_account(runtime.engine)
    auth = token_of(client, account)
    ctx = AuthContext(provider_id=account.provider_id)
    with runtime.session_factory.begin() as session:
        pending = repository.create_report(
            session=session,
            ctx=ctx,
            report_type=ReportType.ACCOUNTANT_DETAIL,
            format=ReportFormat.CSV,
            period_start=date(2026, 1, 1),
            period_end=date(2026, 1, 31),
        )
    response = client.get(f"{BASE}/{pending.report_id}/download", headers=auth)
    assert response.status_code == 404
    status = client.get(f"{BASE}/{pending.report_id}", headers=auth)
    assert status.json()["data"]["status"] == "pending"
    assert status.headers["retry-after"] == "2"
    assert status.json()["data"]["sha256"] is None


# --- ranges ------------------------------------------------------------------------

CONTENT = bytes(range(256)) * 1024  # 256 KiB: several encrypted segments


@pytest.fixture(scope="module")
def ranged(runtime: Deps, client: httpx.Client) -> tuple[uuid.UUID, dict[str, str]]:
    account = add_account(runtime.engine)
    return ready_report(runtime, account, CONTENT), token_of(client, account)


def _downloaded(runtime: Deps, report_id: uuid.UUID) -> bool:
    with runtime.engine.connect() as conn:
        flag: bool = conn.execute(
            select(GeneratedReport.downloaded).where(GeneratedReport.report_id == report_id)
        ).scalar_one()
    return flag


@pytest.mark.parametrize(
    ("header", "start", "end"),
    [
        ("bytes=0-0", 0, 0),
        ("bytes=65535-65536", 65535, 65536),  # across a segment edge
        ("bytes=100-", 100, len(CONTENT) - 1),
        ("bytes=-1", len(CONTENT) - 1, len(CONTENT) - 1),
        ("bytes=-70000", len(CONTENT) - 70000, len(CONTENT) - 1),
        ("bytes=200000-999999999", 200000, len(CONTENT) - 1),
    ],
)
def test_single_ranges(
    client: httpx.Client,
    ranged: tuple[uuid.UUID, dict[str, str]],
    header: str,
    start: int,
    end: int,
) -> None:
    report_id, auth = ranged
    response = client.get(f"{BASE}/{report_id}/download", headers={**auth, "Range": header})
    assert response.status_code == 206
    assert response.content == CONTENT[start : end + 1]
    assert response.headers["content-range"] == f"bytes {start}-{end}/{len(CONTENT)}"
    assert response.headers["content-length"] == str(end - start + 1)
    assert response.headers["repr-digest"].startswith("sha-256=:")


def test_multiple_ranges_come_as_multipart(
    client: httpx.Client, ranged: tuple[uuid.UUID, dict[str, str]]
) -> None:
    report_id, auth = ranged
    response = client.get(
        f"{BASE}/{report_id}/download", headers={**auth, "Range": "bytes=0-9, 70000-70009, -5"}
    )
    assert response.status_code == 206
    match = re.fullmatch(r"multipart/byteranges; boundary=(\w+)", response.headers["content-type"])
    assert match
    assert int(response.headers["content-length"]) == len(response.content)
    parts = response.content.split(b"--" + match.group(1).encode())
    bodies = [part.split(b"\r\n\r\n", 1)[1][:-2] for part in parts[1:-1]]
    assert bodies == [CONTENT[0:10], CONTENT[70000:70010], CONTENT[-5:]]
    assert b"Content-Range: bytes 70000-70009/262144" in response.content


def test_unsatisfiable_range_and_if_range(
    client: httpx.Client, runtime: Deps, ranged: tuple[uuid.UUID, dict[str, str]]
) -> None:
    report_id, auth = ranged
    url = f"{BASE}/{report_id}/download"
    refused = client.get(url, headers={**auth, "Range": f"bytes={len(CONTENT)}-"})
    assert refused.status_code == 416
    assert refused.headers["content-range"] == f"bytes */{len(CONTENT)}"
    assert refused.headers["content-type"] == "application/json"
    assert "content-disposition" not in refused.headers  # the body is not the file
    assert refused.json() == {
        "error": {
            "code": "RANGE_NOT_SATISFIABLE",
            "message": "No requested range overlaps the file",
            "details": {"size": len(CONTENT)},
        }
    }
    head = client.head(url, headers={**auth, "Range": f"bytes={len(CONTENT)}-"})
    assert head.status_code == 416
    assert head.headers["content-range"] == f"bytes */{len(CONTENT)}"
    assert head.content == b""
    etag = client.head(url, headers=auth).headers["etag"]
    resumed = client.get(url, headers={**auth, "Range": "bytes=10-19", "If-Range": etag})
    assert resumed.status_code == 206
    stale = client.get(url, headers={**auth, "Range": "bytes=10-19", "If-Range": '"old"'})
    assert stale.status_code == 200
    assert stale.content == CONTENT
    ignored = client.get(url, headers={**auth, "Range": "lines=1-2"})
    assert ignored.status_code == 200


def test_download_is_recorded_only_once_the_last_byte_is_sent(
    client: httpx.Client, runtime: Deps
) -> None:
    account = add_account(runtime.engine)
    auth = token_of(client, account)
    # Larger than every socket buffer between client and server, so a client
    # that stops reading really stops the server before the last byte.
    big = bytes(range(256)) * (32 * 4096)
    report_id = ready_report(runtime, account, big)
    url = f"{BASE}/{report_id}/download"
    head = client.head(url, headers=auth)
    assert head.status_code == 200
    assert head.headers["content-length"] == str(len(big))
    assert head.content == b""
    assert client.get(url, headers={**auth, "Range": "bytes=0-99"}).status_code == 206
    with client.stream("GET", url, headers=auth) as response:
        next(response.iter_bytes(1024))  # then hang up
    # Resuming with the rest of the file completes the download.
    rest = client.get(url, headers={**auth, "Range": "bytes=100-"})
    assert rest.status_code == 206
    assert rest.content == big[100:]
    wait_until(lambda: _downloaded(runtime, report_id), timeout=10, what="downloaded = true")
    # One download: neither the HEAD, the first 100 bytes nor the abandoned
    # stream counted as one.
    assert audit_actions(runtime.engine, report_id) == [("analytics.report_downloaded", False)]


# --- listing -------------------------------------------------------------------


def test_list_pagination_and_filters(client: httpx.Client, runtime: Deps) -> None:
    account = add_account(runtime.engine)
    auth = token_of(client, account)
    ids = [ready_report(runtime, account, b"x\r\n") for _ in range(5)]
    page = client.get(BASE, params={"limit": 2, "offset": 2}, headers=auth).json()
    assert page["pagination"] == {"total": 5, "page": 2, "pageSize": 2, "hasMore": True}
    assert [item["report_id"] for item in page["data"]] == [str(i) for i in ids[::-1][2:4]]
    last = client.get(BASE, params={"limit": 2, "offset": 4}, headers=auth).json()
    assert last["pagination"]["hasMore"] is False
    typed = client.get(BASE, params={"report_type": "WEEKLY_SUMMARY"}, headers=auth).json()
    assert typed["data"] == []
    assert typed["pagination"]["total"] == 0
    today = client.get(
        BASE, params={"start_date": "2000-01-01", "end_date": "2999-12-31"}, headers=auth
    ).json()
    assert today["pagination"]["total"] == 5
    for bad in ({"limit": 0}, {"limit": 101}, {"offset": -1}, {"start_date": "01/02/2026"}):
        response = client.get(BASE, params=bad, headers=auth)
        assert response.status_code == 400, bad
        assert response.json()["error"]["code"] == "VALIDATION_ERROR"


def test_listed_items_are_the_report_out_of_each_row(client: httpx.Client, runtime: Deps) -> None:
    # The list writes its validated rows as ReportOut without building ReportOut
    # objects: each item must be exactly what ReportOut makes of the row, key
    # for key and in the same order, with nothing more (the provider id).
    account = add_account(runtime.engine)
    auth = token_of(client, account)
    ids = [ready_report(runtime, account, b"x\r\n") for _ in range(3)]
    response = client.get(BASE, headers=auth)
    assert response.status_code == 200
    items = json.loads(response.text, object_pairs_hook=list)[0][1]
    ctx = AuthContext(provider_id=account.provider_id)
    with runtime.session_factory() as session:
        for report_id, item in zip(ids[::-1], items, strict=True):
            view = repository.get_report(session=session, ctx=ctx, report_id=report_id)
            expected = ReportOut.model_validate(view, from_attributes=True).model_dump(mode="json")
            assert item == list(expected.items())
    assert "provider_id" not in response.text


def test_list_query_errors_name_the_parameter_and_never_its_value(
    client: httpx.Client, runtime: Deps
) -> None:
    auth = token_of(client, add_account(runtime.engine))
    cases = {
        "limit=abc": ["limit"],
        "offset=-1": ["offset"],
        "colour=red": ["colour"],
        "report_type=NOPE&limit=0": ["report_type", "limit"],
        "start_date=2026-13-01": ["start_date"],
    }
    for query, fields in cases.items():
        response = client.get(f"{BASE}?{query}", headers=auth)
        assert response.status_code == 400, query
        error = response.json()["error"]
        assert error["code"] == "VALIDATION_ERROR"
        assert [d["field"] for d in error["details"]] == fields, query
        assert "NOPE" not in response.text
        assert "abc" not in response.text
    # A repeated name counts by its last value, as FastAPI reads a query string.
    response = client.get(f"{BASE}?limit=0&limit=1", headers=auth)
    assert response.status_code == 200
    assert response.json()["pagination"]["pageSize"] == 1


def _listed(client: httpx.Client, auth: dict[str, str], **params: str) -> list[uuid.UUID]:
    response = client.get(BASE, params=params, headers=auth)
    assert response.status_code == 200, response.text
    page = response.json()
    assert page["pagination"]["total"] == len(page["data"])
    return [uuid.UUID(item["report_id"]) for item in page["data"]]


def test_list_filters_select_by_the_period_a_report_covers(
    client: httpx.Client, runtime: Deps
) -> None:
    account = add_account(runtime.engine)
    auth = token_of(client, account)
    edmonton = ZoneInfo("America/Edmonton")

    def add(
        report_type: ReportType, period: tuple[date, date] | None, created: datetime
    ) -> uuid.UUID:
        portability = report_type is ReportType.DATA_PORTABILITY
        values = report_values(
            account.provider_id,
            report_type=report_type,
            format=ReportFormat.ZIP if portability else ReportFormat.CSV,
            period_start=period[0] if period else None,
            period_end=period[1] if period else None,
            created_at=created,
        )
        with runtime.engine.begin() as conn:
            report_id: uuid.UUID = conn.execute(
                insert(GeneratedReport).values(values).returning(GeneratedReport.report_id)
            ).scalar_one()
        return report_id

    # Requested long after the periods they cover: a filter on the creation
    # time would find none of these three in the first half of 2026.
    january = add(
        ReportType.ACCOUNTANT_DETAIL,
        (date(2026, 1, 1), date(2026, 1, 31)),
        datetime(2026, 11, 20, 9, tzinfo=edmonton),
    )
    spring = add(
        ReportType.ACCOUNTANT_SUMMARY,
        (date(2026, 2, 1), date(2026, 3, 31)),
        datetime(2026, 11, 21, 9, tzinfo=edmonton),
    )
    straddling = add(
        ReportType.ACCOUNTANT_DETAIL,
        (date(2025, 12, 1), date(2026, 2, 15)),
        datetime(2026, 11, 22, 9, tzinfo=edmonton),
    )
    # Without a period, by the day they were requested in Edmonton: the
    # first on 31 January there though already 1 February in UTC.
    late_january = add(ReportType.DATA_PORTABILITY, None, datetime(2026, 2, 1, 6, 30, tzinfo=UTC))
    first_of_february = add(
        ReportType.DATA_PORTABILITY, None, datetime(2026, 2, 1, 7, 30, tzinfo=UTC)
    )

    newest_first = [straddling, spring, january, first_of_february, late_january]
    assert _listed(client, auth) == newest_first
    assert _listed(client, auth, start_date="2026-01-01", end_date="2026-01-31") == [
        january,
        late_january,
    ]
    assert _listed(client, auth, start_date="2026-02-01") == [spring, first_of_february]
    assert _listed(client, auth, end_date="2026-02-15") == [
        straddling,
        january,
        first_of_february,
        late_january,
    ]
    assert _listed(client, auth, start_date="2025-12-01", end_date="2026-03-31") == newest_first
    assert _listed(client, auth, start_date="2026-11-01") == []
    # report_type filters, alone and with the dates.
    assert _listed(client, auth, report_type="ACCOUNTANT_DETAIL") == [straddling, january]
    assert _listed(client, auth, report_type="ACCOUNTANT_DETAIL", start_date="2026-01-01") == [
        january
    ]
    assert _listed(client, auth, report_type="DATA_PORTABILITY", start_date="2026-02-01") == [
        first_of_february
    ]
    assert _listed(client, auth, report_type="WEEKLY_SUMMARY") == []
    refused = client.get(BASE, params={"report_type": "accountant_detail"}, headers=auth)
    assert refused.status_code == 400
    assert refused.json()["error"]["details"][0]["field"] == "report_type"


# --- idempotency ----------------------------------------------------------------


def test_idempotency_key_returns_the_original_report(client: httpx.Client, runtime: Deps) -> None:
    account, other = add_account(runtime.engine), add_account(runtime.engine)
    auth, other_auth = token_of(client, account), token_of(client, other)
    body = {**PERIOD, "format": "csv"}
    key = {"Idempotency-Key": "order-2026-q1"}
    first = client.post(f"{BASE}/accountant", json=body, headers={**auth, **key})
    again = client.post(f"{BASE}/accountant", json=body, headers={**auth, **key})
    assert first.status_code == again.status_code == 201
    # The original report, in whatever state it has reached since.
    assert again.json()["data"]["report_id"] == first.json()["data"]["report_id"]
    assert again.headers["idempotent-replayed"] == "true"
    before = count_rows(runtime.engine)
    misuse = client.post(
        f"{BASE}/accountant", json={**body, "format": "pdf_detail"}, headers={**auth, **key}
    )
    assert misuse.status_code == 422
    assert misuse.json()["error"]["code"] == "IDEMPOTENCY_KEY_REUSED"
    assert count_rows(runtime.engine) == before
    # The same key from another physician is another key: never their report.
    theirs = client.post(f"{BASE}/accountant", json=body, headers={**other_auth, **key})
    assert theirs.status_code == 201
    assert theirs.json()["data"]["report_id"] != first.json()["data"]["report_id"]
    assert "idempotent-replayed" not in theirs.headers
    for bad in ("", "x" * 256, "has space", 'quote"d\x7f'):
        response = client.post(
            f"{BASE}/accountant", json=body, headers={**auth, "Idempotency-Key": bad}
        )
        assert response.status_code == 400, bad
    assert count_rows(runtime.engine)[0] == before[0] + 1  # only the other physician's


def test_concurrent_requests_with_one_key_create_one_report(
    client: httpx.Client, runtime: Deps
) -> None:
    account = add_account(runtime.engine)
    auth = token_of(client, account)
    headers = {**auth, "Idempotency-Key": f"burst-{uuid.uuid4()}"}
    answers: list[httpx.Response] = []
    lock = threading.Lock()

    def send() -> None:
        with httpx.Client(base_url=str(client.base_url), timeout=60) as own:
            response = own.post(
                f"{BASE}/accountant", json={**PERIOD, "format": "csv"}, headers=headers
            )
        with lock:
            answers.append(response)

    threads = [threading.Thread(target=send) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert [r.status_code for r in answers] == [201] * 8
    assert len({r.json()["data"]["report_id"] for r in answers}) == 1
    with runtime.engine.connect() as conn:
        created = conn.execute(
            text("SELECT count(*) FROM generated_reports WHERE provider_id = :p"),
            {"p": account.provider_id},
        ).scalar_one()
    assert created == 1


def count_rows(engine: Engine) -> tuple[int, ...]:
    """Rows of every table a request could change.

    Generation jobs are enqueued only in a report's own transaction, so the
    report count covers them (the worker deletes finished jobs meanwhile).
    """
    with engine.connect() as conn:
        return tuple(
            conn.execute(text(f"SELECT count(*) FROM {table}")).scalar_one()
            for table in (
                "generated_reports",
                "report_idempotency_keys",
                "audit_log",
            )
        )
