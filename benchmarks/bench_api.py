"""The reports API against bare baselines, side by side in one run.

Run: ``uv run python -m benchmarks.bench_api [--requests N] [--rounds N] [--mb N]``

Three servers run at once, each a uvicorn process on 127.0.0.1:

- the product: ``create_app`` over a real PostgreSQL 16 with every middleware
  (security headers, body limit, sessions, rate limit), authenticated by a
  bearer session token, its session cache kept current over LISTEN/NOTIFY;
- the same with the session cache off (``MERITUM_SESSION_CACHE_SIZE=0``):
  every request looks its session up in the database;
- a bare FastAPI app with no middleware, no database, no authentication.

Measured, interleaved in rounds so that machine noise hits all alike:

- ``GET /api/v1/reports`` (20 items: session, permission, the page query,
  serialisation) vs a bare route returning the same JSON bytes; one keep-alive
  connection, requests one after another: requests/s, p50, p99, and the
  server process's CPU time per request (steadier than wall time on a shared
  machine);
- a 100 MB report downloaded through the product (session, database, AES-GCM
  decryption, streaming) vs the same plaintext served by ``FileResponse``.
"""

from __future__ import annotations

import argparse
import base64
import os
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path

import httpx
import psutil

from benchmarks.machine import RESULTS, describe, percentile, stamp
from meritum_api.domains.analytics.keys import storage_key
from meritum_api.settings import Settings

KEY = {"bench": base64.b64encode(b"b" * 32).decode()}
PASSWORD = "benchmark password 2026"  # noqa: S105 - a throw-away database
EMAIL = "bench@clinic.example"


def _settings(url: str, storage: Path, cache_size: int = 10_000) -> Settings:
    return Settings(
        database_url=url,
        session_cache_size=cache_size,
        storage_dir=storage,
        data_dir=storage.parent,
        master_keys=KEY,
        environment="test",
        serve_with_worker=False,
        rate_limit_per_minute=10_000_000,
        log_level="warning",
    )


def serve_product(url: str, storage: str, cache_size: int, port: int) -> None:
    """Entry point of the product server process."""
    import uvicorn

    from meritum_api.app import create_app
    from meritum_api.deps import Role, build_deps

    runtime = build_deps(_settings(url, Path(storage), cache_size), url, role=Role.SERVE)
    uvicorn.run(
        create_app(runtime),
        host="127.0.0.1",
        port=port,
        log_level="warning",
        access_log=False,
        server_header=False,
    )


def serve_bare(json_path: str, file_path: str, port: int) -> None:
    """Entry point of the bare server process."""
    import uvicorn
    from fastapi import FastAPI, Response
    from fastapi.responses import FileResponse

    payload = Path(json_path).read_bytes()
    app = FastAPI()

    @app.get("/list")
    def bare_list() -> Response:
        return Response(payload, media_type="application/json")

    @app.get("/file")
    def bare_file() -> FileResponse:
        return FileResponse(file_path, media_type="text/csv")

    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


@contextmanager
def _server(*args: str) -> Iterator[tuple[str, psutil.Process]]:
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "benchmarks.bench_api", *args, str(port)])
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            httpx.get(base + "/", timeout=1)
            break
        except httpx.TransportError:
            if time.monotonic() > deadline or proc.poll() is not None:
                proc.kill()
                raise SystemExit(f"server {args[0]} did not start") from None
            time.sleep(0.1)
    try:
        yield base, psutil.Process(proc.pid)
    finally:
        proc.terminate()
        proc.wait(30)


def _prepare(url: str, storage: Path, mb: int, plain: Path) -> tuple[uuid.UUID, uuid.UUID]:
    """A physician with 25 ready reports, one of them ``mb`` MB; returns (user, big report)."""
    from sqlalchemy.orm import Session

    from meritum_api.auth.service import create_user
    from meritum_api.context import AuthContext
    from meritum_api.deps import Role, build_deps
    from meritum_api.domains.analytics import repository
    from meritum_shared.constants.analytics import ReportFormat, ReportStatus, ReportType
    from meritum_shared.constants.auth import UserRole
    from meritum_shared.schemas.db import providers

    runtime = build_deps(_settings(url, storage), url, role=Role.COMMAND)
    line = b"2026-01-05,03.03A,CMGP,41.73,40.12,2026-02-01,12345,Clinique Saint-Eloi,AHCIP\r\n"
    with plain.open("wb") as out:
        for _ in range(mb * 1024 * 1024 // len(line) + 1):
            out.write(line)
    with Session(runtime.engine) as session, session.begin():
        provider_id = session.execute(
            providers.insert()
            .values(billing_number="4242", first_name="Bench", last_name="Mark")
            .returning(providers.c.provider_id)
        ).scalar_one()
        user_id = create_user(
            session=session,
            email=EMAIL,
            password=PASSWORD,
            provider_id=provider_id,
            role=UserRole.PHYSICIAN,
        )
    ctx = AuthContext(provider_id=provider_id)
    big: uuid.UUID | None = None
    for n in range(25):
        with runtime.session_factory.begin() as session:
            view = repository.create_report(
                session=session,
                ctx=ctx,
                report_type=ReportType.ACCOUNTANT_SUMMARY,
                format=ReportFormat.CSV,
                period_start=date(2026, 1, 1),
                period_end=date(2026, 1, 31),
            )
            repository.move_status(
                session=session,
                report_id=view.report_id,
                expected=ReportStatus.PENDING,
                target=ReportStatus.GENERATING,
            )
            key = storage_key(provider_id=provider_id, report_id=view.report_id)

            def chunks(path: Path = plain, whole: bool = n == 0) -> Iterator[bytes]:
                if not whole:
                    yield line
                    return
                with path.open("rb") as source:
                    while block := source.read(1 << 20):
                        yield block

            stored = runtime.storage.write(key, chunks())
            repository.finish_ready(
                session=session, report=view, size=stored.size, sha256=stored.sha256
            )
            if n == 0:
                big = view.report_id
    runtime.close()
    assert big is not None
    return user_id, big


def _timed_gets(client: httpx.Client, path: str, count: int) -> list[float]:
    samples = []
    for _ in range(count):
        started = time.perf_counter()
        response = client.get(path)
        samples.append(time.perf_counter() - started)
        if response.status_code != 200:
            raise SystemExit(f"{path}: {response.status_code} {response.text[:200]}")
    return samples


def _download_seconds(client: httpx.Client, path: str, size: int) -> float:
    started = time.perf_counter()
    received = 0
    with client.stream("GET", path) as response:
        if response.status_code != 200:
            raise SystemExit(f"{path}: {response.status_code}")
        for block in response.iter_raw(1 << 20):
            received += len(block)
    if received != size:
        raise SystemExit(f"{path}: {received} bytes, expected {size}")
    return time.perf_counter() - started


def _cpu_seconds(process: psutil.Process) -> float:
    times = process.cpu_times()
    return float(times.user + times.system)


class _Listing:
    """One server's list samples: wall time per request and server CPU per round."""

    def __init__(self, name: str, client: httpx.Client, process: psutil.Process, path: str):
        self.name, self.client, self.process, self.path = name, client, process, path
        self.samples: list[float] = []
        self.cpu = 0.0

    def round(self, count: int) -> None:
        before = _cpu_seconds(self.process)
        self.samples += _timed_gets(self.client, self.path, count)
        self.cpu += _cpu_seconds(self.process) - before

    def rate(self) -> float:
        return len(self.samples) / sum(self.samples)

    def row(self, bare: _Listing | None) -> str:
        p50, p99 = percentile(self.samples, 0.5), percentile(self.samples, 0.99)
        cpu = self.cpu / len(self.samples)
        ratio = f"{self.rate() / bare.rate():.0%}" if bare is not None else "—"
        return (
            f"| {self.name} | {self.rate():,.0f} | {p50 * 1000:.2f} | {p99 * 1000:.2f} | "
            f"{cpu * 1000:.2f} | {ratio} |"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=500, help="list requests per round")
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--mb", type=int, default=100)
    args = parser.parse_args()

    from meritum_api.db.cluster import ThrowawayCluster, fast_root

    listing = "/api/v1/reports?limit=20"
    cluster = ThrowawayCluster()
    cluster.start()
    download_samples: dict[str, list[float]] = {"product": [], "bare": []}
    try:
        url = cluster.clone("bench_api")
        # The plaintext copy goes to tmpfs like the encrypted one, so neither
        # side waits on a disk the other does not.
        with tempfile.TemporaryDirectory(prefix="meritum-bench-", dir=fast_root()) as tmp:
            root = Path(tmp)
            plain = root / "plain.csv"
            _, big = _prepare(url, root / "reports", args.mb, plain)
            size = plain.stat().st_size
            storage = str(root / "reports")
            with (
                _server("serve-product", url, storage, "10000") as (cached, product_proc),
                _server("serve-product", url, storage, "0") as (uncached, uncached_proc),
            ):
                login = httpx.post(
                    f"{cached}/api/v1/auth/login", json={"email": EMAIL, "password": PASSWORD}
                )
                token = login.json()["data"]["token"]
                headers = {"Authorization": f"Bearer {token}"}
                with (
                    httpx.Client(base_url=cached, headers=headers, timeout=60) as pc,
                    httpx.Client(base_url=uncached, headers=headers, timeout=60) as uc,
                ):
                    first = pc.get(listing)
                    assert len(first.json()["data"]) == 20
                    (root / "list.json").write_bytes(first.content)
                    with (
                        _server("serve-bare", str(root / "list.json"), str(plain)) as (
                            bare_base,
                            bare_proc,
                        ),
                        httpx.Client(base_url=bare_base, timeout=60) as bc,
                    ):
                        assert bc.get("/list").content == first.content
                        servers = [
                            _Listing("bare FastAPI route, same JSON", bc, bare_proc, "/list"),
                            _Listing("product", pc, product_proc, listing),
                            _Listing("product, session cache off", uc, uncached_proc, listing),
                        ]
                        for server in servers:  # warm up: connections, caches, prepared plans
                            _timed_gets(server.client, server.path, 200)
                        # Listing first, downloads after: a 100 MB transfer between
                        # listing rounds would disturb whichever server came next.
                        for _ in range(args.rounds):
                            for server in servers:
                                server.round(args.requests)
                        load = os.getloadavg()[0]
                        for _ in range(args.rounds):
                            download_samples["product"].append(
                                _download_seconds(pc, f"/api/v1/reports/{big}/download", size)
                            )
                            download_samples["bare"].append(_download_seconds(bc, "/file", size))
    finally:
        cluster.stop()

    bare, product = servers[0], servers[1]
    verdict = "met" if product.rate() / bare.rate() >= 0.5 else "not met"
    mbps = {k: size / percentile(v, 0.5) / 1e6 for k, v in download_samples.items()}
    lines = [
        "# API benchmark: the reports API against bare baselines",
        "",
        f"- run: {stamp()}; machine: {describe()}",
        f"- {args.rounds} interleaved rounds; list: {args.requests} sequential requests per "
        f"round and server on one keep-alive connection; download: {size / 1e6:.0f} MB per "
        "round; client and servers share the machine's cores; load average during the "
        f"listing rounds {load:.1f}",
        "",
        f"`GET {listing}` (20 items):",
        "",
        "| server | requests/s | p50 ms | p99 ms | server CPU ms/request | ÷ bare (requests/s) |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
        bare.row(None),
        product.row(bare),
        servers[2].row(bare),
        "",
        f"Goal: product ≥ 50% of bare — {verdict}.",
        "",
        "| download | product | bare baseline | product ÷ bare | goal |",
        "| --- | ---: | ---: | ---: | --- |",
        f"| {size / 1e6:.0f} MB, MB/s (median) | {mbps['product']:,.0f} | {mbps['bare']:,.0f} | "
        f"{mbps['product'] / mbps['bare']:.0%} | ≥ 60% |",
        "",
        "The bare list route returns the product's own JSON bytes; the bare download is "
        "`FileResponse` over the same plaintext. The product download decrypts "
        "AES-256-GCM segments as it streams.",
        "",
    ]
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "api.md").write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "serve-product":
        serve_product(sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5]))
    elif len(sys.argv) > 1 and sys.argv[1] == "serve-bare":
        serve_bare(sys.argv[2], sys.argv[3], int(sys.argv[4]))
    else:
        os.environ.setdefault("MERITUM_LOG_LEVEL", "warning")
        main()
