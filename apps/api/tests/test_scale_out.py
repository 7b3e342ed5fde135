"""Two API processes and two workers, as on separate machines: one PostgreSQL over TCP, S3.

Every process is the real ``meritum`` command with a data directory of its
own, so nothing can pass between them but the database and the object
store. What must hold across processes (the report, its bytes, idempotency,
sessions) is checked through the *other* process; what is counted per
process (the rate limits) is checked to be exactly that.
"""

from __future__ import annotations

import contextlib
import hashlib
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from apiserver import Account, add_account, bearer
from factories import add_paid_claims, expected_file
from meritum_api.context import AuthContext
from meritum_api.db.cluster import ThrowawayCluster
from meritum_api.db.engine import make_engine
from polling import wait_until
from processes import ApiProcess, WorkerCli, free_port, process_env
from s3server import CREDENTIALS, REGION, moto_s3, s3_client

BASE = "/api/v1/reports"
PERIOD = {"period_start": "2026-01-01", "period_end": "2026-03-31"}
#: Requests a minute per user in each API process.
LIMIT = 40
#: Failed logins per email in each API process.
LOGIN_FAILURES = 3


@dataclass
class Deployment:
    apis: list[ApiProcess]
    workers: list[WorkerCli]
    engine: Engine
    s3_endpoint: str
    bucket: str
    root: Path


@pytest.fixture(scope="module")
def tcp_database() -> Iterator[str]:
    """A PostgreSQL 16 of its own, reached over TCP like a database on another host."""
    cluster = ThrowawayCluster(tcp_port=free_port())
    cluster.start()
    try:
        url = cluster.clone("scale_out")
        assert make_url(url).host == "127.0.0.1"
        yield url
    finally:
        cluster.stop()


@pytest.fixture(scope="module")
def deployment(tcp_database: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    root = tmp_path_factory.mktemp("scale-out")
    with moto_s3() as endpoint, contextlib.ExitStack() as stack:
        bucket = "meritum-scale-out"
        s3_client(endpoint).create_bucket(Bucket=bucket)

        def env(name: str) -> dict[str, str]:
            settings = process_env(
                tcp_database,
                root / name,
                storage_backend="s3",
                s3_bucket=bucket,
                s3_endpoint_url=endpoint,
                s3_region=REGION,
                rate_limit_per_minute=str(LIMIT),
                login_max_failures=str(LOGIN_FAILURES),
            )
            settings["AWS_ACCESS_KEY_ID"] = CREDENTIALS["aws_access_key_id"]
            settings["AWS_SECRET_ACCESS_KEY"] = CREDENTIALS["aws_secret_access_key"]
            return settings

        apis = [
            stack.enter_context(ApiProcess(env(f"api{n}"), root / f"api{n}.log")) for n in (1, 2)
        ]
        workers = [
            stack.enter_context(WorkerCli(f"worker{n}", env(f"worker{n}"), root / f"worker{n}.log"))
            for n in (1, 2)
        ]
        for api in apis:
            api.wait_healthy()
        engine = make_engine(tcp_database, pool_size=2)
        stack.callback(engine.dispose)

        def both_workers_beat() -> bool:
            with engine.connect() as conn:
                beating = conn.execute(
                    text(
                        "SELECT count(*) FROM procrastinate_workers "
                        "WHERE last_heartbeat > now() - interval '10 seconds'"
                    )
                ).scalar_one()
            return bool(beating == 2)

        wait_until(both_workers_beat, timeout=60, what="both workers to report in")
        yield Deployment(apis, workers, engine, endpoint, bucket, root)


def _physician_with_claims(engine: Engine) -> Account:
    account = add_account(engine)
    with Session(engine) as session:
        add_paid_claims(
            session,
            provider_id=account.provider_id,
            count=40,
            first_payment=date(2026, 1, 10),
            days=60,
        )
        session.commit()
    return account


def _login(api: ApiProcess, account: Account, password: str | None = None) -> httpx.Response:
    return httpx.post(
        f"{api.url}/api/v1/auth/login",
        json={"email": account.email, "password": password or account.password},
        timeout=30,
    )


def _token(api: ApiProcess, account: Account) -> dict[str, str]:
    response = _login(api, account)
    assert response.status_code == 200, response.text
    return bearer(response.json()["data"]["token"])


def _request(api: ApiProcess, auth: dict[str, str], key: str, **body: Any) -> httpx.Response:
    return httpx.post(
        f"{api.url}{BASE}/accountant",
        json={**PERIOD, "format": "csv", **body},
        headers={**auth, "Idempotency-Key": key},
        timeout=30,
    )


def _wait_ready(engine: Engine, report_id: str) -> None:
    def ready() -> bool:
        with engine.connect() as conn:
            status = conn.execute(
                text("SELECT status FROM generated_reports WHERE report_id = :r"),
                {"r": report_id},
            ).scalar_one()
        assert status in ("pending", "generating", "ready"), status
        return bool(status == "ready")

    wait_until(ready, timeout=60, what="the report to become ready")


def _generated_by(deployment: Deployment, report_id: str) -> list[str]:
    return [w.name for w in deployment.workers if f"report {report_id}: ready" in w.log()]


def _download(api: ApiProcess, auth: dict[str, str], report_id: str) -> bytes:
    response = httpx.get(f"{api.url}{BASE}/{report_id}/download", headers=auth, timeout=60)
    assert response.status_code == 200, response.text
    return response.content


def test_a_report_requested_through_one_process_is_served_identically_by_the_other(
    deployment: Deployment,
) -> None:
    api1, api2 = deployment.apis
    account = _physician_with_claims(deployment.engine)
    auth = _token(api1, account)
    key = f"scale-out-{uuid.uuid4()}"

    created = _request(api1, auth, key)
    assert created.status_code == 201, created.text
    report_id = created.json()["data"]["report_id"]
    # The same key and body through the other process: the same report, not a second one.
    replayed = _request(api2, auth, key)
    assert replayed.status_code == 201, replayed.text
    assert replayed.json()["data"]["report_id"] == report_id
    assert replayed.headers["idempotent-replayed"] == "true"
    reused = _request(api2, auth, key, period_end="2026-02-28")
    assert reused.status_code == 422
    assert reused.json()["error"]["code"] == "IDEMPOTENCY_KEY_REUSED"
    with deployment.engine.connect() as conn:
        made = conn.execute(
            text("SELECT count(*) FROM generated_reports WHERE provider_id = :p"),
            {"p": account.provider_id},
        ).scalar_one()
    assert made == 1

    _wait_ready(deployment.engine, report_id)
    assert len(_generated_by(deployment, report_id)) == 1
    detail = httpx.get(f"{api2.url}{BASE}/{report_id}", headers=auth).json()["data"]
    assert detail["status"] == "ready"

    through_two = _download(api2, auth, report_id)
    assert through_two == _download(api1, auth, report_id)
    assert through_two == expected_file(
        deployment.engine, AuthContext(provider_id=account.provider_id), uuid.UUID(report_id)
    )
    assert hashlib.sha256(through_two).hexdigest() == detail["sha256"]

    # The file lives in the object store only: no process kept a copy of its own.
    listed = s3_client(deployment.s3_endpoint).list_objects_v2(Bucket=deployment.bucket)
    assert [o["Key"] for o in listed.get("Contents", []) if report_id in o["Key"]] != []
    assert [p for p in deployment.root.rglob("*") if report_id in p.name] == []


def test_either_worker_generates_what_either_process_was_asked(deployment: Deployment) -> None:
    api1, api2 = deployment.apis
    account = _physician_with_claims(deployment.engine)
    auth = _token(api2, account)
    first = _request(api2, auth, f"first-{uuid.uuid4()}").json()["data"]["report_id"]
    _wait_ready(deployment.engine, first)
    (maker,) = _generated_by(deployment, first)

    # The worker that made it leaves; the other one takes the next request.
    leaving = next(w for w in deployment.workers if w.name == maker)
    assert leaving.stop() == 0
    second = _request(api1, auth, f"second-{uuid.uuid4()}").json()["data"]["report_id"]
    _wait_ready(deployment.engine, second)
    (other,) = _generated_by(deployment, second)
    assert other != maker
    for report_id in (first, second):
        content = _download(api2, auth, report_id)
        assert content == _download(api1, auth, report_id)
        assert content == expected_file(
            deployment.engine, AuthContext(provider_id=account.provider_id), uuid.UUID(report_id)
        )


def test_the_rate_limit_is_counted_by_each_process_on_its_own(deployment: Deployment) -> None:
    account = add_account(deployment.engine)
    auth = _token(deployment.apis[0], account)
    # The limiter's sliding window weighs the previous minute's count: a burst
    # that straddles a minute boundary is partly forgiven. Start early in one.
    wait_until(lambda: time.time() % 60 < 30, timeout=35, what="the first half of a minute")
    for api in deployment.apis:
        # A process that has refused the user does not stop the other from serving them.
        for _ in range(LIMIT):
            assert httpx.get(f"{api.url}/api/v1/auth/me", headers=auth).status_code == 200
        over = httpx.get(f"{api.url}/api/v1/auth/me", headers=auth)
        assert over.status_code == 429
        assert int(over.headers["retry-after"]) >= 1


def test_failed_logins_are_throttled_by_each_process_on_its_own(deployment: Deployment) -> None:
    account = add_account(deployment.engine)
    api1, api2 = deployment.apis
    for _ in range(LOGIN_FAILURES):
        assert _login(api1, account, password="not the password 1").status_code == 401
    assert _login(api1, account).status_code == 429  # even the right password, for a while
    assert _login(api2, account).status_code == 200


def test_a_logout_through_one_process_ends_the_session_in_the_other(
    deployment: Deployment,
) -> None:
    api1, api2 = deployment.apis
    account = add_account(deployment.engine)
    auth = _token(api1, account)
    assert httpx.get(f"{api2.url}/api/v1/auth/me", headers=auth).status_code == 200
    assert httpx.post(f"{api2.url}/api/v1/auth/logout", headers=auth).status_code == 204

    def refused() -> bool:
        return httpx.get(f"{api1.url}/api/v1/auth/me", headers=auth).status_code == 401

    wait_until(refused, timeout=1, what="the other process to refuse the session")
