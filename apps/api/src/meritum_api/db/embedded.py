"""An embedded PostgreSQL 16 from the ``pgserver`` wheel.

pgserver keeps a list of the processes holding a server in
``<pgdata>/.handle_pids.json`` and stops the server when the last holder
exits. A holder killed with SIGKILL never removes itself, so the server
would be kept alive forever; :func:`prune_dead_holders` repairs the list
before each start so the last live holder still stops it.
"""

from __future__ import annotations

import json
import logging
import subprocess
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

import psutil

if TYPE_CHECKING:
    from pgserver.postgres_server import PostgresServer

log = logging.getLogger(__name__)

_HANDLES = ".handle_pids.json"


class DatabaseStartError(RuntimeError):
    """The embedded database could not be started."""


def prune_dead_holders(pgdata: Path) -> list[int]:
    """Drop pids of processes that no longer exist from pgserver's holder list."""
    path = pgdata / _HANDLES
    try:
        pids = json.loads(path.read_text())
    except (FileNotFoundError, ValueError):
        return []
    alive = [pid for pid in pids if isinstance(pid, int) and psutil.pid_exists(pid)]
    dead = [pid for pid in pids if pid not in alive]
    if dead:
        path.write_text(json.dumps(alive))
        log.info("embedded database: forgot %d holder(s) that died without stopping it", len(dead))
    return dead


class EmbeddedPostgres:
    """A running embedded server; :meth:`stop` releases this process's hold."""

    def __init__(self, pgdata: Path) -> None:
        self.pgdata = pgdata.expanduser().resolve()
        self._server: PostgresServer | None = None
        self._tcp: tuple[str, int] | None = None

    def start(self) -> str:
        """Start (or join) the server and return a SQLAlchemy URL for psycopg 3."""
        with warnings.catch_warnings():
            # platformdirs warns when XDG_RUNTIME_DIR is unset (containers, CI): harmless here.
            warnings.simplefilter("ignore")
            from pgserver.postgres_server import get_server  # heavy: import only when used

        try:
            self.pgdata.parent.mkdir(parents=True, exist_ok=True)
            if self.pgdata.exists():
                prune_dead_holders(self.pgdata)
            self._server = get_server(self.pgdata, cleanup_mode="stop")
        except Exception as exc:  # pgserver raises assorted errors; surface one clear line
            raise DatabaseStartError(
                f"the embedded PostgreSQL in {self.pgdata} could not start ({type(exc).__name__}); "
                f"see {self.pgdata / 'log'}"
            ) from exc
        return self.url()

    def url(self, database: str = "postgres") -> str:
        """SQLAlchemy URL of a database on this server (psycopg 3; TCP once :meth:`listen_tcp`)."""
        if self._server is None:
            raise DatabaseStartError("the embedded database is not running")
        if self._tcp is not None:
            host, port = self._tcp
            return f"postgresql+psycopg://{self._server.postgres_user}@{host}:{port}/{database}"
        return to_psycopg_url(self._server.get_uri(database))

    def listen_tcp(self, host: str, port: int) -> None:
        """Restart the server listening on ``host:port`` (as a separate database host would).

        pgserver starts PostgreSQL on a unix socket only; its command-line
        ``-h ""`` wins over any setting, so the server is restarted with
        other options. Connections are trusted, as pgserver sets up: for
        loopback tests and benchmarks only.
        """
        from pgserver._commands import POSTGRES_BIN_PATH

        if self._server is None:
            raise DatabaseStartError("the embedded database is not running")
        socket_dir = self._server.get_postmaster_info().socket_dir or self.pgdata
        options = f'-h {host} -p {port} -k "{socket_dir}"'
        command = [str(POSTGRES_BIN_PATH / "pg_ctl"), "-D", str(self.pgdata), "-w", "-o", options]
        subprocess.run(  # noqa: S603 - our own binary, arguments built here
            [*command, "-l", str(self._server.log), "restart"],
            user=self._server.system_user,
            check=True,
            # Not pipes: the server inherits them, and reading them would never end.
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            timeout=60,
        )
        self._tcp = (host, port)
        # pgserver stops the server it knows of: tell it about the new one.
        from pgserver.utils import PostmasterInfo

        self._server._postmaster_info = PostmasterInfo.read_from_pgdata(self.pgdata)

    def stop(self) -> None:
        """Release this process's hold; the last holder stops the server."""
        if self._server is not None:
            self._server.cleanup()
            self._server = None


def to_psycopg_url(uri: str) -> str:
    """Rewrite a ``postgresql://`` URI so SQLAlchemy uses psycopg 3."""
    for prefix in ("postgresql+psycopg2://", "postgresql://", "postgres://"):
        if uri.startswith(prefix):
            return "postgresql+psycopg://" + uri[len(prefix) :]
    return uri
