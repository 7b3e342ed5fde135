"""A throw-away PostgreSQL cluster with a migrated template, for tests and benchmarks.

The schema is built once by the migrations (never ``create_all``) into a
template database; every user of the cluster then clones it, which costs
tens of milliseconds with ``STRATEGY FILE_COPY``.
"""

from __future__ import annotations

import re
import shutil
import tempfile
from pathlib import Path

import psycopg
from sqlalchemy.engine import make_url

from meritum_api.db.embedded import EmbeddedPostgres
from meritum_api.db.migrate import upgrade

TEMPLATE = "meritum_template"
_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")

# Durability is worthless for a throw-away cluster and costs most of its time.
_FAST_SETTINGS = {
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
}


def fast_root() -> Path:
    """tmpfs when the machine has it (cloning is several times faster there)."""
    shm = Path("/dev/shm")  # noqa: S108 - a private mkdtemp() directory is made inside
    return shm if shm.is_dir() else Path(tempfile.gettempdir())


class ThrowawayCluster:
    """An embedded server in a temporary directory holding a migrated template."""

    def __init__(self, root: Path | None = None, *, tcp_port: int | None = None) -> None:
        self._dir = Path(tempfile.mkdtemp(prefix="meritum-pg-", dir=root or fast_root()))
        self._server = EmbeddedPostgres(self._dir / "pg")
        #: Listen on 127.0.0.1 at this port, as a database on another host would be reached.
        self.tcp_port = tcp_port
        self.admin_url = ""

    def start(self) -> None:
        """Start the server, tune it, and build the template from the migrations."""
        self.admin_url = self._server.start()
        if self.tcp_port is not None:
            self._server.listen_tcp("127.0.0.1", self.tcp_port)
            self.admin_url = self._server.url()
        with self._admin() as conn:
            for name, value in _FAST_SETTINGS.items():
                conn.execute(f"ALTER SYSTEM SET {name} = '{value}'")
            conn.execute("SELECT pg_reload_conf()")
            conn.execute(f"DROP DATABASE IF EXISTS {TEMPLATE}")
            conn.execute(f"CREATE DATABASE {TEMPLATE}")
        upgrade(self.url(TEMPLATE))
        with self._admin() as conn:
            # Any open connection to a template makes cloning fail: forbid them.
            conn.execute(f"ALTER DATABASE {TEMPLATE} WITH IS_TEMPLATE true ALLOW_CONNECTIONS false")

    def url(self, database: str) -> str:
        """SQLAlchemy URL of one database of the cluster."""
        return self._server.url(database)

    def make_template(self, name: str) -> None:
        """Turn database ``name`` into a template that :meth:`clone` can copy from."""
        if not _NAME.match(name):
            raise ValueError(f"not a plain database name: {name!r}")
        with self._admin() as conn:
            conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
                (name,),
            )
            conn.execute(f"ALTER DATABASE {name} WITH IS_TEMPLATE true ALLOW_CONNECTIONS false")

    def clone(self, name: str, *, template: str = TEMPLATE) -> str:
        """Create database ``name`` from a template (the migrated one); return its URL."""
        if not _NAME.match(name) or not _NAME.match(template):
            raise ValueError(f"not a plain database name: {name!r}")
        with self._admin() as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
            conn.execute(f"CREATE DATABASE {name} TEMPLATE {template} STRATEGY FILE_COPY")
        return self.url(name)

    def drop(self, name: str) -> None:
        """Drop a clone, closing whatever still connects to it."""
        if not _NAME.match(name):
            raise ValueError(f"not a plain database name: {name!r}")
        with self._admin() as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")

    def stop(self) -> None:
        """Stop the server and delete its files."""
        self._server.stop()
        shutil.rmtree(self._dir, ignore_errors=True)

    def _admin(self) -> psycopg.Connection[tuple[object, ...]]:
        return psycopg.connect(libpq_dsn(self.admin_url), autocommit=True)


def libpq_dsn(sqlalchemy_url: str) -> str:
    """The libpq connection string of a SQLAlchemy psycopg URL."""
    url = make_url(sqlalchemy_url)
    return url.set(drivername="postgresql").render_as_string(hide_password=False)
