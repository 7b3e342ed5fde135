"""The export password's whole life: sealed with the request, gone when generation ends.

Over real HTTP with a real worker (in a thread, and as SIGKILLed child
processes), real PostgreSQL and real files. After each path the password
is searched for in every text, JSON and bytea column of every table of the
database (procrastinate's job tables included) and in every log line.
"""

from __future__ import annotations

import shutil
import subprocess
import uuid
import zipfile
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import httpx
import pytest
import pyzipper
from pydantic import SecretStr
from sqlalchemy import Engine, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from apiserver import Account, add_account, bearer, serve, settings_for
from factories import add_paid_claims
from meritum_api.app import create_app
from meritum_api.context import AuthContext
from meritum_api.crypto.sealing import SealBroken, Sealed, seal, unseal
from meritum_api.deps import Deps, Role, build_deps
from meritum_api.domains.analytics import export_secrets, service
from meritum_api.domains.analytics.cleanup import run_cleanup
from meritum_api.domains.analytics.generation import Outcome, generate_report
from meritum_api.domains.analytics.generators import GenerationRequest
from meritum_shared.constants.analytics import GENERATION_FAILED_MESSAGE, ReportStatus
from meritum_shared.schemas.validation.analytics import DataPortabilityRequest
from polling import wait_until
from workers import FAST_RECOVERY, WorkerProcess, in_process_worker

BASE = "/api/v1/reports"
PASSWORD = "Łódź-Saint-Éloi secret 2026"


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
def client(runtime: Deps) -> Iterator[httpx.Client]:
    with serve(create_app(runtime)) as url, httpx.Client(base_url=url, timeout=60) as http:
        yield http


def seven_zip() -> str:
    found = shutil.which("7z") or shutil.which("7zz")
    assert found, "the 7z command is required: apt-get install -y 7zip (or p7zip-full)"
    return found


def physician(engine: Engine, claims: int = 30) -> Account:
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


def auth_of(client: httpx.Client, account: Account) -> dict[str, str]:
    response = client.post(
        "/api/v1/auth/login", json={"email": account.email, "password": account.password}
    )
    assert response.status_code == 200, response.text
    client.cookies.clear()
    return bearer(response.json()["data"]["token"])


def sealed_rows(engine: Engine, report_id: uuid.UUID | str) -> int:
    with engine.connect() as conn:
        count: int = conn.execute(
            text("SELECT count(*) FROM report_export_secrets WHERE report_id = :r"),
            {"r": report_id},
        ).scalar_one()
    return count


def status_of(engine: Engine, report_id: uuid.UUID | str) -> str:
    with engine.connect() as conn:
        return str(
            conn.execute(
                text("SELECT status FROM generated_reports WHERE report_id = :r"), {"r": report_id}
            ).scalar_one()
        )


def places_holding(engine: Engine, needle: str) -> tuple[list[str], set[str]]:
    """Every column (``table.column``) of every table whose values contain ``needle``.

    Text-like columns are searched as text (``::text`` covers varchar, JSON,
    arrays, enums), bytea columns for the needle's UTF-8 bytes. Returns the
    places found and the tables searched.
    """
    found: list[str] = []
    with engine.connect() as conn:
        columns = conn.execute(
            text(
                "SELECT c.table_schema, c.table_name, c.column_name, c.data_type "
                "FROM information_schema.columns c JOIN information_schema.tables t "
                "USING (table_schema, table_name) WHERE t.table_type = 'BASE TABLE' "
                "AND c.table_schema NOT IN ('pg_catalog', 'information_schema')"
            )
        ).all()
        searched: set[str] = set()
        for schema, table, column, data_type in columns:
            target = f'"{schema}"."{table}"'
            if data_type == "bytea":
                condition = f'position(CAST(:b AS bytea) IN "{column}") > 0'
            elif data_type in ("text", "character varying", "character", "json", "jsonb", "ARRAY"):
                condition = f'strpos("{column}"::text, :s) > 0'
            else:
                continue  # numbers, dates, uuids, booleans cannot hold text
            searched.add(table)
            hit = conn.execute(
                text(f"SELECT EXISTS (SELECT 1 FROM {target} WHERE {condition})"),
                {"s": needle, "b": needle.encode("utf-8")},
            ).scalar_one()
            if hit:
                found.append(f"{table}.{column}")
    return found, searched


def assert_nowhere_in_the_database(engine: Engine, report_id: str) -> None:
    found, searched = places_holding(engine, PASSWORD)
    assert found == []
    # Every table with text, the job queue's and the sealed passwords' included.
    assert {"procrastinate_jobs", "report_export_secrets", "generated_reports"} <= searched
    assert {"audit_log", "claim_audit_history", "users", "auth_sessions"} <= searched
    # The search does find what is there: the report's id inside its storage key.
    control, _ = places_holding(engine, report_id)
    assert "generated_reports.file_path" in control
    # Nor any telling part of it (a prefix, the words).
    for part in ("Łódź-Saint", "secret 2026"):
        assert places_holding(engine, part)[0] == []


def assert_not_logged(logged: str) -> None:
    assert logged  # something was captured
    for part in (PASSWORD, "Łódź-Saint", "secret 2026"):
        assert part not in logged


def request_protected(client: httpx.Client, auth: dict[str, str]) -> str:
    created = client.post(f"{BASE}/data-portability", json={"password": PASSWORD}, headers=auth)
    assert created.status_code == 201, created.text
    assert PASSWORD not in created.text
    report_id: str = created.json()["data"]["report_id"]
    return report_id


def detail(client: httpx.Client, auth: dict[str, str], report_id: str) -> dict[str, Any]:
    response = client.get(f"{BASE}/{report_id}", headers=auth)
    assert response.status_code == 200
    data: dict[str, Any] = response.json()["data"]
    return data


def open_with_7z(path: Path, out: Path) -> None:
    done = subprocess.run(
        [seven_zip(), "x", f"-p{PASSWORD}", f"-o{out}", "-y", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert (out / "claims.csv").read_text(encoding="utf-8").startswith("claim_id,")


# --- the whole path over HTTP --------------------------------------------------------


def test_protected_export_over_http_request_ready_download(
    client: httpx.Client,
    runtime: Deps,
    db_url: str,
    caplog: pytest.LogCaptureFixture,
    tmp_path: Path,
) -> None:
    caplog.set_level("DEBUG")
    account = physician(runtime.engine)
    auth = auth_of(client, account)
    report_id = request_protected(client, auth)
    # Sealed in the request's transaction: there before any worker runs.
    assert sealed_rows(runtime.engine, report_id) == 1
    pending = detail(client, auth, report_id)
    assert pending["status"] == "pending"
    assert pending["password_protected"] is True
    assert PASSWORD not in str(pending)

    with in_process_worker(db_url, runtime, poll_seconds=0.5):
        wait_until(
            lambda: status_of(runtime.engine, report_id) == "ready",
            timeout=120,
            what="the export to become ready",
        )
    assert sealed_rows(runtime.engine, report_id) == 0
    ready = detail(client, auth, report_id)
    assert ready["password_protected"] is True
    assert ready["format"] == "ZIP"

    download = client.get(f"{BASE}/{report_id}/download", headers=auth)
    assert download.status_code == 200
    assert download.headers["content-type"] == "application/zip"
    day = ready["created_at"][:10]
    assert download.headers["content-disposition"] == (
        f'attachment; filename="meritum-data-portability-{day}.zip"'
    )
    assert int(download.headers["content-length"]) == len(download.content)
    archive = tmp_path / "export.zip"
    archive.write_bytes(download.content)
    open_with_7z(archive, tmp_path / "out")
    with pyzipper.AESZipFile(archive) as opened:
        opened.setpassword(PASSWORD.encode("utf-8"))
        claims = opened.read("claims.csv").decode("utf-8").splitlines()
    assert len(claims) == 31  # the header and the physician's 30 claims

    assert PASSWORD.encode() not in download.content  # no stray plaintext in the archive
    assert_nowhere_in_the_database(runtime.engine, report_id)
    logged = caplog.text + "\n".join(str(r.args) for r in caplog.records)
    assert f"report {report_id}: ready" in logged  # the worker's lines were captured
    assert_not_logged(logged)


def test_unprotected_export_over_http_opens_with_zipfile(
    client: httpx.Client, runtime: Deps, db_url: str, tmp_path: Path
) -> None:
    account = physician(runtime.engine, claims=5)
    auth = auth_of(client, account)
    created = client.post(f"{BASE}/data-portability", headers=auth)
    assert created.status_code == 201, created.text
    report_id = created.json()["data"]["report_id"]
    assert sealed_rows(runtime.engine, report_id) == 0
    with in_process_worker(db_url, runtime, poll_seconds=0.5):
        wait_until(
            lambda: status_of(runtime.engine, report_id) == "ready",
            timeout=120,
            what="the export to become ready",
        )
    assert detail(client, auth, report_id)["password_protected"] is False
    download = client.get(f"{BASE}/{report_id}/download", headers=auth)
    assert download.headers["content-type"] == "application/zip"
    path = tmp_path / "plain.zip"
    path.write_bytes(download.content)
    with zipfile.ZipFile(path) as archive:
        assert archive.testzip() is None
        assert archive.read("claims.csv").decode().count("\r\n") == 6


@pytest.mark.parametrize("password", ["eleven-char", "x" * 129, ""])
def test_a_password_outside_12_to_128_characters_is_refused_and_changes_nothing(
    client: httpx.Client, runtime: Deps, password: str
) -> None:
    account = add_account(runtime.engine)
    auth = auth_of(client, account)
    with runtime.engine.connect() as conn:
        before = conn.execute(
            text("SELECT (SELECT count(*) FROM generated_reports), "
                 "(SELECT count(*) FROM report_export_secrets)")
        ).one()  # fmt: skip
    response = client.post(f"{BASE}/data-portability", json={"password": password}, headers=auth)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "VALIDATION_ERROR"
    if password:
        assert password not in response.text
    with runtime.engine.connect() as conn:
        after = conn.execute(
            text("SELECT (SELECT count(*) FROM generated_reports), "
                 "(SELECT count(*) FROM report_export_secrets)")
        ).one()  # fmt: skip
    assert after == before


# --- failures and a killed worker ------------------------------------------------------


def _request_in_service(runtime: Deps, ctx: AuthContext) -> uuid.UUID:
    with runtime.session_factory.begin() as session:
        requested = service.request_data_portability(
            session=session,
            ctx=ctx,
            queue=runtime.queue,
            keyring=runtime.keyring,
            request=DataPortabilityRequest(password=SecretStr(PASSWORD)),
        )
    return requested.report.report_id


class Boom(Exception):
    """A generator that fails after its first chunk."""


def _failing(conn: Any, request: GenerationRequest) -> Iterator[bytes]:
    assert request.password is not None  # the worker did unseal it for the generator
    assert request.password.get_secret_value() == PASSWORD
    yield b"PK"
    raise Boom


def test_the_sealed_row_survives_a_retry_and_is_gone_after_failed(
    runtime: Deps, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("DEBUG")
    ctx = AuthContext(provider_id=physician(runtime.engine, claims=3).provider_id)
    report_id = _request_in_service(runtime, ctx)
    failing = runtime.replace(generators=lambda report_type, format: _failing)
    with pytest.raises(Boom):
        generate_report(deps=failing, report_id=report_id, is_final_attempt=lambda exc: False)
    assert status_of(runtime.engine, report_id) == "pending"
    assert sealed_rows(runtime.engine, report_id) == 1  # the retry still needs it
    outcome = generate_report(deps=failing, report_id=report_id, is_final_attempt=lambda e: True)
    assert outcome is Outcome.FAILED
    assert status_of(runtime.engine, report_id) == "failed"
    assert sealed_rows(runtime.engine, report_id) == 0
    with runtime.engine.connect() as conn:
        message = conn.execute(
            text("SELECT error_message FROM generated_reports WHERE report_id = :r"),
            {"r": report_id},
        ).scalar_one()
    assert message == GENERATION_FAILED_MESSAGE
    assert_nowhere_in_the_database(runtime.engine, str(report_id))
    assert_not_logged(caplog.text)


def test_a_protected_export_whose_password_is_gone_fails_rather_than_going_unprotected(
    runtime: Deps,
) -> None:
    ctx = AuthContext(provider_id=physician(runtime.engine, claims=3).provider_id)
    report_id = _request_in_service(runtime, ctx)
    with runtime.engine.begin() as conn:
        conn.execute(
            text("DELETE FROM report_export_secrets WHERE report_id = :r"), {"r": report_id}
        )
    outcome = generate_report(deps=runtime, report_id=report_id, is_final_attempt=lambda e: True)
    assert outcome is Outcome.FAILED
    assert status_of(runtime.engine, report_id) == "failed"


def test_a_worker_sigkilled_mid_export_leaves_the_retry_to_finish_and_the_row_goes(
    runtime: Deps, db_url: str, tmp_path: Path
) -> None:
    ctx = AuthContext(provider_id=physician(runtime.engine, claims=200).provider_id)
    storage = runtime.settings.storage_dir
    assert storage is not None
    with runtime.engine.connect() as blocker:
        # The export reads provider_settings last: holding it locked stops the
        # victim mid-archive, with the CSVs before it already streamed.
        blocker.execute(text("LOCK TABLE provider_settings IN ACCESS EXCLUSIVE MODE"))
        report_id = _request_in_service(runtime, ctx)
        victim = WorkerProcess(db_url, storage, tmp_path / "victim.log", **FAST_RECOVERY)
        try:
            wait_until(
                lambda: _waits_on_the_lock(runtime.engine),
                timeout=120,
                what="the victim to block mid-export",
            )
            assert status_of(runtime.engine, report_id) == "generating"
            victim.kill()
        finally:
            if victim.proc.poll() is None:
                victim.kill()
        assert sealed_rows(runtime.engine, report_id) == 1  # nothing settled it
        blocker.rollback()  # releases the lock
    with WorkerProcess(db_url, storage, tmp_path / "rescuer.log", **FAST_RECOVERY) as rescuer:
        try:
            wait_until(
                lambda: status_of(runtime.engine, report_id) == "ready",
                timeout=120,
                what="the retry to finish the killed export",
            )
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{rescuer.log()[-4000:]}") from None
    assert sealed_rows(runtime.engine, report_id) == 0
    with runtime.session_factory() as session:
        download = service.download_for(session=session, ctx=ctx, report_id=report_id)
    archive = tmp_path / "rescued.zip"
    with archive.open("wb") as out:
        for chunk in runtime.storage.read(download.storage_key):
            out.write(chunk)
    open_with_7z(archive, tmp_path / "out")
    assert_nowhere_in_the_database(runtime.engine, str(report_id))
    assert_not_logged(victim.log() + rescuer.log())


def _waits_on_the_lock(engine: Engine) -> bool:
    with engine.connect() as conn:
        return bool(
            conn.execute(
                text(
                    "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE NOT granted "
                    "AND relation = 'provider_settings'::regclass)"
                )
            ).scalar_one()
        )


# --- expiry, sealing, the table's rules -------------------------------------------------


def test_cleanup_deletes_the_sealed_row_of_an_expired_report_and_keeps_a_live_one(
    runtime: Deps,
) -> None:
    ctx = AuthContext(provider_id=physician(runtime.engine, claims=1).provider_id)
    expired, live = _request_in_service(runtime, ctx), _request_in_service(runtime, ctx)
    with runtime.engine.begin() as conn:
        # Never generated, and past its link: the password must not outlive it.
        conn.execute(
            text(
                "UPDATE generated_reports SET download_link_expires_at = now() - interval '1 s' "
                "WHERE report_id = :r"
            ),
            {"r": expired},
        )
    result = run_cleanup(deps=runtime)
    assert result.secrets_discarded >= 1
    assert sealed_rows(runtime.engine, expired) == 0
    assert sealed_rows(runtime.engine, live) == 1
    with runtime.session_factory.begin() as session:
        assert export_secrets.discard(session=session, report_id=live) is True
        assert export_secrets.discard(session=session, report_id=live) is False


def test_a_sealed_password_opens_only_for_its_own_report(runtime: Deps) -> None:
    owner, other = uuid.uuid4(), uuid.uuid4()
    sealed = seal(runtime.keyring, PASSWORD.encode(), purpose="p", associated=owner.bytes)
    assert PASSWORD.encode() not in sealed.ciphertext
    assert PASSWORD not in repr(sealed)
    assert unseal(runtime.keyring, sealed, purpose="p", associated=owner.bytes) == PASSWORD.encode()
    with pytest.raises(SealBroken) as moved:
        unseal(runtime.keyring, sealed, purpose="p", associated=other.bytes)
    assert PASSWORD not in str(moved.value)
    with pytest.raises(SealBroken):
        unseal(runtime.keyring, sealed, purpose="another", associated=owner.bytes)
    tampered = Sealed(
        sealed.key_id, sealed.nonce, bytes([sealed.ciphertext[0] ^ 1]) + sealed.ciphertext[1:]
    )
    with pytest.raises(SealBroken):
        unseal(runtime.keyring, tampered, purpose="p", associated=owner.bytes)
    unknown = Sealed("no-such-key", sealed.nonce, sealed.ciphertext)
    with pytest.raises(SealBroken):
        unseal(runtime.keyring, unknown, purpose="p", associated=owner.bytes)


@pytest.mark.parametrize(
    ("column", "value", "constraint"),
    [
        ("nonce", b"short", "ck_report_export_secrets_nonce_length"),
        ("ciphertext", b"x" * 10, "ck_report_export_secrets_ciphertext_length"),
        ("key_id", "bad key/id", "ck_report_export_secrets_key_id_shape"),
    ],
)
def test_the_sealed_table_refuses_malformed_rows_by_name(
    runtime: Deps, column: str, value: Any, constraint: str
) -> None:
    ctx = AuthContext(provider_id=physician(runtime.engine, claims=1).provider_id)
    with runtime.session_factory.begin() as session:
        report_id = service.request_data_portability(
            session=session,
            ctx=ctx,
            queue=runtime.queue,
            keyring=runtime.keyring,
            request=DataPortabilityRequest(),
        ).report.report_id
    row = {"report_id": report_id, "key_id": "k1", "nonce": b"n" * 12, "ciphertext": b"c" * 40}
    row[column] = value
    with pytest.raises(IntegrityError) as refused, runtime.engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO report_export_secrets (report_id, key_id, nonce, ciphertext) "
                "VALUES (:report_id, :key_id, :nonce, :ciphertext)"
            ),
            row,
        )
    assert constraint in str(refused.value.orig)
    assert status_of(runtime.engine, report_id) == ReportStatus.PENDING.value
