"""Migrations and models agree, including what autogenerate cannot see."""

from __future__ import annotations

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import CheckConstraint, Engine, text
from sqlalchemy.sql.elements import ColumnElement

from meritum_api.db.migrate import alembic_config, current_revision, head_revision, include_name
from meritum_shared.schemas.db import metadata


def test_migrated_database_is_at_head(engine: Engine) -> None:
    assert current_revision(engine) == head_revision()


def test_alembic_check_passes(db_url: str) -> None:
    command.check(alembic_config(db_url))  # raises when autogenerate finds a difference


def test_autogenerate_finds_no_difference(engine: Engine) -> None:
    with engine.connect() as conn:
        context = MigrationContext.configure(
            conn,
            opts={
                "compare_type": True,
                "compare_server_default": True,
                "include_name": include_name,
            },
        )
        assert compare_metadata(context, metadata) == []


def _normalise(sql: str) -> str:
    return " ".join(sql.split())


def test_live_checks_match_the_metadata(engine: Engine) -> None:
    """CHECK constraints, which autogenerate ignores, compared by name and meaning."""
    with engine.connect() as conn:
        # Let PostgreSQL canonicalise each metadata expression on a scratch
        # table with the same columns, then compare with the live definitions.
        expected: dict[str, str] = {}
        for table in metadata.sorted_tables:
            scratch = f"scratch_{table.name}"
            conn.execute(text(f"CREATE TEMP TABLE {scratch} (LIKE {table.name})"))
            for constraint in table.constraints:
                if not isinstance(constraint, CheckConstraint):
                    continue
                name = str(constraint.name)
                sqltext: ColumnElement[bool] = constraint.sqltext
                sql = str(
                    sqltext.compile(dialect=conn.dialect, compile_kwargs={"literal_binds": True})
                )
                conn.execute(text(f"ALTER TABLE {scratch} ADD CONSTRAINT {name} CHECK ({sql})"))
                expected[f"{table.name}.{name}"] = _normalise(
                    conn.execute(
                        text(
                            "SELECT pg_get_constraintdef(oid) FROM pg_constraint "
                            "WHERE conname = :n AND conrelid = :t ::regclass"
                        ),
                        {"n": name, "t": scratch},
                    ).scalar_one()
                )
        live = {
            f"{table}.{name}": _normalise(definition)
            for table, name, definition in conn.execute(
                text(
                    "SELECT cl.relname, c.conname, pg_get_constraintdef(c.oid) "
                    "FROM pg_constraint c JOIN pg_class cl ON cl.oid = c.conrelid "
                    "JOIN pg_namespace n ON n.oid = cl.relnamespace "
                    "WHERE c.contype = 'c' AND n.nspname = 'public' "
                    "AND cl.relname = ANY (:tables)"
                ),
                {"tables": list(metadata.tables)},
            )
        }
        conn.rollback()
    assert live == expected


def test_live_indexes_match_the_metadata(engine: Engine) -> None:
    expected = {
        (table.name, index.name) for table in metadata.sorted_tables for index in table.indexes
    }
    with engine.connect() as conn:
        live = {
            (table, name)
            for table, name in conn.execute(
                text(
                    "SELECT tablename, indexname FROM pg_indexes WHERE schemaname = 'public' "
                    "AND tablename = ANY (:tables) AND indexname LIKE 'ix\\_%'"
                ),
                {"tables": list(metadata.tables)},
            )
        }
    assert live == expected
