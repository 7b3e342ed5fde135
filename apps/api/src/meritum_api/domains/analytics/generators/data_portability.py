"""The data portability export: the physician's whole record as one ZIP, streamed.

Entries, in order: the six CSVs of :mod:`portability_data`, ``manifest.json``
(rows, bytes and SHA-256 of every other entry) and ``README.txt``. Each
entry is deflated at level 6 (stream-zip's default, 9, is about five times
slower on CSV for a few percent of size) as it is produced; nothing holds
more than a chunk of any file, so memory stays flat whatever the record
holds.

With a password every entry is encrypted with WinZip AES-256 (AE-2), which
7-Zip, Keka, The Unarchiver and pyzipper read; the stock tools of Windows
and macOS do not, and the README says so. Without one, the same data gives
the same bytes: timestamps come from the report row. (AES draws a random
salt per entry, so a protected archive differs on each run.)
"""

from __future__ import annotations

import json
import uuid
import zlib
from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import TYPE_CHECKING, Any, Final, cast
from zoneinfo import ZoneInfo

from pydantic import SecretStr
from sqlalchemy import Connection, select
from stream_zip import ZIP_32, MemberFile, stream_zip

from meritum_api.domains.analytics.generators.portability_data import (
    CHUNK_SIZE,
    DATASETS,
    EntryStats,
    instant,
    stream_csv,
)
from meritum_shared.constants.analytics import DOWNLOAD_LINK_EXPIRY_DAYS, ReportOrigin
from meritum_shared.schemas.db import Provider

if TYPE_CHECKING:  # the package imports this module to register it: no cycle at run time
    from meritum_api.domains.analytics.generators import GenerationRequest

#: Bumped when a file, a column or a format of the export changes.
SCHEMA_VERSION: Final = 1
#: Deflate level of every entry (see the module docstring).
DEFLATE_LEVEL: Final = 6
#: ZIP entries carry local times; the physicians practise here.
ALBERTA: Final = ZoneInfo("America/Edmonton")
#: Owner read and write only: the files hold health information.
ENTRY_MODE: Final = 0o100600
MANIFEST: Final = "manifest.json"
README: Final = "README.txt"

#: What each CSV holds, for the README.
DESCRIPTIONS: Final = {
    "claims.csv": "every claim, all states and years, with its AHCIP or WCB fields",
    "patients.csv": "your patients, with their health numbers (PHN)",
    "audit_history.csv": "every change made to a claim, oldest first",
    "ai_suggestions.csv": "AI Coach suggestions and what was done with them",
    "batches.csv": "the submission batches claims were sent in",
    "provider_profile.csv": "your profile: identity, BA numbers, locations, WCB, preferences",
}


def _compressor() -> zlib._Compress:
    return zlib.compressobj(DEFLATE_LEVEL, zlib.DEFLATED, -zlib.MAX_WBITS)


def readme(*, export_id: uuid.UUID, generated_at: datetime, password_protected: bool) -> str:
    """The README of one export (it names no person and holds no data)."""
    hours = DOWNLOAD_LINK_EXPIRY_DAYS[ReportOrigin.DATA_PORTABILITY] * 24
    files = "\n".join(f"  {name:<22} {text}" for name, text in DESCRIPTIONS.items())
    protection = (
        "This archive is protected by the password you chose (AES-256 encryption)."
        if password_protected
        else "This archive has no password: keep it somewhere only you can reach."
    )
    return f"""Meritum: export of your data
============================

Export {export_id}, generated {instant(generated_at)}.

This archive is your complete record on Meritum, produced at your request
under Alberta's Health Information Act, which gives you custody of it. It
holds health information about your patients: store and share it as you
would their charts.

The download link of this export expires {hours} hours after it was ready.

Files
-----
{files}
  {MANIFEST:<22} the export id, you, when it was made, and for every other
  {"":<22} file its number of rows, its size in bytes and its SHA-256
  {README:<22} this file

Formats
-------
Each .csv is UTF-8 text, comma-separated, with a header row (RFC 4180:
fields holding a comma, a quote or a line break are quoted).
  - dates are YYYY-MM-DD
  - timestamps are ISO 8601 in UTC with their offset: 2026-01-05T16:30:00+00:00
  - money is in Canadian dollars, with two decimals and no separator: 1234.50
  - ids are UUIDs; an empty field means no value
provider_profile.csv has three columns, section, key and value: one line per
fact of your profile (section "ba_number:<number>" per BA number,
"location:<id>" per practice location, "wcb" and "preferences").

Checking the files
------------------
{MANIFEST} gives the SHA-256 of each file. To compute one yourself:
  Windows (PowerShell):  Get-FileHash claims.csv -Algorithm SHA256
  macOS:                 shasum -a 256 claims.csv
  Linux:                 sha256sum claims.csv
The result must equal the "sha256" of that file in {MANIFEST}.

Opening a password-protected archive
------------------------------------
{protection}
Protected archives use WinZip AES-256 encryption. The archive tools built
into Windows and macOS cannot open them; use:
  Windows:  7-Zip (https://www.7-zip.org)
  macOS:    Keka or The Unarchiver
  Linux:    7z x meritum-data-portability-<date>.zip   (package 7zip or p7zip-full)
"""


def _physician(conn: Connection, provider_id: uuid.UUID) -> dict[str, Any]:
    row = conn.execute(
        select(Provider.billing_number, Provider.first_name, Provider.last_name).where(
            Provider.provider_id == provider_id
        )
    ).one()
    return {
        "provider_id": str(provider_id),
        "billing_number": row.billing_number,
        "name": f"{row.first_name} {row.last_name}",
    }


def generate(conn: Connection, request: GenerationRequest) -> Iterator[bytes]:
    """Stream the archive: the CSVs as they are read, then the manifest and the README."""
    generated_at = request.created_at
    modified_at = generated_at.astimezone(ALBERTA)
    protected = request.password is not None
    physician = _physician(conn, request.provider_id)
    stats = [EntryStats(dataset.name) for dataset in DATASETS]
    readme_bytes = readme(
        export_id=request.report_id, generated_at=generated_at, password_protected=protected
    ).encode("utf-8")
    readme_stats = EntryStats(README, rows=None)
    readme_stats.add(readme_bytes)  # known before any data: the manifest can list it

    def manifest() -> Iterator[bytes]:
        # Runs only once every CSV above has been streamed: stream-zip takes
        # the entries in order and each one to its end before the next.
        body = {
            "schema_version": SCHEMA_VERSION,
            "export_id": str(request.report_id),
            "physician": physician,
            "generated_at": instant(generated_at),
            "password_protected": protected,
            "entries": [entry.as_manifest() for entry in (*stats, readme_stats)],
        }
        yield (json.dumps(body, ensure_ascii=False, indent=2) + "\n").encode("utf-8")

    def members() -> Iterator[MemberFile]:
        for dataset, entry in zip(DATASETS, stats, strict=True):
            yield (
                dataset.name,
                modified_at,
                ENTRY_MODE,
                ZIP_32,
                stream_csv(conn, dataset, request.provider_id, entry),
            )
        yield MANIFEST, modified_at, ENTRY_MODE, ZIP_32, manifest()
        yield README, modified_at, ENTRY_MODE, ZIP_32, iter((readme_bytes,))

    yield from archive(members(), request.password)


def archive(members: Iterable[MemberFile], password: SecretStr | None) -> Iterator[bytes]:
    """Zip ``members`` as the export does: deflate 6, AES-256 (AE-2) with a password."""
    # The key derivation gets the password's UTF-8 bytes, as 7-Zip and WinZip
    # derive it: handed a str, pycryptodome would encode it as Latin-1 (a wrong
    # key for any accented password, and a failure beyond Latin-1).
    key = None if password is None else cast(str, password.get_secret_value().encode("utf-8"))
    yield from stream_zip(
        members,
        chunk_size=CHUNK_SIZE,
        get_compressobj=_compressor,
        extended_timestamps=True,
        password=key,
    )
