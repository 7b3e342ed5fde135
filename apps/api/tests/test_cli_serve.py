"""`meritum serve` over real processes: boot, health, clear failures, clean shutdown."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil
import pytest

from meritum_api.db.cluster import fast_root
from meritum_api.db.migrate import head_revision


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _postgres_on(data_dir: Path) -> list[psutil.Process]:
    found = []
    for proc in psutil.process_iter(attrs=["name", "cmdline"]):
        cmdline = proc.info["cmdline"] or []
        if proc.info["name"] == "postgres" and any(str(data_dir) in part for part in cmdline):
            found.append(proc)
    return found


def _wait_gone(data_dir: Path, timeout: float = 20) -> list[psutil.Process]:
    deadline = time.monotonic() + timeout
    while (left := _postgres_on(data_dir)) and time.monotonic() < deadline:
        time.sleep(0.1)
    return left


@pytest.fixture
def data_dir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="meritum-serve-", dir=fast_root()))
    yield path
    for proc in _postgres_on(path):  # never leave a server behind, even on failure
        proc.kill()


def _serve(data_dir: Path, port: int) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL"}}
    # Output goes to files: a pipe nobody reads could fill and stall the server.
    with (data_dir / "stdout.log").open("ab") as out, (data_dir / "stderr.log").open("ab") as err:
        return subprocess.Popen(
            [
                sys.executable,
                "-m",
                "meritum_api.cli",
                "serve",
                "--port",
                str(port),
                "--data-dir",
                str(data_dir),
            ],
            env=env,
            stdout=out,
            stderr=err,
        )


def _stderr(data_dir: Path) -> str:
    return (data_dir / "stderr.log").read_text()


def _wait_healthy(
    proc: subprocess.Popen[bytes], port: int, data_dir: Path, timeout: float = 60
) -> httpx.Response:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"serve exited {proc.returncode}: {_stderr(data_dir)}")
        try:
            return httpx.get(f"http://127.0.0.1:{port}/health", timeout=2)
        except httpx.TransportError:
            time.sleep(0.1)
    pytest.fail("serve did not become healthy in time")


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_serve_boots_answers_health_and_stops_cleanly(data_dir: Path, signum: int) -> None:
    port = _free_port()
    proc = _serve(data_dir, port)
    response = _wait_healthy(proc, port, data_dir)
    assert response.status_code == 200
    data = response.json()["data"]
    assert data["postgres_version"].startswith("16.")
    assert data["migration_revision"] == head_revision()
    assert "server" not in response.headers
    assert _postgres_on(data_dir)  # the embedded server really runs
    proc.send_signal(signum)
    assert proc.wait(timeout=30) == 0
    assert _wait_gone(data_dir) == []


def test_serve_after_a_killed_holder_still_stops_the_server(data_dir: Path) -> None:
    port = _free_port()
    first = _serve(data_dir, port)
    _wait_healthy(first, port, data_dir)
    first.kill()  # SIGKILL: no cleanup at all, postgres is orphaned
    first.wait(timeout=10)
    assert _postgres_on(data_dir)
    second = _serve(data_dir, port)
    assert _wait_healthy(second, port, data_dir).status_code == 200
    second.send_signal(signal.SIGTERM)
    assert second.wait(timeout=30) == 0
    assert _wait_gone(data_dir) == []


def test_taken_port_gives_one_clear_line(data_dir: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        proc = _serve(data_dir, port)
        assert proc.wait(timeout=60) == 1
    err = _stderr(data_dir)
    assert err.strip().splitlines() == [
        f"meritum: cannot listen on 127.0.0.1:{port}: Address already in use"
    ]
    assert _postgres_on(data_dir) == []


def test_database_that_cannot_start_gives_one_clear_line(data_dir: Path) -> None:
    (data_dir / "pg").write_text("not a directory")
    proc = _serve(data_dir, _free_port())
    assert proc.wait(timeout=60) == 1
    err = _stderr(data_dir)
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("meritum: the embedded PostgreSQL in ")
    assert "Traceback" not in err
