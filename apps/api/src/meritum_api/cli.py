"""The ``meritum`` command: serve, worker, migrate, seed."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import socket
import sys
from collections.abc import Sequence
from types import FrameType
from typing import TYPE_CHECKING

from meritum_api.crypto.keys import Keyring, KeyringError, load_keyring
from meritum_api.db.embedded import DatabaseStartError
from meritum_api.settings import Settings

if TYPE_CHECKING:
    from meritum_api.deps import Deps, Role

log = logging.getLogger("meritum")


class CliError(Exception):
    """A failure worth one clear line and a non-zero exit."""


def _terminate(signum: int, frame: FrameType | None) -> None:
    # Turn SIGTERM into the same orderly unwinding as Ctrl-C, so every
    # ``finally`` runs and the embedded PostgreSQL is stopped.
    raise KeyboardInterrupt


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP: asyncio turns TCP_NODELAY on only for sockets that say they
    # are TCP; without it a keep-alive response can wait ~40 ms (Nagle).
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise CliError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    sock.listen(2048)
    return sock


def _deps(settings: Settings, url: str, role: Role, keyring: Keyring) -> Deps:
    from meritum_api.deps import SchemaNotCurrent, build_deps

    try:
        return build_deps(settings, url, role=role, keyring=keyring)
    except SchemaNotCurrent as exc:
        raise CliError(str(exc)) from None


def cmd_migrate(settings: Settings, args: argparse.Namespace) -> None:
    from meritum_api.db.migrate import upgrade
    from meritum_api.db.runtime import open_database_url

    with open_database_url(settings) as url:
        upgrade(url)
    print("migrations applied")


def cmd_seed(settings: Settings, args: argparse.Namespace) -> None:
    from meritum_api.db.engine import make_engine
    from meritum_api.db.migrate import upgrade
    from meritum_api.db.runtime import open_database_url
    from meritum_api.seed import seed_demo

    # Synthetic patients and claims have no place next to real ones.
    if settings.environment == "production":
        raise CliError("refusing to seed a production database")
    with open_database_url(settings) as url:
        upgrade(url)
        engine = make_engine(url, pool_size=1)
        try:
            summary = seed_demo(
                engine,
                physicians=args.physicians,
                years=args.years,
                claims_per_month=args.claims_per_month,
                seed=args.seed,
            )
        finally:
            engine.dispose()
    print(summary.line())


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number of at least 1, got {text!r}")
    return value


def cmd_worker(settings: Settings, args: argparse.Namespace) -> None:
    from meritum_api.db.runtime import open_database_url
    from meritum_api.deps import Role
    from meritum_api.tasks import make_worker_queue, run_worker

    keyring = load_keyring(settings)  # before the database: a key problem is one clear line
    with open_database_url(settings) as url:
        deps = _deps(settings, url, Role.WORKER, keyring)
        try:
            app = make_worker_queue(url=url, settings=settings)

            async def work() -> None:
                async with app.open_async():
                    await run_worker(app, deps=deps, name=args.name)

            print(f"Meritum worker running (concurrency {settings.worker_concurrency})", flush=True)
            asyncio.run(work())
        finally:
            deps.close()


def cmd_serve(settings: Settings, args: argparse.Namespace) -> None:
    import uvicorn

    from meritum_api.app import create_app
    from meritum_api.db.migrate import upgrade
    from meritum_api.db.runtime import open_database_url
    from meritum_api.deps import Role
    from meritum_api.tasks import make_worker_queue, run_worker

    keyring = load_keyring(settings)  # before the database: a key problem is one clear line
    sock = _bind(settings.host, settings.port)
    try:
        with open_database_url(settings) as url:
            upgrade(url)
            deps = _deps(settings, url, Role.SERVE, keyring)
            try:
                app = create_app(deps)
                config = uvicorn.Config(
                    app,
                    log_level=settings.log_level,
                    server_header=False,
                    date_header=True,
                    access_log=False,
                )
                server = uvicorn.Server(config)
                where = "DATABASE_URL" if settings.database_url else f"{settings.data_dir / 'pg'}"
                host, port = sock.getsockname()[:2]

                async def serve() -> None:
                    if not settings.serve_with_worker:
                        await server.serve(sockets=[sock])
                        return
                    worker_app = make_worker_queue(url=url, settings=settings)
                    async with worker_app.open_async():
                        worker = asyncio.create_task(
                            run_worker(
                                worker_app,
                                deps=deps,
                                name="serve",
                                install_signal_handlers=False,
                            )
                        )
                        try:
                            await server.serve(sockets=[sock])
                        finally:
                            worker.cancel()
                            with contextlib.suppress(asyncio.CancelledError):
                                await worker

                print(f"Meritum serving on http://{host}:{port} (database: {where})", flush=True)
                print(_login_hint(deps, f"http://{host}:{port}"), flush=True)
                asyncio.run(serve())
            finally:
                deps.close()
    finally:
        sock.close()


def _login_hint(deps: Deps, base: str) -> str:
    from meritum_api.seed import DEMO_PASSWORD, demo_logins

    # Demo accounts exist only where `meritum seed` may run: never look for
    # them (or print their password) anywhere else.
    if deps.settings.environment != "development":
        return f"Log in: POST {base}/api/v1/auth/login"
    logins = demo_logins(deps.engine)
    if not logins:
        return "No accounts yet: `uv run meritum seed` creates demo physicians and their logins."
    emails = ", ".join(email for email, _ in logins)
    return (
        f"Open {base}/ and sign in as one of {emails} "
        f"with the demo password {DEMO_PASSWORD!r} (API docs: {base}/docs in development)"
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="meritum", description="Meritum reports")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="boot the database, migrate, serve the API (and a worker)")
    serve.add_argument("--host", help="listen address (default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="listen port (default 8000)")
    serve.add_argument("--data-dir", help="local state directory (default .data)")
    serve.set_defaults(func=cmd_serve)
    worker = sub.add_parser("worker", help="run background workers (report generation, cleanup)")
    worker.add_argument("--concurrency", type=int, dest="worker_concurrency")
    worker.add_argument("--name", help="worker name shown in the queue's tables")
    worker.add_argument("--data-dir", help="local state directory (default .data)")
    worker.set_defaults(func=cmd_worker)
    migrate = sub.add_parser("migrate", help="apply pending migrations")
    migrate.add_argument("--data-dir", help="local state directory (default .data)")
    migrate.set_defaults(func=cmd_migrate)
    seed = sub.add_parser(
        "seed", help="add synthetic physicians, patients and claims (existing ones are skipped)"
    )
    seed.add_argument("--physicians", type=_positive, default=3, help="default 3")
    seed.add_argument("--years", type=_positive, default=3, help="years ending today; default 3")
    seed.add_argument(
        "--claims-per-month", type=_positive, default=300, help="per physician; default 300"
    )
    seed.add_argument("--seed", type=int, default=2026, help="random seed; default 2026")
    seed.add_argument("--data-dir", help="local state directory (default .data)")
    seed.set_defaults(func=cmd_seed)
    return parser


def _setting_name(field: str) -> str:
    return "DATABASE_URL" if field == "database_url" else f"MERITUM_{field.upper()}"


def _settings(args: argparse.Namespace) -> Settings:
    from pydantic import ValidationError

    overrides = {
        key: value
        for key in ("host", "port", "data_dir", "worker_concurrency")
        if (value := getattr(args, key, None)) is not None
    }
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        # One line per bad setting, naming it; never the value (it may hold a password).
        problems = []
        for error in exc.errors(include_input=False, include_url=False):
            field = str(error["loc"][0]) if error["loc"] else "settings"
            flag = f" (or --{field.replace('_', '-')})" if field in overrides else ""
            message = str(error["msg"]).removeprefix("Value error, ")
            problems.append(f"{_setting_name(field)}{flag} {message}")
        raise CliError("invalid setting: " + "; ".join(problems)) from None


def _database_problem(exc: Exception) -> str:
    """One line about a database that cannot be reached, without credentials."""
    cause = getattr(exc, "orig", None) or exc
    first = str(cause).strip().splitlines()[0] if str(cause).strip() else type(cause).__name__
    return f"cannot use the database (DATABASE_URL): {first}"


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``meritum`` command."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    # Every command's log records pass through the redaction filter: no
    # cookie, token, password or PHN-like number reaches a log line.
    from meritum_api.http.log_redaction import install_log_redaction

    install_log_redaction()
    for noisy in ("pgserver", "alembic.runtime.plugins"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    signal.signal(signal.SIGTERM, _terminate)
    import psycopg
    import sqlalchemy.exc

    try:
        settings = _settings(args)
        args.func(settings, args)
    except (CliError, DatabaseStartError, KeyringError) as exc:
        print(f"meritum: {exc}", file=sys.stderr)
        return 1
    except (sqlalchemy.exc.OperationalError, sqlalchemy.exc.ArgumentError, psycopg.Error) as exc:
        print(f"meritum: {_database_problem(exc)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
