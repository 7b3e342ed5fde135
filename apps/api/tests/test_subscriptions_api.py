"""The subscription API over real HTTP: each physician's own subscriptions, audited, validated."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine, text

from apiserver import Account, add_account, bearer, cookie_header, serve, settings_for
from meritum_api.app import create_app
from meritum_api.calendar import ALBERTA, EDMONTON
from meritum_api.clock import ManualClock
from meritum_api.deps import Deps, Role, build_deps
from meritum_shared.constants.analytics import ReportType, SubscriptionFrequency
from meritum_shared.constants.auth import Permission, UserRole

BASE = "/api/v1/report-subscriptions"
#: A Thursday afternoon in Edmonton (MDT).
START = datetime(2026, 4, 2, 20, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def clock() -> ManualClock:
    return ManualClock(START)


@pytest.fixture(scope="module")
def runtime(db_url: str, clock: ManualClock) -> Iterator[Deps]:
    rt = build_deps(
        settings_for(db_url, rate_limit_per_minute=100_000), db_url, role=Role.COMMAND, clock=clock
    )
    yield rt
    rt.close()


@pytest.fixture(scope="module")
def client(runtime: Deps) -> Iterator[httpx.Client]:
    with serve(create_app(runtime)) as url, httpx.Client(base_url=url, timeout=60) as http:
        yield http


@dataclass(frozen=True)
class Team:
    physician: Account
    exporter: Account  # a delegate holding REPORT_VIEW and REPORT_EXPORT
    viewer: Account  # a delegate holding REPORT_VIEW only
    stranger: Account  # another physician


_TOKENS: dict[uuid.UUID, dict[str, str]] = {}


def _token(client: httpx.Client, account: Account) -> dict[str, str]:
    # Logging in hashes (argon2): once per account and module.
    if account.user_id not in _TOKENS:
        response = client.post(
            "/api/v1/auth/login", json={"email": account.email, "password": account.password}
        )
        assert response.status_code == 200, response.text
        client.cookies.clear()
        _TOKENS[account.user_id] = bearer(response.json()["data"]["token"])
    return _TOKENS[account.user_id]


@pytest.fixture(scope="module")
def team(runtime: Deps) -> Team:
    physician = add_account(runtime.engine)

    def delegate(*permissions: Permission) -> Account:
        return add_account(
            runtime.engine,
            role=UserRole.DELEGATE,
            provider_id=physician.provider_id,
            permissions=set(permissions),
        )

    return Team(
        physician=physician,
        exporter=delegate(Permission.REPORT_VIEW, Permission.REPORT_EXPORT),
        viewer=delegate(Permission.REPORT_VIEW),
        stranger=add_account(runtime.engine),
    )


@pytest.fixture(autouse=True)
def _no_subscriptions(runtime: Deps, team: Team) -> None:
    """Each test starts with no subscription (the accounts are shared: hashing is slow)."""
    with runtime.engine.begin() as conn:
        conn.execute(
            text("DELETE FROM report_subscriptions WHERE provider_id = ANY (:p)"),
            {"p": [team.physician.provider_id, team.stranger.provider_id]},
        )


def _rows(engine: Engine, provider_id: uuid.UUID) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        return [
            dict(row._mapping)
            for row in conn.execute(
                text(
                    "SELECT subscription_id, report_type, frequency, delivery_method, is_active, "
                    "next_run_at, last_run_at FROM report_subscriptions WHERE provider_id = :p "
                    "ORDER BY created_at"
                ),
                {"p": provider_id},
            )
        ]


def _audit(engine: Engine, subscription_id: str) -> list[tuple[str, uuid.UUID, dict[str, Any]]]:
    with engine.connect() as conn:
        return [
            (row.action, row.actor_user_id, row.details)
            for row in conn.execute(
                text(
                    "SELECT action, actor_user_id, details FROM audit_log "
                    "WHERE resource_id = :r ORDER BY id"
                ),
                {"r": subscription_id},
            )
        ]


def _snapshot(engine: Engine) -> tuple[object, ...]:
    with engine.connect() as conn:
        counts = [
            conn.execute(text(f"SELECT count(*) FROM {table}")).scalar_one()
            for table in ("report_subscriptions", "subscription_runs", "audit_log")
        ]
        changed = conn.execute(
            text("SELECT coalesce(max(updated_at), 'epoch') FROM report_subscriptions")
        ).scalar_one()
    return (*counts, changed)


def _at(payload: str) -> datetime:
    return datetime.fromisoformat(payload.replace("Z", "+00:00"))


def test_create_with_defaults_then_list_with_the_next_run(
    client: httpx.Client, runtime: Deps, team: Team, clock: ManualClock
) -> None:
    auth = _token(client, team.physician)
    created = client.post(BASE, json={"report_type": "REJECTION_DIGEST"}, headers=auth)
    assert created.status_code == 201, created.text
    data = created.json()["data"]
    assert created.headers["location"] == f"{BASE}/{data['subscription_id']}"
    assert data["frequency"] == "DAILY"  # the type's first frequency
    assert data["delivery_method"] == "IN_APP"
    assert data["is_active"] is True
    assert data["last_run_at"] is None
    expected = ALBERTA.next_run(
        SubscriptionFrequency.DAILY, ReportType.REJECTION_DIGEST, after=clock.now()
    )
    assert _at(data["next_run_at"]) == expected.at
    assert expected.at == datetime(2026, 4, 3, 12, 0, tzinfo=UTC)  # Friday 06:00 MDT
    listed = client.get(BASE, headers=auth)
    assert listed.status_code == 200
    assert listed.json() == {"data": [data]}
    weekly = client.post(
        BASE,
        json={"report_type": "WCB_TIMING", "frequency": "DAILY", "delivery_method": "BOTH"},
        headers=auth,
    )
    assert weekly.status_code == 201
    assert [s["report_type"] for s in client.get(BASE, headers=auth).json()["data"]] == [
        "REJECTION_DIGEST",
        "WCB_TIMING",
    ]
    assert _audit(runtime.engine, data["subscription_id"]) == [
        (
            "analytics.subscription_created",
            team.physician.user_id,
            {"report_type": "REJECTION_DIGEST", "frequency": "DAILY", "delivery_method": "IN_APP"},
        )
    ]


def test_a_second_subscription_to_a_type_is_409_and_changes_nothing(
    client: httpx.Client, runtime: Deps, team: Team
) -> None:
    auth = _token(client, team.physician)
    body = {"report_type": "MONTHLY_PERFORMANCE"}
    assert client.post(BASE, json=body, headers=auth).status_code == 201
    before = _snapshot(runtime.engine)
    again = client.post(BASE, json={**body, "frequency": "QUARTERLY"}, headers=auth)
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "SUBSCRIPTION_EXISTS"
    assert _snapshot(runtime.engine) == before
    # Another physician may subscribe to the same type.
    other = client.post(BASE, json=body, headers=_token(client, team.stranger))
    assert other.status_code == 201


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"report_type": "ACCOUNTANT_SUMMARY"}, "NOT_SUBSCRIBABLE"),
        ({"report_type": "ACCOUNTANT_DETAIL"}, "NOT_SUBSCRIBABLE"),
        ({"report_type": "DATA_PORTABILITY", "frequency": "DAILY"}, "NOT_SUBSCRIBABLE"),
        ({"report_type": "WEEKLY_SUMMARY", "frequency": "DAILY"}, "FREQUENCY_NOT_ALLOWED"),
        ({"report_type": "RRNP_QUARTERLY", "frequency": "MONTHLY"}, "FREQUENCY_NOT_ALLOWED"),
        ({"report_type": "REJECTION_DIGEST", "frequency": "QUARTERLY"}, "FREQUENCY_NOT_ALLOWED"),
    ],
)
def test_business_rules_answer_422_and_change_nothing(
    client: httpx.Client, runtime: Deps, team: Team, body: dict[str, str], code: str
) -> None:
    auth = _token(client, team.physician)
    before = _snapshot(runtime.engine)
    response = client.post(BASE, json=body, headers=auth)
    assert response.status_code == 422, response.text
    assert response.json()["error"]["code"] == code
    assert _snapshot(runtime.engine) == before


def test_update_recomputes_the_next_run_and_audits_old_and_new(
    client: httpx.Client, runtime: Deps, team: Team, clock: ManualClock
) -> None:
    auth = _token(client, team.exporter)  # a delegate acting for the physician
    created = client.post(BASE, json={"report_type": "REJECTION_DIGEST"}, headers=auth).json()
    sid = created["data"]["subscription_id"]
    weekly = client.put(f"{BASE}/{sid}", json={"frequency": "WEEKLY"}, headers=auth)
    assert weekly.status_code == 200, weekly.text
    data = weekly.json()["data"]
    assert data["frequency"] == "WEEKLY"
    monday = ALBERTA.next_run(
        SubscriptionFrequency.WEEKLY, ReportType.REJECTION_DIGEST, after=clock.now()
    )
    assert _at(data["next_run_at"]) == monday.at
    assert monday.at.astimezone(EDMONTON).weekday() == 0
    # Delivery only: the schedule stays.
    emailed = client.put(f"{BASE}/{sid}", json={"delivery_method": "EMAIL"}, headers=auth)
    assert emailed.json()["data"]["next_run_at"] == data["next_run_at"]
    assert emailed.json()["data"]["delivery_method"] == "EMAIL"
    # Paused for three weeks, then resumed: the next run is counted from the resumption.
    paused = client.put(f"{BASE}/{sid}", json={"is_active": False}, headers=auth)
    assert paused.json()["data"]["is_active"] is False
    clock.advance(timedelta(days=21))
    resumed = client.put(f"{BASE}/{sid}", json={"is_active": True}, headers=auth)
    after_resume = ALBERTA.next_run(
        SubscriptionFrequency.WEEKLY, ReportType.REJECTION_DIGEST, after=clock.now()
    )
    assert _at(resumed.json()["data"]["next_run_at"]) == after_resume.at
    assert after_resume.at > clock.now()
    # The same values again change nothing and audit nothing.
    same = client.put(f"{BASE}/{sid}", json={"frequency": "WEEKLY"}, headers=auth)
    assert same.status_code == 200
    assert same.json()["data"]["updated_at"] == resumed.json()["data"]["updated_at"]
    actor = team.exporter.user_id
    assert _audit(runtime.engine, sid)[1:] == [
        (
            "analytics.subscription_updated",
            actor,
            {
                "report_type": "REJECTION_DIGEST",
                "old_frequency": "DAILY",
                "new_frequency": "WEEKLY",
            },
        ),
        (
            "analytics.subscription_updated",
            actor,
            {
                "report_type": "REJECTION_DIGEST",
                "old_delivery_method": "IN_APP",
                "new_delivery_method": "EMAIL",
            },
        ),
        (
            "analytics.subscription_updated",
            actor,
            {"report_type": "REJECTION_DIGEST", "old_is_active": True, "new_is_active": False},
        ),
        (
            "analytics.subscription_updated",
            actor,
            {"report_type": "REJECTION_DIGEST", "old_is_active": False, "new_is_active": True},
        ),
    ]
    # The subscription is the physician's: the physician sees it.
    listed = client.get(BASE, headers=_token(client, team.physician)).json()["data"]
    assert [s["subscription_id"] for s in listed] == [sid]


def test_delete_answers_204_audits_and_a_second_delete_is_404(
    client: httpx.Client, runtime: Deps, team: Team
) -> None:
    auth = _token(client, team.physician)
    sid = client.post(BASE, json={"report_type": "WCB_TIMING"}, headers=auth).json()["data"][
        "subscription_id"
    ]
    deleted = client.delete(f"{BASE}/{sid}", headers=auth)
    assert deleted.status_code == 204
    assert deleted.content == b""
    assert _rows(runtime.engine, team.physician.provider_id) == []
    assert _audit(runtime.engine, sid)[-1] == (
        "analytics.subscription_cancelled",
        team.physician.user_id,
        {"report_type": "WCB_TIMING", "frequency": "WEEKLY"},
    )
    again = client.delete(f"{BASE}/{sid}", headers=auth)
    assert again.status_code == 404
    # Subscribing again after a cancellation is allowed.
    assert client.post(BASE, json={"report_type": "WCB_TIMING"}, headers=auth).status_code == 201


def test_another_physicians_subscription_is_404_on_every_id_route(
    client: httpx.Client, runtime: Deps, team: Team
) -> None:
    owner = _token(client, team.physician)
    sid = client.post(BASE, json={"report_type": "WEEKLY_SUMMARY"}, headers=owner).json()["data"][
        "subscription_id"
    ]
    intruder = _token(client, team.stranger)
    before = _snapshot(runtime.engine)
    for target in (sid, str(uuid.uuid4())):
        for method, body in (("PUT", {"is_active": False}), ("DELETE", None)):
            response = client.request(method, f"{BASE}/{target}", json=body, headers=intruder)
            assert response.status_code == 404, (target, method)
            assert response.json() == {
                "error": {"code": "NOT_FOUND", "message": "Subscription not found"}
            }
    assert client.get(BASE, headers=intruder).json() == {"data": []}
    assert _snapshot(runtime.engine) == before
    assert _rows(runtime.engine, team.physician.provider_id)[0]["is_active"] is True


def test_permissions_of_delegates(client: httpx.Client, runtime: Deps, team: Team) -> None:
    owner = _token(client, team.physician)
    sid = client.post(BASE, json={"report_type": "WEEKLY_SUMMARY"}, headers=owner).json()["data"][
        "subscription_id"
    ]
    viewer = _token(client, team.viewer)
    assert client.get(BASE, headers=viewer).status_code == 200
    before = _snapshot(runtime.engine)
    for method, path, body in (
        ("POST", BASE, {"report_type": "WCB_TIMING"}),
        ("PUT", f"{BASE}/{sid}", {"is_active": False}),
        ("DELETE", f"{BASE}/{sid}", None),
    ):
        response = client.request(method, path, json=body, headers=viewer)
        assert response.status_code == 403, (method, response.text)
        assert response.json()["error"]["code"] == "FORBIDDEN"
    assert _snapshot(runtime.engine) == before
    # Without REPORT_VIEW even the list is refused.
    no_view = add_account(
        runtime.engine,
        role=UserRole.DELEGATE,
        provider_id=team.physician.provider_id,
        permissions={Permission.DATA_EXPORT},
    )
    assert client.get(BASE, headers=_token(client, no_view)).status_code == 403
    assert client.get(BASE).status_code == 401


def test_cookie_writes_need_the_csrf_token(client: httpx.Client, runtime: Deps, team: Team) -> None:
    login = client.post(
        "/api/v1/auth/login",
        json={"email": team.physician.email, "password": team.physician.password},
    ).json()["data"]
    client.cookies.clear()
    before = _snapshot(runtime.engine)
    refused = client.post(
        BASE, json={"report_type": "WCB_TIMING"}, headers=cookie_header(login["token"])
    )
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "CSRF_FAILED"
    assert _snapshot(runtime.engine) == before


LONE_SURROGATE = b'{"report_type": "\\ud800"}'


@pytest.mark.parametrize(
    ("method", "path", "content"),
    [
        ("POST", "", b"{}"),
        ("POST", "", b'{"report_type": "WEEKLY_SUMMARY", "colour": "red"}'),
        ("POST", "", b'{"report_type": "WEEKLY\\u0000SUMMARY"}'),
        ("POST", "", LONE_SURROGATE),
        ("POST", "", b'{"report_type": "\xed\xa0\x80"}'),
        ("POST", "", b'{"report_type": 5}'),
        ("POST", "", b'{"report_type": ["WEEKLY_SUMMARY"]}'),
        ("POST", "", b'{"report_type": "WEEKLY_SUMMARY", "delivery_method": "PIGEON"}'),
        ("POST", "", b'{"report_type": "WEEKLY_SUMMARY", "frequency": "weekly"}'),
        ("POST", "", b'["WEEKLY_SUMMARY"]'),
        ("POST", "", b"not json"),
        ("POST", "", b'{"report_type": "' + b"W" * 70_000 + b'"}'),
        ("PUT", "/{sid}", b"{}"),
        ("PUT", "/{sid}", b'{"frequency": null}'),
        ("PUT", "/{sid}", b'{"is_active": "yes"}'),
        ("PUT", "/{sid}", b'{"is_active": 1}'),
        ("PUT", "/{sid}", b'{"is_active": false, "report_type": "WCB_TIMING"}'),
        ("PUT", "/{sid}", b'{"delivery_method": "EMAIL\\u0000"}'),
        ("PUT", "/{sid}", b'{"frequency": "DAILY"}'),  # not allowed for WEEKLY_SUMMARY: 422
        ("PUT", "/not-a-uuid", b'{"is_active": false}'),
        ("PUT", "/%00", b'{"is_active": false}'),
        ("DELETE", "/not-a-uuid", b""),
        ("DELETE", "/" + "9" * 400, b""),
    ],
)
def test_bad_input_is_refused_with_the_error_body_and_changes_nothing(
    client: httpx.Client, runtime: Deps, team: Team, method: str, path: str, content: bytes
) -> None:
    auth = _token(client, team.physician)
    sid = client.post(BASE, json={"report_type": "WEEKLY_SUMMARY"}, headers=auth).json()["data"][
        "subscription_id"
    ]
    before = _snapshot(runtime.engine)
    response = client.request(
        method,
        BASE + path.format(sid=sid),
        content=content,
        headers={**auth, "Content-Type": "application/json"},
    )
    assert 400 <= response.status_code < 500, response.text
    if len(content) > 65_536:
        assert response.status_code == 413
    elif b'"DAILY"' in content:
        assert response.status_code == 422
    else:
        assert response.status_code == 400, response.text
        assert response.json()["error"]["code"] == "VALIDATION_ERROR"
    error = response.json()["error"]
    assert set(error) <= {"code", "message", "details"}
    assert "Traceback" not in response.text
    assert _snapshot(runtime.engine) == before
