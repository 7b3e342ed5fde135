"""Opening the configured database: ``DATABASE_URL`` or the embedded server."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from meritum_api.db.embedded import EmbeddedPostgres, to_psycopg_url
from meritum_api.settings import Settings


@contextmanager
def open_database_url(settings: Settings) -> Iterator[str]:
    """Yield a SQLAlchemy URL; an embedded server lives as long as the block."""
    if settings.database_url:
        yield to_psycopg_url(settings.database_url)
        return
    server = EmbeddedPostgres(settings.data_dir / "pg")
    try:
        yield server.start()
    finally:
        server.stop()
