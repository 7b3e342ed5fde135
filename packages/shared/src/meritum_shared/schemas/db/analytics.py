"""The ``generated_reports`` table (spec section 2) and its row types."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from enum import StrEnum
from typing import cast

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field
from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    Enum,
    ForeignKey,
    Index,
    LargeBinary,
    String,
    Table,
    Text,
    Uuid,
    and_,
    false,
    func,
    text,
)
from sqlalchemy.ext.hybrid import hybrid_property
from sqlalchemy.orm import Mapped, mapped_column
from sqlalchemy.sql.elements import ColumnElement

from meritum_shared.constants.analytics import ReportFormat, ReportStatus, ReportType
from meritum_shared.schemas.db.base import Base


def _in_list(column: str, enum: type[StrEnum]) -> str:
    values = ", ".join(f"'{member.value}'" for member in enum)
    return f"{column} IN ({values})"


def _varchar_enum(enum: type[StrEnum], length: int) -> Enum:
    # Stored as VARCHAR(length) holding the enum *values*; the CHECK that
    # restricts them is written by hand below so that it has a readable name.
    return Enum(
        enum,
        native_enum=False,
        create_constraint=False,
        length=length,
        values_callable=lambda members: [member.value for member in members],
        validate_strings=True,
    )


_PORTABILITY = f"'{ReportType.DATA_PORTABILITY.value}'"
_SETTLED = (ReportStatus.READY, ReportStatus.FAILED)


class GeneratedReport(Base):
    __tablename__ = "generated_reports"
    __table_args__ = (
        CheckConstraint(_in_list("report_type", ReportType), name="report_type_valid"),
        CheckConstraint(_in_list("format", ReportFormat), name="format_valid"),
        CheckConstraint(_in_list("status", ReportStatus), name="status_valid"),
        CheckConstraint("file_size_bytes >= 0", name="file_size_not_negative"),
        CheckConstraint(
            "(period_start IS NULL) = (period_end IS NULL)", name="period_bounds_paired"
        ),
        CheckConstraint("period_end >= period_start", name="period_order"),
        CheckConstraint(
            f"(report_type = {_PORTABILITY}) = (period_start IS NULL)",
            name="period_matches_type",
        ),
        CheckConstraint(
            f"report_type <> {_PORTABILITY} OR format = 'ZIP'", name="portability_is_zip"
        ),
        CheckConstraint(
            f"status <> '{ReportStatus.READY.value}' OR file_size_bytes > 0",
            name="ready_has_content",
        ),
        # provider_id is "indexed" through the leading column of the first two
        # composite indexes; a separate single-column index would be redundant.
        Index("ix_generated_reports_provider_id_report_type", "provider_id", "report_type"),
        Index(
            "ix_generated_reports_provider_id_created_at",
            "provider_id",
            text("created_at DESC"),
        ),
        Index("ix_generated_reports_download_link_expires_at", "download_link_expires_at"),
        Index("ix_generated_reports_status", "status"),
    )

    report_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, primary_key=True, server_default=text("gen_random_uuid()")
    )
    provider_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("providers.provider_id"), nullable=False
    )
    report_type: Mapped[ReportType] = mapped_column(_varchar_enum(ReportType, 50), nullable=False)
    format: Mapped[ReportFormat] = mapped_column(_varchar_enum(ReportFormat, 10), nullable=False)
    period_start: Mapped[date | None] = mapped_column(Date, nullable=True)
    period_end: Mapped[date | None] = mapped_column(Date, nullable=True)
    file_path: Mapped[str] = mapped_column(String(255), nullable=False)
    file_size_bytes: Mapped[int] = mapped_column(BigInteger, nullable=False)
    download_link_expires_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False
    )
    downloaded: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default=false())
    scheduled: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default=false())
    status: Mapped[ReportStatus] = mapped_column(
        _varchar_enum(ReportStatus, 20),
        nullable=False,
        server_default=text(f"'{ReportStatus.PENDING.value}'"),
    )
    error_message: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, server_default=func.now()
    )

    @hybrid_property
    def link_expired(self) -> bool:
        """Whether the download link has expired (Python clock)."""
        return self.download_link_expires_at <= datetime.now(UTC)

    @link_expired.inplace.expression
    @classmethod
    def _link_expired_expression(cls) -> ColumnElement[bool]:
        # The SQL side uses the database clock: the download route and the
        # cleanup job both ask PostgreSQL, so they can never disagree.
        return cls.download_link_expires_at <= func.now()

    @hybrid_property
    def holds_file(self) -> bool:
        """Whether the row may still own a file under its key (every status but expired).

        The orphan sweep keeps exactly these rows' files.
        """
        return self.status is not ReportStatus.EXPIRED

    @holds_file.inplace.expression
    @classmethod
    def _holds_file_expression(cls) -> ColumnElement[bool]:
        return cls.status != ReportStatus.EXPIRED

    @hybrid_property
    def settled(self) -> bool:
        """Whether generation has ended (ready or failed): what the retention cleanup expires."""
        return self.status in _SETTLED

    @settled.inplace.expression
    @classmethod
    def _settled_expression(cls) -> ColumnElement[bool]:
        return cls.status.in_(_SETTLED)

    @hybrid_property
    def downloadable(self) -> bool:
        """Whether the report can be downloaded now: ready, and its link not expired."""
        return self.status is ReportStatus.READY and not self.link_expired

    @downloadable.inplace.expression
    @classmethod
    def _downloadable_expression(cls) -> ColumnElement[bool]:
        return and_(cls.status == ReportStatus.READY, ~cls.link_expired)

    def __repr__(self) -> str:
        # Deliberately omits file_path: it must never reach a log line.
        return (
            f"GeneratedReport(report_id={self.report_id!s}, report_type={self.report_type!s}, "
            f"status={self.status!s})"
        )


generated_reports: Table = cast(Table, GeneratedReport.__table__)

# Beyond the spec's four: the cleanup job visits only settled rows (those it
# may expire). Without this partial index each expiry batch re-scans every
# row already expired (quadratic; see test_query_plans.py).
Index(
    "ix_generated_reports_cleanup_due",
    GeneratedReport.download_link_expires_at,
    postgresql_where=GeneratedReport.settled,
)


class GeneratedReportContent(Base):
    """The SHA-256 of a ready report's plaintext, recorded when its file was written.

    Kept beside the spec's table rather than in it: clients verify what they
    downloaded against it, and it goes with its report.
    """

    __tablename__ = "generated_report_contents"
    __table_args__ = (CheckConstraint("octet_length(sha256) = 32", name="sha256_length"),)

    report_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("generated_reports.report_id", ondelete="CASCADE"), primary_key=True
    )
    sha256: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)
    recorded_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, server_default=func.now()
    )


generated_report_contents: Table = cast(Table, GeneratedReportContent.__table__)


class ReportIdempotencyKey(Base):
    """An ``Idempotency-Key`` a physician sent with a report request, for 24 hours.

    Scoped by provider: the same key from two physicians names two rows, so
    a key can never lead to another physician's report.
    """

    __tablename__ = "report_idempotency_keys"
    __table_args__ = (
        CheckConstraint(r"idempotency_key ~ '^[\x21-\x7e]{1,255}$'", name="key_printable"),
        CheckConstraint("octet_length(request_sha256) = 32", name="request_sha256_length"),
        Index("ix_report_idempotency_keys_report_id", "report_id"),
    )

    provider_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("providers.provider_id"), primary_key=True
    )
    idempotency_key: Mapped[str] = mapped_column(String(255), primary_key=True)
    #: SHA-256 of the endpoint and the request body, to tell a replay from a misuse.
    request_sha256: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)
    report_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("generated_reports.report_id", ondelete="CASCADE"), nullable=False
    )
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, server_default=func.now()
    )


report_idempotency_keys: Table = cast(Table, ReportIdempotencyKey.__table__)


class ReportExportSecret(Base):
    """The password of a protected data export, sealed, while its archive is being made.

    AES-256-GCM under a key derived from the master key ``key_id`` names,
    with the report id as associated data (a sealed row moved to another
    report does not open). One row per report, written with the request and
    deleted when generation ends (ready or failed) or at expiry at the latest.
    """

    __tablename__ = "report_export_secrets"
    __table_args__ = (
        CheckConstraint("octet_length(nonce) = 12", name="nonce_length"),
        # 12 to 128 characters of up to 4 UTF-8 bytes each, and the 16-byte tag.
        CheckConstraint("octet_length(ciphertext) BETWEEN 28 AND 528", name="ciphertext_length"),
        CheckConstraint(r"key_id ~ '^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$'", name="key_id_shape"),
    )

    report_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("generated_reports.report_id", ondelete="CASCADE"), primary_key=True
    )
    key_id: Mapped[str] = mapped_column(String(64), nullable=False)
    nonce: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)
    ciphertext: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, server_default=func.now()
    )

    def __repr__(self) -> str:
        return f"ReportExportSecret(report_id={self.report_id!s})"


report_export_secrets: Table = cast(Table, ReportExportSecret.__table__)


class InsertGeneratedReport(BaseModel):
    """What a caller supplies to insert a row: defaulted columns are optional."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    report_id: uuid.UUID | None = None
    provider_id: uuid.UUID
    report_type: ReportType
    format: ReportFormat
    period_start: date | None = None
    period_end: date | None = None
    file_path: str = Field(min_length=1, max_length=255, repr=False)
    file_size_bytes: int = Field(ge=0)
    download_link_expires_at: AwareDatetime
    downloaded: bool | None = None
    scheduled: bool | None = None
    status: ReportStatus | None = None
    error_message: str | None = None
    created_at: AwareDatetime | None = None


class SafeGeneratedReport(BaseModel):
    """A row of ``generated_reports`` without its storage key: what code outside storage sees.

    Its fields are :class:`SelectGeneratedReport`'s, in column order, less
    ``file_path`` (a test holds the two together).
    """

    model_config = ConfigDict(from_attributes=True, frozen=True)

    report_id: uuid.UUID
    provider_id: uuid.UUID
    report_type: ReportType
    format: ReportFormat
    period_start: date | None
    period_end: date | None
    file_size_bytes: int
    download_link_expires_at: AwareDatetime
    downloaded: bool
    scheduled: bool
    status: ReportStatus
    error_message: str | None
    created_at: AwareDatetime


class SelectGeneratedReport(BaseModel):
    """A full row of ``generated_reports`` (server side only: holds file_path)."""

    model_config = ConfigDict(from_attributes=True, frozen=True)

    report_id: uuid.UUID
    provider_id: uuid.UUID
    report_type: ReportType
    format: ReportFormat
    period_start: date | None
    period_end: date | None
    file_path: str = Field(repr=False)
    file_size_bytes: int
    download_link_expires_at: AwareDatetime
    downloaded: bool
    scheduled: bool
    status: ReportStatus
    error_message: str | None
    created_at: AwareDatetime
