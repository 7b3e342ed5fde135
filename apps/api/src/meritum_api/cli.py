"""The ``meritum`` command: serve, migrate."""

from __future__ import annotations

import argparse
import logging
import signal
import socket
import sys
from collections.abc import Sequence
from types import FrameType

from meritum_api.db.embedded import DatabaseStartError
from meritum_api.settings import Settings

log = logging.getLogger("meritum")


class CliError(Exception):
    """A failure worth one clear line and a non-zero exit."""


def _terminate(signum: int, frame: FrameType | None) -> None:
    # Turn SIGTERM into the same orderly unwinding as Ctrl-C, so every
    # ``finally`` runs and the embedded PostgreSQL is stopped.
    raise KeyboardInterrupt


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise CliError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    sock.listen(2048)
    return sock


def cmd_migrate(settings: Settings, args: argparse.Namespace) -> None:
    from meritum_api.db.migrate import upgrade
    from meritum_api.db.runtime import open_database_url

    with open_database_url(settings) as url:
        upgrade(url)
    print("migrations applied")


def cmd_serve(settings: Settings, args: argparse.Namespace) -> None:
    import uvicorn

    from meritum_api.app import AppDeps, create_app
    from meritum_api.db.engine import make_engine, make_session_factory
    from meritum_api.db.migrate import upgrade
    from meritum_api.db.runtime import open_database_url

    sock = _bind(settings.host, settings.port)
    try:
        with open_database_url(settings) as url:
            upgrade(url)
            engine = make_engine(url)
            try:
                app = create_app(
                    AppDeps(
                        settings=settings,
                        engine=engine,
                        session_factory=make_session_factory(engine),
                    )
                )
                where = "DATABASE_URL" if settings.database_url else f"{settings.data_dir / 'pg'}"
                host, port = sock.getsockname()[:2]
                print(f"Meritum serving on http://{host}:{port} (database: {where})", flush=True)
                config = uvicorn.Config(
                    app,
                    log_level=settings.log_level,
                    server_header=False,
                    date_header=True,
                    access_log=False,
                )
                uvicorn.Server(config).run(sockets=[sock])
            finally:
                engine.dispose()
    finally:
        sock.close()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="meritum", description="Meritum reports")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="boot the database, migrate, serve the API")
    serve.add_argument("--host", help="listen address (default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="listen port (default 8000)")
    serve.add_argument("--data-dir", help="local state directory (default .data)")
    serve.set_defaults(func=cmd_serve)
    migrate = sub.add_parser("migrate", help="apply pending migrations")
    migrate.add_argument("--data-dir", help="local state directory (default .data)")
    migrate.set_defaults(func=cmd_migrate)
    return parser


def _settings(args: argparse.Namespace) -> Settings:
    overrides = {
        key: value
        for key in ("host", "port", "data_dir")
        if (value := getattr(args, key, None)) is not None
    }
    return Settings(**overrides)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``meritum`` command."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    for noisy in ("pgserver", "alembic.runtime.plugins"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    signal.signal(signal.SIGTERM, _terminate)
    try:
        settings = _settings(args)
        args.func(settings, args)
    except (CliError, DatabaseStartError) as exc:
        print(f"meritum: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
