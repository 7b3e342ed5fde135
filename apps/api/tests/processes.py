"""The ``meritum`` command as real OS processes: API servers and workers, as deployed."""

from __future__ import annotations

import json
import os
import socket
import time
from pathlib import Path

import httpx

from workers import TEST_KEYS, CliProcess


def free_port() -> int:
    """A TCP port of 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def process_env(db_url: str, data_dir: Path, **settings: str) -> dict[str, str]:
    """A child's environment: this database, the test key, and ``MERITUM_<NAME>`` settings.

    Nothing ``MERITUM_`` or AWS is inherited from the test's own environment.
    """
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("MERITUM_", "AWS_", "DATABASE_"))
    }
    env.update(
        {
            "DATABASE_URL": db_url,
            "MERITUM_DATA_DIR": str(data_dir),
            "MERITUM_MASTER_KEYS": json.dumps(TEST_KEYS),
            "MERITUM_ENVIRONMENT": "test",
            "MERITUM_LOG_LEVEL": "warning",
            "MERITUM_SERVE_WITH_WORKER": "false",
        }
    )
    env.update({f"MERITUM_{key.upper()}": value for key, value in settings.items()})
    data_dir.mkdir(parents=True, exist_ok=True)
    return env


class ApiProcess(CliProcess):
    """``meritum serve`` on a free port of 127.0.0.1."""

    def __init__(self, env: dict[str, str], log_path: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        super().__init__(["serve", "--port", str(self.port)], env, log_path)

    def wait_healthy(self, timeout: float = 60) -> None:
        """Poll ``/health`` until it answers 200."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"serve exited {self.proc.returncode}: {self.log()}")
            try:
                if httpx.get(f"{self.url}/health", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        raise AssertionError(f"serve did not become healthy: {self.log()}")

    def __enter__(self) -> ApiProcess:
        return self


class WorkerCli(CliProcess):
    """``meritum worker --name NAME``."""

    def __init__(self, name: str, env: dict[str, str], log_path: Path) -> None:
        self.name = name
        super().__init__(["worker", "--name", name], env, log_path)

    def __enter__(self) -> WorkerCli:
        return self
