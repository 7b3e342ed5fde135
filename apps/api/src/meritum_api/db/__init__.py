"""Database engine, the embedded PostgreSQL server and migrations."""
