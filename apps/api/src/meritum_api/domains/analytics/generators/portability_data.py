"""The datasets of the data portability export: one CSV per table, scoped to one provider.

Each dataset is a statement over the stand-in tables and the columns the
spec lists, in its order. Rows are formatted one way for every file: dates
``YYYY-MM-DD``, timestamps ISO 8601 in UTC with their offset
to the second (``2026-01-05T16:30:00+00:00``), money as a plain decimal with two places,
ids as UUIDs, and an empty field for a missing value.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import io
import uuid
from collections.abc import Callable, Generator, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any, Final

from sqlalchemy import Connection, Executable, select

from meritum_shared.schemas.db import (
    AiCoachSuggestion,
    Claim,
    ClaimHistoryEvent,
    Patient,
    PracticeLocation,
    Provider,
    ProviderBaNumber,
    ProviderSetting,
    SubmissionBatch,
)

#: Roughly how many bytes each yielded chunk holds.
CHUNK_SIZE: Final = 64 * 1024
#: Rows fetched per round trip from the server-side cursor.
FETCH_ROWS: Final = 2_000
_CENT: Final = Decimal("0.01")


def money(value: Decimal | None) -> str:
    """Two decimals, never through a float; refuses to round."""
    if value is None:
        return ""
    cents = value.quantize(_CENT)
    if cents != value:
        raise ValueError("an amount has more than two decimals")
    return f"{cents:f}"


def day(value: date | None) -> str:
    """``YYYY-MM-DD``."""
    return "" if value is None else value.isoformat()


def instant(value: datetime | None) -> str:
    """ISO 8601 in UTC with its offset; a naive timestamp is a bug."""
    if value is None:
        return ""
    if value.tzinfo is None:
        raise ValueError("a timestamp has no time zone")
    return value.astimezone(UTC).isoformat(timespec="seconds")


def plain(value: str | int | uuid.UUID | StrEnum | None) -> str:
    """Text, enum values (a StrEnum's str is its value), integers and UUIDs as they are."""
    return "" if value is None else str(value)


Format = Callable[[Any], str]
RowSource = Callable[[Connection, uuid.UUID], Generator[Sequence[Any], None, None]]


@dataclass(frozen=True, slots=True)
class Dataset:
    """One CSV of the export: its file name, header, formats and statement."""

    name: str
    header: tuple[str, ...]
    formats: tuple[Format, ...]
    #: Yields the provider's rows in the file's order.
    rows: RowSource

    def __post_init__(self) -> None:
        if len(self.header) != len(self.formats):
            raise ValueError(f"{self.name}: every column needs one format")


def streamed(statement: Callable[[uuid.UUID], Executable]) -> RowSource:
    """Rows of a statement, through a server-side cursor closed when the reader stops."""

    def rows(conn: Connection, provider_id: uuid.UUID) -> Generator[Sequence[Any], None, None]:
        # stream_results opens a named (server-side) cursor: rows arrive
        # FETCH_ROWS at a time, so memory stays flat whatever the record holds.
        result = conn.execute(
            statement(provider_id),
            execution_options={"stream_results": True, "yield_per": FETCH_ROWS},
        )
        try:
            yield from result
        finally:
            result.close()

    return rows


@dataclass(slots=True)
class EntryStats:
    """What was written into one entry: counted and hashed as it streams."""

    name: str
    rows: int | None = 0
    size: int = 0
    sha256: Any = field(default_factory=hashlib.sha256)

    def add(self, chunk: bytes) -> bytes:
        """Count and hash ``chunk``, then hand it on."""
        self.size += len(chunk)
        self.sha256.update(chunk)
        return chunk

    def as_manifest(self) -> dict[str, Any]:
        """The entry's line in ``manifest.json``."""
        return {
            "name": self.name,
            "rows": self.rows,
            "bytes": self.size,
            "sha256": self.sha256.hexdigest(),
        }


def stream_csv(
    conn: Connection, dataset: Dataset, provider_id: uuid.UUID, stats: EntryStats
) -> Iterator[bytes]:
    """The dataset's CSV in chunks of about 64 KiB, header first; counts into ``stats``."""
    buffer = io.StringIO()
    # RFC 4180: comma, double quote, quoted only when needed, CRLF.
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(dataset.header)
    rows = 0
    formats = dataset.formats
    with contextlib.closing(dataset.rows(conn, provider_id)) as source:
        for row in source:
            writer.writerow([f(v) for f, v in zip(formats, row, strict=True)])
            rows += 1
            if buffer.tell() >= CHUNK_SIZE:
                yield stats.add(buffer.getvalue().encode("utf-8"))
                buffer.seek(0)
                buffer.truncate()
    stats.rows = rows
    yield stats.add(buffer.getvalue().encode("utf-8"))


def table(
    name: str, model: Any, columns: Sequence[tuple[str, Format]], order_by: Sequence[str]
) -> Dataset:
    """A CSV of a table's columns (named as in the table), the provider's rows by ``order_by``."""
    selected = [getattr(model, column) for column, _ in columns]
    order = [getattr(model, column) for column in order_by]

    def statement(provider_id: uuid.UUID) -> Executable:
        return select(*selected).where(model.provider_id == provider_id).order_by(*order)

    return Dataset(
        name,
        tuple(column for column, _ in columns),
        tuple(write for _, write in columns),
        streamed(statement),
    )


def _profile(
    conn: Connection, provider_id: uuid.UUID
) -> Generator[tuple[str, str, Any], None, None]:
    """Section, key, value: identity, each BA number, each location, WCB, preferences."""
    pr, ba, loc, st = Provider, ProviderBaNumber, PracticeLocation, ProviderSetting
    identity = conn.execute(
        select(pr.provider_id, pr.billing_number, pr.first_name, pr.last_name, pr.created_at).where(
            pr.provider_id == provider_id
        )
    ).one()
    for key, value in identity._mapping.items():
        yield "identity", key, instant(value) if key == "created_at" else value
    bas = conn.execute(
        select(ba.ba_number, ba.ba_type, ba.active_from, ba.active_to)
        .where(ba.provider_id == provider_id)
        .order_by(ba.ba_number)
    )
    for number, ba_type, active_from, active_to in bas:
        section = f"ba_number:{number}"
        yield section, "ba_type", ba_type
        yield section, "active_from", day(active_from)
        yield section, "active_to", day(active_to)
    locations = conn.execute(
        select(
            loc.location_id, loc.name, loc.functional_centre, loc.default_ba_number, loc.rrnp_rate
        )
        .where(loc.provider_id == provider_id)
        .order_by(loc.name, loc.location_id)
    )
    for location_id, name, centre, default_ba, rrnp_rate in locations:
        section = f"location:{location_id}"
        yield section, "name", name
        yield section, "functional_centre", centre
        yield section, "default_ba_number", default_ba
        yield section, "rrnp_rate", "" if rrnp_rate is None else f"{rrnp_rate:f}"
    settings = conn.execute(
        select(st.section, st.key, st.value)
        .where(st.provider_id == provider_id)
        .order_by(st.section.desc(), st.key)  # "wcb" before "preferences"
    )
    for section, key, value in settings:
        yield section, key, value


#: The export's CSVs, in the order of the archive.
DATASETS: Final[tuple[Dataset, ...]] = (
    table(
        "claims.csv",
        Claim,
        (
            ("claim_id", plain),
            ("claim_type", plain),
            ("state", plain),
            ("date_of_service", day),
            ("hsc_code", plain),
            ("modifiers", plain),
            ("submitted_fee", money),
            ("assessed_fee", money),
            ("payment_date", day),
            ("ba_number", plain),
            ("location", plain),
            ("rrnp_premium", money),
            ("rejection_code", plain),
            ("patient_id", plain),
            ("batch_id", plain),
            ("wcb_claim_number", plain),
            ("wcb_form_type", plain),
            ("created_at", instant),
            ("updated_at", instant),
        ),
        # Walks ix_claims_provider_id_date_of_service.
        order_by=("date_of_service", "claim_id"),
    ),
    table(
        "patients.csv",
        Patient,
        (
            ("patient_id", plain),
            ("phn", plain),
            ("first_name", plain),
            ("last_name", plain),
            ("date_of_birth", day),
            ("created_at", instant),
        ),
        order_by=("phn",),  # walks ix_patients_provider_id_phn
    ),
    table(
        "audit_history.csv",
        ClaimHistoryEvent,
        (
            ("event_id", plain),
            ("claim_id", plain),
            ("occurred_at", instant),
            ("action", plain),
            ("from_state", plain),
            ("to_state", plain),
            ("actor", plain),
            ("details", plain),
        ),
        order_by=("occurred_at", "event_id"),
    ),
    table(
        "ai_suggestions.csv",
        AiCoachSuggestion,
        (
            ("suggestion_id", plain),
            ("claim_id", plain),
            ("created_at", instant),
            ("category", plain),
            ("suggestion", plain),
            ("status", plain),
            ("dismissed_reason", plain),
            ("revenue_impact", money),
        ),
        order_by=("created_at", "suggestion_id"),
    ),
    table(
        "batches.csv",
        SubmissionBatch,
        (
            ("batch_id", plain),
            ("claim_type", plain),
            ("ba_number", plain),
            ("submitted_at", instant),
            ("claim_count", plain),
            ("total_submitted", money),
            ("status", plain),
        ),
        order_by=("submitted_at", "batch_id"),
    ),
    Dataset(
        "provider_profile.csv",
        ("section", "key", "value"),
        (plain, plain, plain),
        _profile,
    ),
)
