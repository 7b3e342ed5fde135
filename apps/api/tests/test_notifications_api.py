"""The notifications endpoints over real HTTP: each user sees and marks only their own."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine, text

from apiserver import Account, add_account, bearer, cookie_header, serve, settings_for
from factories import add_paid_claims
from meritum_api.app import create_app
from meritum_api.clock import ManualClock
from meritum_api.context import AuthContext
from meritum_api.deps import Deps, Role, build_deps
from meritum_api.domains.analytics import service as reports
from meritum_api.domains.analytics.generation import Outcome, generate_report
from meritum_shared.constants.auth import PHYSICIAN_PERMISSIONS, Permission, UserRole
from meritum_shared.schemas.validation.analytics import AccountantExportRequest

BASE = "/api/v1/notifications"
START = datetime(2026, 4, 2, 14, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def clock() -> ManualClock:
    return ManualClock(START)


@pytest.fixture(scope="module")
def runtime(db_url: str, clock: ManualClock) -> Iterator[Deps]:
    rt = build_deps(
        settings_for(db_url, rate_limit_per_minute=100_000),
        db_url,
        role=Role.COMMAND,
        clock=clock,
    )
    yield rt
    rt.close()


@pytest.fixture(scope="module")
def client(runtime: Deps) -> Iterator[httpx.Client]:
    with serve(create_app(runtime)) as url, httpx.Client(base_url=url, timeout=60) as http:
        yield http


def login(client: httpx.Client, account: Account) -> dict[str, Any]:
    response = client.post(
        "/api/v1/auth/login", json={"email": account.email, "password": account.password}
    )
    assert response.status_code == 200, response.text
    client.cookies.clear()
    data: dict[str, Any] = response.json()["data"]
    return data


def _ready_report(runtime: Deps, physician: Account, month: int) -> uuid.UUID:
    ctx = AuthContext(
        provider_id=physician.provider_id,
        user_id=physician.user_id,
        permissions=PHYSICIAN_PERMISSIONS,
    )
    with runtime.session_factory.begin() as session:
        add_paid_claims(
            session,
            provider_id=physician.provider_id,
            count=2,
            first_payment=date(2026, month, 2),
            days=10,
        )
        requested = reports.request_accountant_export(
            session=session,
            ctx=ctx,
            queue=runtime.queue,
            request=AccountantExportRequest.model_validate(
                {
                    "period_start": f"2026-{month:02d}-01",
                    "period_end": f"2026-{month:02d}-{[31, 28, 31, 30][month - 1]}",
                    "format": "csv",
                }
            ),
        )
    report_id = requested.report.report_id
    outcome = generate_report(deps=runtime, report_id=report_id, is_final_attempt=lambda e: True)
    assert outcome is Outcome.READY
    return report_id


@pytest.fixture(scope="module")
def team(engine: Engine, runtime: Deps, clock: ManualClock) -> dict[str, Any]:
    physician = add_account(engine)
    delegate = add_account(
        engine,
        role=UserRole.DELEGATE,
        provider_id=physician.provider_id,
        permissions={Permission.REPORT_VIEW},
    )
    stranger = add_account(engine)
    reports_made = []
    for month in (1, 2, 3):
        reports_made.append(_ready_report(runtime, physician, month))
        clock.advance(timedelta(minutes=5))
    return {
        "physician": physician,
        "delegate": delegate,
        "stranger": stranger,
        "reports": reports_made,
    }


def _list(client: httpx.Client, token: str, **params: Any) -> dict[str, Any]:
    response = client.get(BASE, params=params, headers=bearer(token))
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def test_the_list_is_the_readers_own_newest_first(
    client: httpx.Client, team: dict[str, Any]
) -> None:
    token = login(client, team["physician"])["token"]
    body = _list(client, token)
    assert [item["report_id"] for item in body["data"]] == [
        str(r) for r in reversed(team["reports"])
    ]
    assert body["unread_count"] == 3
    assert body["pagination"] == {"total": 3, "page": 1, "pageSize": 20, "hasMore": False}
    newest = body["data"][0]
    assert newest["event"] == "REPORT_READY"
    assert newest["title"] == "Your accountant summary for March 2026 is ready"
    assert newest["read_at"] is None
    assert set(newest) == {
        "notification_id",
        "event",
        "title",
        "report_id",
        "report_type",
        "period_start",
        "period_end",
        "created_at",
        "read_at",
    }
    page = _list(client, token, limit=2, offset=2)
    assert len(page["data"]) == 1
    assert page["pagination"] == {"total": 3, "page": 2, "pageSize": 2, "hasMore": False}

    delegate = _list(client, login(client, team["delegate"])["token"])
    assert len(delegate["data"]) == 3
    mine = {item["notification_id"] for item in body["data"]}
    assert mine.isdisjoint(item["notification_id"] for item in delegate["data"])
    stranger = _list(client, login(client, team["stranger"])["token"])
    assert stranger["data"] == []
    assert stranger["unread_count"] == 0


def test_another_users_notification_is_not_found_and_stays_unread(
    client: httpx.Client, team: dict[str, Any]
) -> None:
    owner = login(client, team["physician"])["token"]
    target = _list(client, owner)["data"][0]["notification_id"]
    for intruder in ("delegate", "stranger"):
        token = login(client, team[intruder])["token"]
        response = client.post(f"{BASE}/{target}/read", headers=bearer(token))
        assert response.status_code == 404
        assert response.json() == {
            "error": {"code": "NOT_FOUND", "message": "Notification not found"}
        }
    unknown = client.post(f"{BASE}/{uuid.uuid4()}/read", headers=bearer(owner))
    assert unknown.status_code == 404
    assert _list(client, owner)["unread_count"] == 3


def test_reading_one_then_all(
    client: httpx.Client, team: dict[str, Any], clock: ManualClock
) -> None:
    token = login(client, team["delegate"])["token"]
    first = _list(client, token)["data"][-1]["notification_id"]
    response = client.post(f"{BASE}/{first}/read", headers=bearer(token))
    assert response.status_code == 200, response.text
    read = response.json()["data"]
    assert read["notification_id"] == first
    assert datetime.fromisoformat(read["read_at"]) == clock.now()
    clock.advance(timedelta(minutes=1))
    again = client.post(f"{BASE}/{first}/read", headers=bearer(token)).json()["data"]
    assert again["read_at"] == read["read_at"]  # the first reading stays

    unread = _list(client, token, unread="true")
    assert first not in {item["notification_id"] for item in unread["data"]}
    assert unread["unread_count"] == 2
    assert unread["pagination"]["total"] == 2
    assert _list(client, token)["pagination"]["total"] == 3

    marked = client.post(f"{BASE}/read-all", headers=bearer(token))
    assert marked.status_code == 200
    assert marked.json() == {"data": {"updated": 2}}
    assert _list(client, token, unread="true")["data"] == []
    # The physician's own notifications were not touched by the delegate's read-all.
    assert _list(client, login(client, team["physician"])["token"])["unread_count"] == 3


def test_cookie_posts_need_the_csrf_token(
    client: httpx.Client, team: dict[str, Any], engine: Engine
) -> None:
    session = login(client, team["stranger"])
    cookie = cookie_header(session["token"])
    refused = client.post(f"{BASE}/read-all", headers=cookie)
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "CSRF_FAILED"
    allowed = client.post(
        f"{BASE}/read-all", headers={**cookie, "X-CSRF-Token": session["csrf_token"]}
    )
    assert allowed.status_code == 200
    assert client.get(BASE, headers=cookie).status_code == 200  # reads need no token


@pytest.mark.parametrize(
    ("method", "path", "params"),
    [
        ("GET", BASE, {"unread": "perhaps"}),
        ("GET", BASE, {"limit": "0"}),
        ("GET", BASE, {"offset": "-1"}),
        ("GET", BASE, {"colour": "red"}),
        ("POST", f"{BASE}/not-a-uuid/read", {}),
    ],
)
def test_bad_input_is_a_400_that_changes_nothing(
    client: httpx.Client, team: dict[str, Any], method: str, path: str, params: dict[str, str]
) -> None:
    token = login(client, team["physician"])["token"]
    before = _list(client, token)
    response = client.request(method, path, params=params, headers=bearer(token))
    assert response.status_code == 400, response.text
    assert response.json()["error"]["code"] == "VALIDATION_ERROR"
    assert _list(client, token) == before


def test_unauthenticated_requests_are_refused(client: httpx.Client) -> None:
    for method, path in (("GET", BASE), ("POST", f"{BASE}/read-all")):
        response = client.request(method, path)
        assert response.status_code == 401
        assert response.json()["error"]["code"] == "UNAUTHENTICATED"


def test_delivery_preference_defaults_to_in_app_and_can_be_changed(
    client: httpx.Client, team: dict[str, Any], engine: Engine
) -> None:
    token = login(client, team["stranger"])["token"]
    path = f"{BASE}/preferences"
    assert client.get(path, headers=bearer(token)).json() == {"data": {"delivery_method": "IN_APP"}}
    changed = client.put(path, json={"delivery_method": "BOTH"}, headers=bearer(token))
    assert changed.status_code == 200
    assert client.get(path, headers=bearer(token)).json()["data"]["delivery_method"] == "BOTH"
    bad = client.put(path, json={"delivery_method": "PIGEON"}, headers=bearer(token))
    assert bad.status_code == 400
    with engine.connect() as conn:
        stored = conn.execute(
            text("SELECT delivery_method FROM notification_preferences WHERE user_id = :u"),
            {"u": team["stranger"].user_id},
        ).scalar_one()
    assert stored == "BOTH"
