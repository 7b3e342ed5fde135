"""The data portability ZIP, read back with tools that share no code with its generator.

The generator writes with stream-zip; these tests read with the standard
library's ``zipfile``, with ``pyzipper`` and with the ``7z`` command, and
compare every entry with independent SQL over the seeded database (which
formats dates, money and timestamps itself, in PostgreSQL).
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
import shutil
import struct
import subprocess
import uuid
import zipfile
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
import pyzipper
from pydantic import SecretStr
from sqlalchemy import Engine, text

from meritum_api.domains.analytics.generators import GenerationRequest, generator_for
from meritum_api.domains.analytics.generators.data_portability import DEFLATE_LEVEL
from meritum_api.seed import seed_demo
from meritum_shared.constants.analytics import ReportFormat, ReportType

ENTRIES = [
    "claims.csv",
    "patients.csv",
    "audit_history.csv",
    "ai_suggestions.csv",
    "batches.csv",
    "provider_profile.csv",
    "manifest.json",
    "README.txt",
]
PASSWORD = "Hôpital-Éloi 2026 «sûr»"  # accents and spaces: UTF-8 through every tool
CREATED_AT = datetime(2026, 11, 15, 18, 30, 5, tzinfo=UTC)
#: The seed's physicians are found by their demo login.
SEED_TODAY = date(2026, 11, 15)

DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")
INSTANT = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\+00:00$")
MONEY = re.compile(r"^-?\d+\.\d{2}$")

#: PostgreSQL's own rendering of the export's formats: nothing shared with Python.
_TS = """to_char({c} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"+00:00"')"""
_D = "to_char({c}, 'YYYY-MM-DD')"
EXPECTED_SQL = {
    "claims.csv": (
        "SELECT claim_id::text, claim_type, state, "
        + _D.format(c="date_of_service")
        + ", hsc_code, modifiers, submitted_fee::text, coalesce(assessed_fee::text, ''), "
        "coalesce(" + _D.format(c="payment_date") + ", ''), ba_number, location, "
        "rrnp_premium::text, coalesce(rejection_code, ''), patient_id::text, "
        "coalesce(batch_id::text, ''), coalesce(wcb_claim_number, ''), "
        "coalesce(wcb_form_type, ''), "
        + _TS.format(c="created_at")
        + ", "
        + _TS.format(c="updated_at")
        + " FROM claims WHERE provider_id = :p ORDER BY date_of_service, claim_id"
    ),
    "patients.csv": (
        "SELECT patient_id::text, phn, first_name, last_name, "
        + _D.format(c="date_of_birth")
        + ", "
        + _TS.format(c="created_at")
        + " FROM patients WHERE provider_id = :p ORDER BY phn"
    ),
    "audit_history.csv": (
        "SELECT event_id::text, claim_id::text, "
        + _TS.format(c="occurred_at")
        + ", action, coalesce(from_state, ''), coalesce(to_state, ''), actor, "
        "coalesce(details, '') FROM claim_audit_history WHERE provider_id = :p "
        "ORDER BY occurred_at, event_id"
    ),
    "ai_suggestions.csv": (
        "SELECT suggestion_id::text, claim_id::text, "
        + _TS.format(c="created_at")
        + ", category, suggestion, status, coalesce(dismissed_reason, ''), "
        "coalesce(revenue_impact::text, '') FROM ai_coach_suggestions WHERE provider_id = :p "
        "ORDER BY created_at, suggestion_id"
    ),
    "batches.csv": (
        "SELECT batch_id::text, claim_type, ba_number, "
        + _TS.format(c="submitted_at")
        + ", claim_count::text, total_submitted::text, status FROM submission_batches "
        "WHERE provider_id = :p ORDER BY submitted_at, batch_id"
    ),
}
#: The id column of each table behind a CSV, to prove whose rows are in it.
ID_COLUMNS = {
    "claims.csv": ("claims", "claim_id"),
    "patients.csv": ("patients", "patient_id"),
    "audit_history.csv": ("claim_audit_history", "event_id"),
    "ai_suggestions.csv": ("ai_coach_suggestions", "suggestion_id"),
    "batches.csv": ("submission_batches", "batch_id"),
}


def seven_zip() -> str:
    """The 7-Zip command (``7z`` from p7zip-full, or ``7zz`` from Debian's 7zip)."""
    found = shutil.which("7z") or shutil.which("7zz")
    assert found, "the 7z command is required: apt-get install -y 7zip (or p7zip-full)"
    return found


@pytest.fixture(scope="module")
def providers(engine: Engine) -> tuple[uuid.UUID, uuid.UUID]:
    """Two seeded physicians: the one exported, and another whose rows must stay out."""
    seed_demo(engine, physicians=2, years=2, claims_per_month=60, seed=31, today=SEED_TODAY)
    with engine.connect() as conn:
        ids = conn.execute(
            text(
                "SELECT p.provider_id FROM providers p JOIN users u USING (provider_id) "
                "WHERE u.email LIKE 'physician_@demo.meritum.example' ORDER BY u.email"
            )
        ).scalars()
        first, second = ids
    return first, second


def request_for(provider_id: uuid.UUID, password: str | None = None) -> GenerationRequest:
    return GenerationRequest(
        report_id=uuid.UUID("0b5e8f3a-1c2d-4e5f-8a9b-0c1d2e3f4a5b"),
        provider_id=provider_id,
        report_type=ReportType.DATA_PORTABILITY,
        format=ReportFormat.ZIP,
        period_start=None,
        period_end=None,
        created_at=CREATED_AT,
        password=None if password is None else SecretStr(password),
    )


def write_archive(engine: Engine, request: GenerationRequest, path: Path) -> Path:
    """Stream the generator into a real file, chunk by chunk."""
    generate = generator_for(ReportType.DATA_PORTABILITY, ReportFormat.ZIP)
    with engine.connect() as conn, path.open("wb") as out:
        for chunk in generate(conn, request):
            out.write(chunk)
    return path


@pytest.fixture(scope="module")
def plain_archive(
    engine: Engine, providers: tuple[uuid.UUID, uuid.UUID], tmp_path_factory: pytest.TempPathFactory
) -> Path:
    path = tmp_path_factory.mktemp("plain") / "export.zip"
    return write_archive(engine, request_for(providers[0]), path)


@pytest.fixture(scope="module")
def protected_archive(
    engine: Engine, providers: tuple[uuid.UUID, uuid.UUID], tmp_path_factory: pytest.TempPathFactory
) -> Path:
    path = tmp_path_factory.mktemp("protected") / "export.zip"
    return write_archive(engine, request_for(providers[0], PASSWORD), path)


def entries_of(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def csv_rows(data: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(data.decode("utf-8"), newline="")))


# --- the archive as zipfile reads it ------------------------------------------------


def test_entries_are_in_order_deflated_and_intact(plain_archive: Path) -> None:
    with zipfile.ZipFile(plain_archive) as archive:
        assert archive.namelist() == ENTRIES
        assert archive.testzip() is None  # every CRC checks out
        for info in archive.infolist():
            assert info.compress_type == zipfile.ZIP_DEFLATED, info.filename
            assert info.flag_bits & 0x1 == 0  # not encrypted
            assert info.date_time == (2026, 11, 15, 11, 30, 4)  # Edmonton time, 2-second DOS
    assert DEFLATE_LEVEL == 6


def test_manifest_gives_rows_bytes_and_sha256_of_every_other_entry(
    plain_archive: Path, providers: tuple[uuid.UUID, uuid.UUID]
) -> None:
    entries = entries_of(plain_archive)
    manifest = json.loads(entries["manifest.json"])
    assert manifest["schema_version"] == 1
    assert manifest["export_id"] == "0b5e8f3a-1c2d-4e5f-8a9b-0c1d2e3f4a5b"
    assert manifest["generated_at"] == "2026-11-15T18:30:05+00:00"
    assert manifest["password_protected"] is False
    assert manifest["physician"]["provider_id"] == str(providers[0])
    listed = [entry["name"] for entry in manifest["entries"]]
    assert listed == [name for name in ENTRIES if name != "manifest.json"]
    for entry in manifest["entries"]:
        data = entries[entry["name"]]
        assert entry["bytes"] == len(data)
        assert entry["sha256"] == hashlib.sha256(data).hexdigest()
        if entry["name"].endswith(".csv"):
            assert entry["rows"] == len(csv_rows(data)) - 1  # less the header
        else:
            assert entry["rows"] is None


def test_every_csv_is_utf8_with_a_header_and_the_spec_formats(plain_archive: Path) -> None:
    entries = entries_of(plain_archive)
    headers = {name: csv_rows(entries[name])[0] for name in ENTRIES if name.endswith(".csv")}
    assert headers["claims.csv"] == [
        "claim_id", "claim_type", "state", "date_of_service", "hsc_code", "modifiers",
        "submitted_fee", "assessed_fee", "payment_date", "ba_number", "location",
        "rrnp_premium", "rejection_code", "patient_id", "batch_id", "wcb_claim_number",
        "wcb_form_type", "created_at", "updated_at",
    ]  # fmt: skip
    assert headers["patients.csv"] == [
        "patient_id", "phn", "first_name", "last_name", "date_of_birth", "created_at",
    ]  # fmt: skip
    assert headers["audit_history.csv"] == [
        "event_id", "claim_id", "occurred_at", "action", "from_state", "to_state", "actor",
        "details",
    ]  # fmt: skip
    assert headers["ai_suggestions.csv"] == [
        "suggestion_id", "claim_id", "created_at", "category", "suggestion", "status",
        "dismissed_reason", "revenue_impact",
    ]  # fmt: skip
    assert headers["batches.csv"][:2] == ["batch_id", "claim_type"]
    assert {"submitted_at", "claim_count", "total_submitted", "status"} <= set(
        headers["batches.csv"]
    )
    assert headers["provider_profile.csv"] == ["section", "key", "value"]
    for name, header in headers.items():
        assert not entries[name].startswith(b"\xef\xbb\xbf"), f"{name} has a BOM"
        rows = csv_rows(entries[name])[1:]
        assert rows, f"{name} is empty"
        for row in rows:
            assert len(row) == len(header)
            record = dict(zip(header, row, strict=True))
            for column, value in record.items():
                if not value:
                    continue
                if column.endswith("_at"):
                    assert INSTANT.match(value), (name, column, value)
                elif column in ("date_of_service", "payment_date", "date_of_birth"):
                    assert DAY.match(value), (name, column, value)
                elif column.endswith(("_fee", "_premium", "_impact", "total_submitted")):
                    assert MONEY.match(value), (name, column, value)
                elif column.endswith("_id") and name != "provider_profile.csv":
                    assert str(uuid.UUID(value)) == value


def test_each_csv_equals_independent_sql_over_the_physicians_rows(
    plain_archive: Path, engine: Engine, providers: tuple[uuid.UUID, uuid.UUID]
) -> None:
    entries = entries_of(plain_archive)
    with engine.connect() as conn:
        for name, sql in EXPECTED_SQL.items():
            expected = [list(row) for row in conn.execute(text(sql), {"p": providers[0]})]
            assert csv_rows(entries[name])[1:] == expected, name


def test_every_row_of_the_physician_and_none_of_another(
    plain_archive: Path, engine: Engine, providers: tuple[uuid.UUID, uuid.UUID]
) -> None:
    mine, theirs = providers
    entries = entries_of(plain_archive)
    blob = b"".join(entries.values()).decode("utf-8")
    with engine.connect() as conn:
        for name, (table, column) in ID_COLUMNS.items():
            ids = {row[0] for row in csv_rows(entries[name])[1:]}
            own = set(
                conn.execute(
                    text(f"SELECT {column}::text FROM {table} WHERE provider_id = :p"), {"p": mine}
                ).scalars()
            )
            other = set(
                conn.execute(
                    text(f"SELECT {column}::text FROM {table} WHERE provider_id = :p"),
                    {"p": theirs},
                ).scalars()
            )
            assert own, f"the seed left {table} empty for the physician"
            assert other, f"the seed left {table} empty for the other physician"
            assert ids == own, name
            assert not any(other_id in blob for other_id in other), name
        their_phns = conn.execute(
            text("SELECT phn FROM patients WHERE provider_id = :p"), {"p": theirs}
        ).scalars()
        assert not any(phn in blob for phn in their_phns)
        assert str(theirs) not in blob


def test_the_profile_lists_identity_each_ba_each_location_wcb_and_preferences(
    plain_archive: Path, engine: Engine, providers: tuple[uuid.UUID, uuid.UUID]
) -> None:
    rows = csv_rows(entries_of(plain_archive)["provider_profile.csv"])[1:]
    sections = [row[0] for row in rows]
    with engine.connect() as conn:
        identity = conn.execute(
            text(
                "SELECT billing_number, first_name, last_name FROM providers WHERE provider_id = :p"
            ),
            {"p": providers[0]},
        ).one()
        bas = conn.execute(
            text("SELECT ba_number FROM provider_ba_numbers WHERE provider_id = :p"),
            {"p": providers[0]},
        ).scalars()
        locations = conn.execute(
            text("SELECT location_id::text, name FROM practice_locations WHERE provider_id = :p"),
            {"p": providers[0]},
        ).all()
    assert ["identity", "billing_number", identity.billing_number] in rows
    assert ["identity", "first_name", identity.first_name] in rows
    assert ["identity", "last_name", identity.last_name] in rows
    for ba in bas:
        assert f"ba_number:{ba}" in sections
    for location_id, name in locations:
        assert [f"location:{location_id}", "name", name] in rows
    assert "wcb" in sections
    assert "preferences" in sections


def test_readme_explains_files_formats_checks_aes_tools_the_act_and_the_expiry(
    plain_archive: Path,
) -> None:
    readme = entries_of(plain_archive)["README.txt"].decode("utf-8")
    for name in ENTRIES:
        assert name in readme
    for needed in (
        "YYYY-MM-DD",
        "ISO 8601",
        "two decimals",
        "SHA-256",
        "sha256sum",
        "Get-FileHash",
        "shasum -a 256",
        "7-Zip",
        "Keka",
        "The Unarchiver",
        "7z x",
        "cannot open",
        "Health Information Act",
        "72 hours",
    ):
        assert needed in readme, needed


def test_the_same_data_gives_the_same_bytes(
    plain_archive: Path, engine: Engine, providers: tuple[uuid.UUID, uuid.UUID], tmp_path: Path
) -> None:
    again = write_archive(engine, request_for(providers[0]), tmp_path / "again.zip")
    assert again.read_bytes() == plain_archive.read_bytes()


def test_an_empty_record_is_a_valid_archive(engine: Engine, tmp_path: Path) -> None:
    with engine.begin() as conn:
        provider_id = conn.execute(
            text(
                "INSERT INTO providers (billing_number, first_name, last_name) "
                "VALUES ('4242', 'Zoë', 'Nguyễn') RETURNING provider_id"
            )
        ).scalar_one()
    path = write_archive(engine, request_for(provider_id), tmp_path / "empty.zip")
    entries = entries_of(path)
    assert list(entries) == ENTRIES
    manifest = json.loads(entries["manifest.json"])
    assert [e["rows"] for e in manifest["entries"]][:5] == [0, 0, 0, 0, 0]
    assert manifest["physician"]["name"] == "Zoë Nguyễn"


# --- the protected archive -----------------------------------------------------------


def _aes_extra(info: zipfile.ZipInfo) -> tuple[int, bytes, int, int]:
    """(vendor version, vendor id, strength, method) of the WinZip AES extra field."""
    extra = info.extra
    while extra:
        header_id, size = struct.unpack("<HH", extra[:4])
        body = extra[4 : 4 + size]
        if header_id == 0x9901:
            version, vendor, strength, method = struct.unpack("<H2sBH", body)
            return version, vendor, strength, method
        extra = extra[4 + size :]
    raise AssertionError(f"{info.filename} has no AES extra field")


def test_every_entry_is_winzip_aes256_ae2(protected_archive: Path) -> None:
    with zipfile.ZipFile(protected_archive) as archive:
        assert archive.namelist() == ENTRIES
        for info in archive.infolist():
            assert info.flag_bits & 0x1, f"{info.filename} is not encrypted"
            assert info.compress_type == 99  # AES, the real method in the extra field
            assert _aes_extra(info) == (2, b"AE", 3, zipfile.ZIP_DEFLATED)
        # The standard library wants a password, and has no AES to use one with.
        with pytest.raises(RuntimeError, match="password required"):
            archive.read("claims.csv")
        with pytest.raises(NotImplementedError):
            archive.read("claims.csv", pwd=PASSWORD.encode())


def test_pyzipper_opens_it_with_the_password_only(
    protected_archive: Path, plain_archive: Path
) -> None:
    plain = entries_of(plain_archive)
    with pyzipper.AESZipFile(protected_archive) as archive:
        archive.setpassword(PASSWORD.encode("utf-8"))
        opened = {name: archive.read(name) for name in archive.namelist()}
    # Identical content to the unprotected archive, but the manifest's flag.
    assert list(opened) == ENTRIES
    for name in ENTRIES:
        if name in ("manifest.json", "README.txt"):
            continue
        assert opened[name] == plain[name], name
    manifest = json.loads(opened["manifest.json"])
    assert manifest["password_protected"] is True
    for entry in manifest["entries"]:
        assert entry["sha256"] == hashlib.sha256(opened[entry["name"]]).hexdigest()
    with pyzipper.AESZipFile(protected_archive) as archive:
        archive.setpassword(b"not the password at all")
        with pytest.raises(RuntimeError, match="Bad password"):
            archive.read("claims.csv")


def test_7z_extracts_it_with_the_password_and_refuses_a_wrong_one(
    protected_archive: Path, plain_archive: Path, tmp_path: Path
) -> None:
    tool = seven_zip()
    out = tmp_path / "out"
    done = subprocess.run(
        [tool, "x", f"-p{PASSWORD}", f"-o{out}", "-y", str(protected_archive)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    plain = entries_of(plain_archive)
    extracted = sorted(p.name for p in out.iterdir())
    assert extracted == sorted(ENTRIES)
    assert (out / "claims.csv").read_bytes() == plain["claims.csv"]
    assert (out / "patients.csv").read_bytes() == plain["patients.csv"]
    wrong = subprocess.run(
        [tool, "t", "-pwrong-password-123", str(protected_archive)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert wrong.returncode != 0
    assert "Wrong password" in wrong.stdout + wrong.stderr
    listing = subprocess.run(
        [tool, "l", "-slt", "-pwrong-password-123", str(protected_archive)],
        capture_output=True,
        text=True,
        check=True,
    )
    assert listing.stdout.count("Method = AES-256 Deflate") == len(ENTRIES)


def test_7z_reads_the_unprotected_archive_too(plain_archive: Path) -> None:
    tested = subprocess.run(
        [seven_zip(), "t", str(plain_archive)], capture_output=True, text=True, check=False
    )
    assert tested.returncode == 0, tested.stdout + tested.stderr
    assert "Everything is Ok" in tested.stdout


def test_the_request_never_shows_its_password() -> None:
    request = request_for(uuid.uuid4(), PASSWORD)
    assert PASSWORD not in repr(request)
    assert PASSWORD not in str(request)
    assert "password" not in repr(request)


def _chunks(engine: Engine, request: GenerationRequest) -> Iterator[int]:
    generate = generator_for(ReportType.DATA_PORTABILITY, ReportFormat.ZIP)
    with engine.connect() as conn:
        for chunk in generate(conn, request):
            yield len(chunk)


def test_the_archive_streams_in_bounded_chunks(
    engine: Engine, providers: tuple[uuid.UUID, uuid.UUID]
) -> None:
    sizes = list(_chunks(engine, request_for(providers[0])))
    assert len(sizes) > 5
    assert max(sizes) <= 64 * 1024 + 1024  # stream-zip evens chunks out to its chunk size
