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


def _claims(provider_id: uuid.UUID) -> Executable:
    c = Claim
    return (
        select(
            c.claim_id,
            c.claim_type,
            c.state,
            c.date_of_service,
            c.hsc_code,
            c.modifiers,
            c.submitted_fee,
            c.assessed_fee,
            c.payment_date,
            c.ba_number,
            c.location,
            c.rrnp_premium,
            c.rejection_code,
            c.patient_id,
            c.batch_id,
            c.wcb_claim_number,
            c.wcb_form_type,
            c.created_at,
            c.updated_at,
        )
        .where(c.provider_id == provider_id)
        # Walks ix_claims_provider_id_date_of_service.
        .order_by(c.date_of_service, c.claim_id)
    )


def _patients(provider_id: uuid.UUID) -> Executable:
    p = Patient
    return (
        select(p.patient_id, p.phn, p.first_name, p.last_name, p.date_of_birth, p.created_at)
        .where(p.provider_id == provider_id)
        .order_by(p.phn)  # walks ix_patients_provider_id_phn
    )


def _history(provider_id: uuid.UUID) -> Executable:
    h = ClaimHistoryEvent
    return (
        select(
            h.event_id,
            h.claim_id,
            h.occurred_at,
            h.action,
            h.from_state,
            h.to_state,
            h.actor,
            h.details,
        )
        .where(h.provider_id == provider_id)
        .order_by(h.occurred_at, h.event_id)
    )


def _suggestions(provider_id: uuid.UUID) -> Executable:
    s = AiCoachSuggestion
    return (
        select(
            s.suggestion_id,
            s.claim_id,
            s.created_at,
            s.category,
            s.suggestion,
            s.status,
            s.dismissed_reason,
            s.revenue_impact,
        )
        .where(s.provider_id == provider_id)
        .order_by(s.created_at, s.suggestion_id)
    )


def _batches(provider_id: uuid.UUID) -> Executable:
    b = SubmissionBatch
    return (
        select(
            b.batch_id,
            b.claim_type,
            b.ba_number,
            b.submitted_at,
            b.claim_count,
            b.total_submitted,
            b.status,
        )
        .where(b.provider_id == provider_id)
        .order_by(b.submitted_at, b.batch_id)
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
    Dataset(
        "claims.csv",
        (
            "claim_id",
            "claim_type",
            "state",
            "date_of_service",
            "hsc_code",
            "modifiers",
            "submitted_fee",
            "assessed_fee",
            "payment_date",
            "ba_number",
            "location",
            "rrnp_premium",
            "rejection_code",
            "patient_id",
            "batch_id",
            "wcb_claim_number",
            "wcb_form_type",
            "created_at",
            "updated_at",
        ),
        (
            plain,
            plain,
            plain,
            day,
            plain,
            plain,
            money,
            money,
            day,
            plain,
            plain,
            money,
            plain,
            plain,
            plain,
            plain,
            plain,
            instant,
            instant,
        ),
        streamed(_claims),
    ),
    Dataset(
        "patients.csv",
        ("patient_id", "phn", "first_name", "last_name", "date_of_birth", "created_at"),
        (plain, plain, plain, plain, day, instant),
        streamed(_patients),
    ),
    Dataset(
        "audit_history.csv",
        (
            "event_id",
            "claim_id",
            "occurred_at",
            "action",
            "from_state",
            "to_state",
            "actor",
            "details",
        ),
        (plain, plain, instant, plain, plain, plain, plain, plain),
        streamed(_history),
    ),
    Dataset(
        "ai_suggestions.csv",
        (
            "suggestion_id",
            "claim_id",
            "created_at",
            "category",
            "suggestion",
            "status",
            "dismissed_reason",
            "revenue_impact",
        ),
        (plain, plain, instant, plain, plain, plain, plain, money),
        streamed(_suggestions),
    ),
    Dataset(
        "batches.csv",
        (
            "batch_id",
            "claim_type",
            "ba_number",
            "submitted_at",
            "claim_count",
            "total_submitted",
            "status",
        ),
        (plain, plain, plain, instant, plain, money, plain),
        streamed(_batches),
    ),
    Dataset(
        "provider_profile.csv",
        ("section", "key", "value"),
        (plain, plain, plain),
        _profile,
    ),
)
