"""Alembic migrations of the Meritum reports schema."""
