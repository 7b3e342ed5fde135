"""Configuration, read from the environment (``MERITUM_*`` and ``DATABASE_URL``)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlsplit

from croniter import croniter
from pydantic import AfterValidator, AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict


def _cron(value: str) -> str:
    # procrastinate reads crons with croniter: five fields, or six whose last is seconds.
    if len(value.split()) not in (5, 6) or not croniter.is_valid(value):
        raise ValueError(
            "must be a cron expression of 5 fields, or 6 whose last is seconds "
            "(e.g. '* * * * * */5' for every 5 seconds)"
        )
    return value


CronExpression = Annotated[str, AfterValidator(_cron)]


#: Schemes DATABASE_URL may use (all mean PostgreSQL through psycopg 3).
DATABASE_SCHEMES = ("postgresql", "postgres", "postgresql+psycopg")


def _database_url(value: str | None) -> str | None:
    if value is None:
        return None
    if not value.strip():
        raise ValueError("is set but empty: unset it to use the embedded database")
    scheme, sep, rest = value.partition("://")
    if not sep or not rest:
        raise ValueError("must look like postgresql://user:password@host:port/database")
    if scheme not in DATABASE_SCHEMES:
        raise ValueError(
            f"has the unsupported scheme {scheme[:40]!r}: use one of {', '.join(DATABASE_SCHEMES)}"
        )
    return value


#: Schemes MERITUM_SMTP_URL may use: plain SMTP (STARTTLS on request) or implicit TLS.
SMTP_SCHEMES = ("smtp", "smtps")


def _smtp_url(value: str | None) -> str | None:
    if value is None:
        return None
    parsed = urlsplit(value)
    if parsed.scheme not in SMTP_SCHEMES or not parsed.hostname:
        raise ValueError("must look like smtp://host:port or smtps://user:password@host:port")
    try:
        parsed.port  # noqa: B018 (parsing the port is the check)
    except ValueError:
        raise ValueError("has an invalid port") from None
    return value


def _public_url(value: str) -> str:
    parsed = urlsplit(value)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise ValueError("must be an absolute http(s) URL, e.g. https://reports.meritum.example")
    return value.rstrip("/")


class Settings(BaseSettings):
    """Everything configurable; passed explicitly, never imported as a global."""

    model_config = SettingsConfigDict(env_prefix="MERITUM_", extra="ignore", frozen=True)

    #: An external PostgreSQL; when unset an embedded PostgreSQL 16 is started.
    database_url: Annotated[str | None, AfterValidator(_database_url)] = Field(
        default=None,
        validation_alias=AliasChoices("DATABASE_URL", "MERITUM_DATABASE_URL"),
        repr=False,
    )
    #: Where the embedded database (``pg/``) and other local state live.
    data_dir: Path = Path(".data")
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535)
    environment: Literal["development", "production", "test"] = "development"
    log_level: Literal["debug", "info", "warning", "error"] = "info"

    # --- storage of report files (encrypted at rest) ---
    #: ``local`` (a directory) or ``s3`` (an S3-compatible object store).
    storage_backend: Literal["local", "s3"] = "local"
    #: Root directory of the local backend; default ``<data_dir>/reports``.
    storage_dir: Path | None = None
    s3_bucket: str | None = None
    s3_endpoint_url: str | None = None
    s3_region: str = "ca-central-1"
    #: Master keys that wrap each file's data key, as JSON ``{"key id": "base64 of 32 bytes"}``.
    #: When unset in development, a key is generated once under ``<data_dir>/keys``.
    master_keys: dict[str, str] | None = Field(default=None, repr=False)
    #: Which master key wraps new files (default: the only one, or the newest generated).
    active_key_id: str | None = None

    # --- background work (the job queue) ---
    #: Jobs a worker process runs at once.
    worker_concurrency: int = Field(default=2, ge=1, le=64)
    #: Whether ``meritum serve`` also runs a worker in-process (one-command quick start).
    serve_with_worker: bool = True
    #: Retries of a failed generation before the report ends ``failed``.
    generation_retries: int = Field(default=3, ge=0, le=20)
    #: Backoff between retries: this many seconds to the power of the attempt number.
    generation_backoff_seconds: int = Field(default=2, ge=0, le=60)
    #: How often a worker proves it is alive.
    heartbeat_seconds: float = Field(default=5.0, gt=0)
    #: A worker silent for this long is presumed dead and its jobs are retried.
    stalled_after_seconds: float = Field(default=20.0, gt=0)
    #: How often stalled jobs are looked for: cron whose optional sixth field, the
    #: *last* one, is seconds (every 5 s here).
    stalled_check_cron: CronExpression = "* * * * * */5"
    #: How often the retention cleanup runs (cron: every 5 minutes).
    cleanup_cron: CronExpression = "*/5 * * * *"
    #: How often expired login sessions' rows are deleted (cron: every 15 minutes).
    session_purge_cron: CronExpression = "*/15 * * * *"
    #: Rows expired (and files deleted) per cleanup transaction.
    cleanup_batch_size: int = Field(default=500, ge=1, le=10_000)
    #: Files with no row are deleted only once this old (a row may still be committing).
    orphan_grace_seconds: int = Field(default=3600, ge=0)

    # --- the HTTP platform: sessions and request limits ---
    #: Database connections the API keeps for requests (a worker in the same
    #: process adds its own: see ``meritum_api.deps.pool_size``).
    api_db_connections: int = Field(default=10, ge=1, le=200)
    #: Connections of the API's asynchronous read pool (the reports list), at most.
    api_read_connections: int = Field(default=4, ge=1, le=100)
    #: A session ends after this long without use (the expiry slides on use).
    session_ttl_seconds: int = Field(default=86_400, ge=60)
    #: The sliding expiry is written at most this often per session.
    session_touch_interval_seconds: int = Field(default=60, ge=0)
    #: Validated sessions an API process keeps in memory (0: look every request up).
    session_cache_size: int = Field(default=10_000, ge=0)
    #: Requests per minute per signed-in user (per client address when anonymous).
    rate_limit_per_minute: int = Field(default=100, ge=1)
    #: Failed logins per email address allowed in the window below, then 429.
    login_max_failures: int = Field(default=10, ge=1)
    login_failure_window_seconds: int = Field(default=900, ge=1)
    #: Largest request body accepted (413 beyond it), in bytes.
    max_body_bytes: int = Field(default=65_536, ge=1024)

    # --- notifications and email ---
    #: The SMTP server email goes through (``smtp://[user:password@]host:port``, or
    #: ``smtps://`` for implicit TLS). Unset: messages are written as ``.eml`` files
    #: under ``<data_dir>/mail`` outside production.
    smtp_url: Annotated[str | None, AfterValidator(_smtp_url)] = Field(default=None, repr=False)
    #: Upgrade a plain ``smtp://`` connection with STARTTLS before authenticating.
    smtp_starttls: bool = False
    smtp_timeout_seconds: float = Field(default=10.0, gt=0, le=300)
    #: The From header of every message.
    mail_from: str = "Meritum Reports <reports@meritum.example>"
    #: Where the web app is reached: links in emails point under it.
    public_url: Annotated[str, AfterValidator(_public_url)] = "http://127.0.0.1:8000"
    #: Attempts at sending one email before its job is left failed.
    email_retries: int = Field(default=8, ge=0, le=30)
    #: Backoff between attempts: this many seconds to the power of the attempt number.
    email_backoff_seconds: int = Field(default=3, ge=0, le=60)
    #: How often reports about to expire undownloaded are looked for (cron).
    expiring_check_cron: CronExpression = "*/15 * * * *"
    #: How often the scheduler looks for due subscriptions (cron: every minute).
    subscription_schedule_cron: CronExpression = "* * * * *"
    #: Count Alberta's optional holidays (Easter Monday, Heritage Day, Truth and
    #: Reconciliation Day, Boxing Day) as non-business days.
    optional_holidays: bool = False

    def resolved_storage_dir(self) -> Path:
        """Root directory of the local storage backend."""
        return self.storage_dir if self.storage_dir is not None else self.data_dir / "reports"
