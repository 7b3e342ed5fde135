"""Report generation throughput and pickup latency through the job queue.

Run: ``uv run python -m benchmarks.bench_queue [--reports N] [--pickups N]``

Both variants run the same work per report in separate worker processes: claim
the row (pending → generating, committed), write a tiny encrypted file through
the real storage, and mark it ready with its digest. They differ only in how a
worker learns of work:

- ``queue``: the shipped path. ``service.request_report`` enqueues a
  procrastinate job in the report's transaction; workers run
  ``generation.generate_report`` (with a trivial generator) and are woken by
  LISTEN/NOTIFY.
- ``bare``: the baseline. A loop claims the oldest pending row with one
  ``UPDATE … WHERE report_id = (SELECT … FOR UPDATE SKIP LOCKED)`` and sleeps
  on LISTEN until a NOTIFY sent in the request's transaction.

Throughput: ``--reports`` requests committed at once to idle workers, timed
until the last is ready. Pickup: one request at a time to idle workers, from
the commit returning to the generator starting (wall clock of both processes).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import multiprocessing as mp
import os
import tempfile
import time
from collections.abc import Iterator
from dataclasses import replace
from datetime import date
from multiprocessing.synchronize import Event
from pathlib import Path

import psycopg
from sqlalchemy import Connection, func, select, text

from benchmarks.machine import RESULTS, describe, percentile, stamp
from meritum_api.context import AuthContext
from meritum_api.db.cluster import ThrowawayCluster, fast_root, libpq_dsn
from meritum_api.deps import Deps, Role, build_deps
from meritum_api.domains.analytics import repository, service
from meritum_api.domains.analytics.generation import generate_report
from meritum_api.domains.analytics.generators import GenerationRequest, Generator
from meritum_api.settings import Settings
from meritum_api.tasks import make_worker_queue, run_worker
from meritum_shared.constants.analytics import ReportFormat, ReportStatus, ReportType
from meritum_shared.schemas.db import GeneratedReport, providers

CHANNEL = "bench_reports"
KEY = {"bench": base64.b64encode(b"k" * 32).decode()}
PERIOD = (date(2026, 1, 1), date(2026, 1, 31))


def _settings(url: str, storage: Path) -> Settings:
    return Settings(
        database_url=url,
        storage_dir=storage,
        data_dir=storage.parent,
        master_keys=KEY,
        environment="test",
        worker_concurrency=1,
        generation_backoff_seconds=0,
    )


def _trivial(stamps: Path) -> Generator:
    """A generator that notes when it started and yields one line."""

    def generate(conn: Connection, request: GenerationRequest) -> Iterator[bytes]:
        with stamps.open("a") as out:
            out.write(f"{request.report_id} {time.time():.6f}\n")
        yield b"date,fee\r\n2026-01-01,1.00\r\n"

    return generate


def _queue_worker(url: str, storage: Path, stamps: Path, ready: Event) -> None:
    settings = _settings(url, storage)
    runtime = build_deps(settings, url, role=Role.COMMAND)
    generator = _trivial(stamps)
    deps = replace(runtime, generators=lambda _t, _f: generator)
    app = make_worker_queue(url=url, settings=settings)

    async def main() -> None:
        async with app.open_async():
            ready.set()
            await run_worker(app, deps=deps, poll_seconds=5.0)

    asyncio.run(main())


CLAIM = text(
    """
    UPDATE generated_reports SET status = 'generating'
    WHERE report_id = (
        SELECT report_id FROM generated_reports WHERE status = 'pending'
        ORDER BY created_at LIMIT 1 FOR UPDATE SKIP LOCKED
    )
    RETURNING report_id
    """
)


def _bare_worker(url: str, storage: Path, stamps: Path, ready: Event) -> None:
    runtime = build_deps(_settings(url, storage), url, role=Role.COMMAND)
    generator = _trivial(stamps)
    deps = replace(runtime, generators=lambda _t, _f: generator)
    listener = psycopg.connect(libpq_dsn(url), autocommit=True)
    listener.execute(f"LISTEN {CHANNEL}")
    ready.set()
    while True:
        while True:
            with runtime.session_factory.begin() as session:
                claimed = session.execute(CLAIM).scalar_one_or_none()
            if claimed is None:
                break
            # The same writing transaction as the shipped path (lock, write, ready).
            generate_report(deps=deps, report_id=claimed, is_final_attempt=lambda _e: True)
        for _ in listener.notifies(timeout=5.0, stop_after=1):
            pass


def _request(runtime: Deps, ctx: AuthContext, count: int, *, bare: bool) -> None:
    with runtime.session_factory.begin() as session:
        for _ in range(count):
            if bare:
                repository.create_report(
                    session=session,
                    ctx=ctx,
                    report_type=ReportType.ACCOUNTANT_SUMMARY,
                    format=ReportFormat.CSV,
                    period_start=PERIOD[0],
                    period_end=PERIOD[1],
                )
            else:
                service.request_report(
                    session=session,
                    ctx=ctx,
                    queue=runtime.queue,
                    report_type=ReportType.ACCOUNTANT_SUMMARY,
                    format=ReportFormat.CSV,
                    period_start=PERIOD[0],
                    period_end=PERIOD[1],
                )
        if bare:
            session.execute(text(f"NOTIFY {CHANNEL}"))


def _ready_count(runtime: Deps) -> int:
    with runtime.session_factory() as session:
        count: int = session.execute(
            select(func.count())
            .select_from(GeneratedReport)
            .where(GeneratedReport.status == ReportStatus.READY)
        ).scalar_one()
    return count


def _wait_ready(runtime: Deps, expected: int, timeout: float = 600) -> None:
    deadline = time.monotonic() + timeout
    while _ready_count(runtime) < expected:
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {expected} ready reports")
        time.sleep(0.002)


def _run(
    cluster: ThrowawayCluster, root: Path, *, bare: bool, workers: int, reports: int, pickups: int
) -> tuple[float, list[float]]:
    name = f"bench_queue_{'bare' if bare else 'queue'}_{workers}"
    url = cluster.clone(name)
    storage = root / name / "reports"
    stamps = root / name / "stamps.log"
    storage.mkdir(parents=True)
    runtime = build_deps(_settings(url, storage), url, role=Role.COMMAND)
    with runtime.session_factory.begin() as session:
        provider_id = session.execute(
            providers.insert()
            .values(billing_number="123456", first_name="Bench", last_name="Mark")
            .returning(providers.c.provider_id)
        ).scalar_one()
    ctx = AuthContext(provider_id=provider_id)
    ctx_mp = mp.get_context("spawn")
    target = _bare_worker if bare else _queue_worker
    procs = []
    for _ in range(workers):
        ready = ctx_mp.Event()
        proc = ctx_mp.Process(target=target, args=(url, storage, stamps, ready), daemon=True)
        proc.start()
        if not ready.wait(60):
            raise SystemExit("a worker did not start")
        procs.append(proc)
    try:
        time.sleep(1.0)  # let every worker reach its idle wait
        started = time.perf_counter()
        _request(runtime, ctx, reports, bare=bare)
        _wait_ready(runtime, reports)
        throughput = reports / (time.perf_counter() - started)
        latencies: list[float] = []
        for n in range(pickups):
            before = stamps.stat().st_size
            _request(runtime, ctx, 1, bare=bare)
            committed = time.time()
            _wait_ready(runtime, reports + n + 1)
            with stamps.open() as log:
                log.seek(before)
                started_at = float(log.read().split()[1])
            latencies.append(started_at - committed)
            time.sleep(0.05)  # idle again before the next one
    finally:
        for proc in procs:
            proc.kill()
            proc.join(10)
        runtime.close()
        cluster.drop(name)
    return throughput, latencies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--reports", type=int, default=600)
    parser.add_argument("--pickups", type=int, default=100)
    args = parser.parse_args()
    cluster = ThrowawayCluster()
    cluster.start()
    rows: list[tuple[int, str, float, list[float]]] = []
    try:
        with tempfile.TemporaryDirectory(prefix="meritum-bench-", dir=fast_root()) as tmp:
            for workers in (1, 2, 4):
                for bare in (False, True):  # side by side, one after the other
                    throughput, latencies = _run(
                        cluster,
                        Path(tmp),
                        bare=bare,
                        workers=workers,
                        reports=args.reports,
                        pickups=args.pickups,
                    )
                    label = "bare SKIP LOCKED loop" if bare else "procrastinate queue"
                    rows.append((workers, label, throughput, latencies))
                    print(workers, label, f"{throughput:.0f}/s", flush=True)
    finally:
        cluster.stop()
    bare_rate = {w: r for w, label, r, _ in rows if label.startswith("bare")}
    lines = [
        "# Queue benchmark: report generation through the queue",
        "",
        f"- run: {stamp()}; machine: {describe()}",
        f"- {args.reports} reports per throughput run, {args.pickups} pickups per row; "
        "trivial generator, real claim / encrypted write / ready transactions, "
        "files on tmpfs; one job at a time per worker process",
        "",
        "| workers | path | reports/s | ÷ bare loop | pickup p50 ms | pickup p99 ms |",
        "| ---: | --- | ---: | ---: | ---: | ---: |",
    ]
    for workers, label, rate, latencies in rows:
        lines.append(
            f"| {workers} | {label} | {rate:,.0f} | {rate / bare_rate[workers]:.2f}× | "
            f"{percentile(latencies, 0.5) * 1000:.1f} | {percentile(latencies, 0.99) * 1000:.1f} |"
        )
    lines.append("")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "queue.md").write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    main()
