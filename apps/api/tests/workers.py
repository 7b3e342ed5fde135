"""Running real workers for tests: as child processes, or in a thread of the test."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType

import procrastinate

from meritum_api.deps import Deps
from meritum_api.settings import Settings
from meritum_api.tasks import make_worker_queue, run_worker

#: A fixed test master key (never used outside tests).
TEST_KEYS = {"test-key-1": base64.b64encode(bytes(range(32))).decode()}

#: Short heartbeats so that a killed worker is noticed within seconds.
FAST_RECOVERY = {
    "heartbeat_seconds": "0.5",
    "stalled_after_seconds": "2",
    "stalled_check_cron": "* * * * * *",
    "generation_backoff_seconds": "0",
}


def worker_settings(db_url: str, storage_dir: Path, **overrides: str) -> Settings:
    """Settings of a test worker: this database, this storage, the test key."""
    return Settings(**_settings_values(db_url, storage_dir, overrides))  # type: ignore[arg-type]


def _settings_values(
    db_url: str, storage_dir: Path, overrides: dict[str, str]
) -> dict[str, object]:
    values: dict[str, object] = {
        "database_url": db_url,
        "storage_dir": str(storage_dir),
        "data_dir": str(storage_dir.parent),
        "master_keys": TEST_KEYS,
        "environment": "test",
    }
    values.update(overrides)
    return values


class CliProcess:
    """``meritum <args>`` as a child process, its output in a log file."""

    def __init__(self, args: list[str], env: dict[str, str], log_path: Path) -> None:
        self.log_path = log_path
        with log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "meritum_api.cli", *args],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def log(self) -> str:
        """Everything the process printed so far."""
        return self.log_path.read_text(errors="replace")

    def stop(self) -> int:
        """SIGTERM and wait for a graceful exit; returns the exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)
            raise

    def __enter__(self) -> CliProcess:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.stop()


class WorkerProcess(CliProcess):
    """``meritum worker`` as a child process, with the test settings and ``overrides``."""

    def __init__(self, db_url: str, storage_dir: Path, log_path: Path, **overrides: str) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("MERITUM_")}
        for key, value in _settings_values(db_url, storage_dir, overrides).items():
            name = "DATABASE_URL" if key == "database_url" else f"MERITUM_{key.upper()}"
            env[name] = json.dumps(value) if isinstance(value, dict) else str(value)
        super().__init__(["worker"], env, log_path)

    def kill(self) -> None:
        """SIGKILL: no cleanup of any kind."""
        self.proc.kill()
        self.proc.wait(timeout=10)

    def __enter__(self) -> WorkerProcess:
        return self


@contextlib.contextmanager
def in_process_worker(
    url: str, deps: Deps, *, poll_seconds: float = 5.0
) -> Iterator[procrastinate.App]:
    """A worker running in a background thread of the test process."""
    app = make_worker_queue(url=url, settings=deps.settings)
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    task: asyncio.Task[None] | None = None

    async def main() -> None:
        nonlocal task
        async with app.open_async():
            task = asyncio.current_task()
            ready.set()
            with contextlib.suppress(asyncio.CancelledError):
                await run_worker(
                    app, deps=deps, install_signal_handlers=False, poll_seconds=poll_seconds
                )

    thread = threading.Thread(target=lambda: loop.run_until_complete(main()), daemon=True)
    thread.start()
    if not ready.wait(timeout=30):
        raise AssertionError("the in-process worker did not start")
    try:
        yield app
    finally:
        if task is not None:
            loop.call_soon_threadsafe(task.cancel)
        thread.join(timeout=30)
        loop.close()
