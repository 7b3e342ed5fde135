"""Configuration, read from the environment (``MERITUM_*`` and ``DATABASE_URL``)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Everything configurable; passed explicitly, never imported as a global."""

    model_config = SettingsConfigDict(env_prefix="MERITUM_", extra="ignore", frozen=True)

    #: An external PostgreSQL; when unset an embedded PostgreSQL 16 is started.
    database_url: str | None = Field(
        default=None, validation_alias=AliasChoices("DATABASE_URL", "MERITUM_DATABASE_URL")
    )
    #: Where the embedded database (``pg/``) and other local state live.
    data_dir: Path = Path(".data")
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535)
    environment: Literal["development", "production", "test"] = "development"
    log_level: Literal["debug", "info", "warning", "error"] = "info"
