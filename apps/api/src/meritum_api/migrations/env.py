"""Alembic environment: the shared metadata, and a URL from the caller or settings."""

from __future__ import annotations

from contextlib import ExitStack

from alembic import context
from sqlalchemy import Connection, create_engine, pool

from meritum_api.db.migrate import include_name
from meritum_shared.schemas.db import metadata

config = context.config
target_metadata = metadata


def _configure(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        compare_type=True,
        compare_server_default=True,
        include_name=include_name,
        transaction_per_migration=True,
    )


def run_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _configure(connection)
        with context.begin_transaction():
            context.run_migrations()
        return
    with ExitStack() as stack:
        url = config.attributes.get("url")
        if url is None:
            # Invoked as the plain ``alembic`` command: use the configured database.
            from meritum_api.db.runtime import open_database_url
            from meritum_api.settings import Settings

            url = stack.enter_context(open_database_url(Settings()))
        engine = create_engine(url, poolclass=pool.NullPool)
        with engine.connect() as conn:
            _configure(conn)
            with context.begin_transaction():
                context.run_migrations()
        engine.dispose()


if context.is_offline_mode():
    raise SystemExit("offline (--sql) migrations are not supported: run against a database")
run_online()
