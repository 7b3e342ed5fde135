"""A report whose master key was removed: a clear answer over real HTTP, never a bare 500."""

from __future__ import annotations

import base64
import uuid
from datetime import date

import httpx
import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from apiserver import Account, add_account, bearer, build_app, serve, settings_for
from meritum_api.context import AuthContext
from meritum_api.crypto.keys import load_keyring
from meritum_api.domains.analytics import repository
from meritum_api.domains.analytics.keys import storage_key
from meritum_api.settings import Settings
from meritum_api.storage.factory import make_storage
from meritum_shared.constants.analytics import ReportFormat, ReportStatus, ReportType
from polling import wait_until

BASE = "/api/v1/reports"
CONTENT = b"date,code,fee\r\n" + b"2026-01-15,03.03A,37.85\r\n" * 8000  # several segments
KEY_A = {"key-a": base64.b64encode(bytes(range(32))).decode()}
KEY_B = {"key-b": base64.b64encode(bytes(range(32, 64))).decode()}


def ready_report(settings: Settings, engine: Engine, account: Account) -> uuid.UUID:
    """A ready accountant CSV of ``account``, its file written with the keys of ``settings``."""
    storage = make_storage(settings, load_keyring(settings))
    with Session(engine) as session, session.begin():
        view = repository.create_report(
            session=session,
            ctx=AuthContext(provider_id=account.provider_id),
            report_type=ReportType.ACCOUNTANT_DETAIL,
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
        stored = storage.write(key, [CONTENT])
        repository.finish_ready(
            session=session, report=view, size=stored.size, sha256=stored.sha256
        )
    return view.report_id


def sign_in(client: httpx.Client, account: Account) -> dict[str, str]:
    response = client.post(
        "/api/v1/auth/login", json={"email": account.email, "password": account.password}
    )
    assert response.status_code == 200, response.text
    client.cookies.clear()
    token: str = response.json()["data"]["token"]
    return bearer(token)


@pytest.fixture(scope="module")
def under_key_a(db_url: str) -> Settings:
    return settings_for(db_url, master_keys=KEY_A, rate_limit_per_minute=100_000)


@pytest.fixture(scope="module")
def without_key_a(db_url: str, under_key_a: Settings) -> Settings:
    """The same database and files, after a restart with key A removed from the keys."""
    return settings_for(
        db_url,
        master_keys=KEY_B,
        rate_limit_per_minute=100_000,
        data_dir=under_key_a.data_dir,
        storage_dir=under_key_a.storage_dir,
    )


def test_a_removed_master_key_answers_report_unreadable(
    engine: Engine,
    under_key_a: Settings,
    without_key_a: Settings,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level("INFO")
    account = add_account(engine)
    report_id = ready_report(under_key_a, engine, account)
    download = f"{BASE}/{report_id}/download"
    with serve(build_app(engine, under_key_a)) as url, httpx.Client(base_url=url) as client:
        auth = sign_in(client, account)
        before = client.get(download, headers=auth)
        assert before.status_code == 200
        assert before.content == CONTENT
        wait_until(
            lambda: client.get(f"{BASE}/{report_id}", headers=auth).json()["data"]["downloaded"],
            timeout=10,
            what="the download to be recorded",
        )

    caplog.clear()
    with serve(build_app(engine, without_key_a)) as url, httpx.Client(base_url=url) as client:
        auth = sign_in(client, account)
        size = len(CONTENT)
        answers = {
            "whole": client.get(download, headers=auth),
            "one range": client.get(download, headers={**auth, "Range": "bytes=100-199"}),
            "to the end": client.get(download, headers={**auth, "Range": f"bytes={size - 5}-"}),
            "several ranges": client.get(
                download, headers={**auth, "Range": "bytes=0-9,70000-70009"}
            ),
        }
        head = client.head(download, headers=auth)
        detail = client.get(f"{BASE}/{report_id}", headers=auth)
        assert detail.status_code == 200  # the report itself is still listed and described
        # None of the refusals was recorded as a download.
        assert detail.json()["data"]["download_count"] == 1

        for name, answer in answers.items():
            assert answer.status_code == 500, name
            assert answer.headers["content-type"] == "application/json", name
            error = answer.json()["error"]
            assert error["code"] == "REPORT_UNREADABLE", name
            assert error["message"] == (
                "This report's file can no longer be read; "
                "request the report again to make a new copy"
            )
            assert error["details"] == {
                "report_id": str(report_id),
                "regenerate": {
                    "method": "POST",
                    "path": f"{BASE}/accountant",
                    "body": {
                        "period_start": "2026-01-01",
                        "period_end": "2026-03-31",
                        "format": "csv",
                    },
                },
            }, name
        assert head.status_code == 500

        # The log names the missing key, once per refusal, and never the storage key.
        lines = [r.getMessage() for r in caplog.records if "cannot be read" in r.getMessage()]
        assert len(lines) == len(answers) + 1  # and the HEAD
        assert all("'key-a'" in line and str(report_id) in line for line in lines)
        key = storage_key(provider_id=account.provider_id, report_id=report_id)
        logged = "\n".join(record.getMessage() for record in caplog.records)
        assert key not in logged
        assert str(account.provider_id) + "/" not in logged
        for answer in [*answers.values(), head]:
            seen = answer.text + "\n".join(f"{k}: {v}" for k, v in answer.headers.items())
            assert key not in seen
            assert "key-b" not in seen  # nor anything of the server's keys

        # The advertised request makes the report again, under the key now configured.
        regenerate = answers["whole"].json()["error"]["details"]["regenerate"]
        again = client.post(regenerate["path"], json=regenerate["body"], headers=auth)
        assert again.status_code == 201, again.text
