"""The data portability export: 50,000 claims end to end, ZIP throughput, flat memory.

Run: ``uv run python -m benchmarks.bench_portability [--claims N] [--runs N]``

One physician has ``claims`` claims over ten years, with four history rows
per claim, a suggestion for one claim in twelve, batches of fifty and a
panel of 5,000 patients; another physician has as much again (noise).

- **Total time**: the worker's whole path (``generate_report``: claim the
  row, unseal the password, stream the generator into encrypted storage
  with fsync, commit ready), with and without a password; and the
  generator alone, every byte consumed.
- **ZIP throughput**: the archive's entries taken from one export, zipped
  from memory by the export's own ``archive`` (stream-zip, deflate 6; with
  and without AES-256) against ``zipfile`` at deflate 6 on the same bytes,
  interleaved in random order; median of ``runs``.
- **Peak memory**: a fresh process generates the export of 6,000 and of
  60,000 claims into ``/dev/null``; its resident memory, sampled at every
  64 KiB chunk, is reported against the same process just before it starts.

Writes ``results/portability.md``.
"""

from __future__ import annotations

import argparse
import io
import json
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
import zipfile
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
from pydantic import SecretStr
from sqlalchemy import text
from stream_zip import ZIP_32

from benchmarks.machine import RESULTS, describe, stamp
from meritum_api.context import AuthContext
from meritum_api.db.cluster import ThrowawayCluster, libpq_dsn
from meritum_api.db.engine import make_engine
from meritum_api.deps import Deps, Role, build_deps
from meritum_api.domains.analytics import export_secrets, repository
from meritum_api.domains.analytics.generation import Outcome, generate_report
from meritum_api.domains.analytics.generators import GenerationRequest, generator_for
from meritum_api.domains.analytics.generators.data_portability import (
    DEFLATE_LEVEL,
    ENTRY_MODE,
    archive,
)
from meritum_api.settings import Settings
from meritum_shared.constants.analytics import ReportFormat, ReportType

PASSWORD = "bench-password-Éloi-2026"  # noqa: S105 - a benchmark's own archive
CHUNK = 64 * 1024

SEED = """
INSERT INTO providers (provider_id, billing_number, first_name, last_name)
VALUES ('{provider}', '{billing}', 'Amélie', 'O''Brien-Côté');
INSERT INTO provider_ba_numbers (provider_id, ba_number, ba_type, active_from)
VALUES ('{provider}', '12345', 'FFS', DATE '2015-01-01'),
       ('{provider}', '67890', 'PCPCM', DATE '2018-01-01');
INSERT INTO practice_locations (provider_id, name, functional_centre, default_ba_number, rrnp_rate)
VALUES ('{provider}', 'Clinique médicale Saint-Éloi, Edmonton', 'FC1001', '12345', NULL),
       ('{provider}', 'High Level Medical Clinic', 'FC1002', '67890', 0.2380);
INSERT INTO provider_settings (provider_id, section, key, value)
VALUES ('{provider}', 'wcb', 'contract_id', '000123'),
       ('{provider}', 'preferences', 'timezone', 'America/Edmonton');
INSERT INTO patients (provider_id, phn, first_name, last_name, date_of_birth)
SELECT '{provider}', lpad(({phn_base} + n)::text, 9, '0'), 'Zoë', 'Nguyễn, Jr.',
    DATE '1950-01-01' + n % 20000
FROM generate_series(1, 5000) n;
INSERT INTO submission_batches (batch_id, provider_id, claim_type, ba_number, submitted_at,
    claim_count, total_submitted, status)
SELECT md5('{provider}' || b)::uuid, '{provider}', 'AHCIP', '12345',
    TIMESTAMPTZ '2016-01-06 18:00-07' + b * interval '3 days', 50, 50 * 41.73, 'PROCESSED'
FROM generate_series(0, {claims} / 50 - 1) b;
WITH panel AS (
    SELECT patient_id, row_number() OVER (ORDER BY phn) - 1 AS i
    FROM patients WHERE provider_id = '{provider}'
)
INSERT INTO claims (claim_id, provider_id, patient_id, claim_type, state, date_of_service,
    hsc_code, modifiers, submitted_fee, assessed_fee, payment_date, ba_number, location,
    rrnp_premium, rejection_code, batch_id, wcb_claim_number, wcb_form_type, created_at,
    updated_at)
SELECT md5('{provider}/claim/' || g)::uuid, '{provider}', pt.patient_id, 'AHCIP', 'PAID',
    DATE '2016-01-04' + (g * 3 / 50), '03.03A', 'CMGP', 41.73, 41.73,
    DATE '2016-01-04' + (g * 3 / 50) + 14, '12345', 'Clinique médicale Saint-Éloi, Edmonton',
    0, NULL, md5('{provider}' || (g / 50))::uuid, NULL, NULL,
    TIMESTAMPTZ '2016-01-04 09:00-07' + (g * 3 / 50) * interval '1 day',
    TIMESTAMPTZ '2016-01-04 09:00-07' + ((g * 3 / 50) + 14) * interval '1 day'
FROM generate_series(0, {claims} - 1) g
JOIN panel pt ON pt.i = g % 5000;
INSERT INTO claim_audit_history (claim_id, provider_id, occurred_at, action, from_state,
    to_state, actor, details)
SELECT c.claim_id, c.provider_id, c.created_at + s.n * interval '2 days', s.action, s.old,
    s.new, s.actor, s.details
FROM claims c CROSS JOIN (VALUES
    (0, 'CREATED', NULL, 'DRAFT', 'physician', NULL),
    (1, 'STATE_CHANGED', 'DRAFT', 'QUEUED', 'physician', NULL),
    (2, 'STATE_CHANGED', 'QUEUED', 'SUBMITTED', 'system:submission', 'Batch sent, "weekly"'),
    (3, 'STATE_CHANGED', 'SUBMITTED', 'PAID', 'system:ahcip', 'Paid 41.73')
) s (n, action, old, new, actor, details)
WHERE c.provider_id = '{provider}';
INSERT INTO ai_coach_suggestions (claim_id, provider_id, created_at, category, suggestion,
    status, dismissed_reason, revenue_impact)
SELECT claim_id, provider_id, created_at + interval '1 minute', 'MISSED_MODIFIER',
    'Add the CMGP modifier: the visit qualifies as comprehensive care', 'accepted', NULL, 8.35
FROM claims
WHERE provider_id = '{provider}' AND ('x' || substr(claim_id::text, 1, 2))::bit(8)::int % 12 = 0
"""


def seed(url: str, claims: int) -> tuple[uuid.UUID, float]:
    """Seed the measured physician and a second one; the first's id and the seconds it took."""
    measured, noise = uuid.uuid4(), uuid.uuid4()
    started = time.perf_counter()
    with psycopg.connect(libpq_dsn(url), autocommit=True) as conn:
        for provider, billing, phn_base in (
            (measured, "100001", 100_000_000),
            (noise, "100002", 200_000_000),
        ):
            script = SEED.format(
                provider=provider, billing=billing, phn_base=phn_base, claims=claims
            )
            for statement in script.split(";\n"):
                conn.execute(statement)
        conn.execute("VACUUM ANALYZE")
    return measured, time.perf_counter() - started


def request_for(provider: uuid.UUID, password: str | None) -> GenerationRequest:
    return GenerationRequest(
        report_id=uuid.uuid4(),
        provider_id=provider,
        report_type=ReportType.DATA_PORTABILITY,
        format=ReportFormat.ZIP,
        period_start=None,
        period_end=None,
        created_at=datetime(2026, 12, 1, tzinfo=UTC),
        password=None if password is None else SecretStr(password),
    )


def run_generator(deps: Deps, provider: uuid.UUID, password: str | None) -> int:
    """The generator alone, every byte consumed; the archive's size."""
    generate = generator_for(ReportType.DATA_PORTABILITY, ReportFormat.ZIP)
    size = 0
    with deps.engine.connect() as conn:
        for chunk in generate(conn, request_for(provider, password)):
            size += len(chunk)
    return size


def run_worker_path(deps: Deps, provider: uuid.UUID, password: str | None) -> int:
    """A report requested and generated as a worker does it; its stored size."""
    ctx = AuthContext(provider_id=provider)
    with deps.session_factory.begin() as session:
        report = repository.create_report(
            session=session,
            ctx=ctx,
            report_type=ReportType.DATA_PORTABILITY,
            format=ReportFormat.ZIP,
            period_start=None,
            period_end=None,
        )
        if password is not None:
            export_secrets.store(
                session=session,
                keyring=deps.keyring,
                report_id=report.report_id,
                password=SecretStr(password),
            )
    outcome = generate_report(
        deps=deps, report_id=report.report_id, is_final_attempt=lambda e: True
    )
    if outcome is not Outcome.READY:
        raise SystemExit(f"generation ended {outcome}")
    with deps.session_factory() as session:
        found = repository.get_report(session=session, ctx=ctx, report_id=report.report_id)
    assert found is not None
    return found.file_size_bytes


def entries_of(deps: Deps, provider: uuid.UUID) -> list[tuple[str, bytes]]:
    """The entries of one unprotected export, in memory, for the throughput comparison."""
    generate = generator_for(ReportType.DATA_PORTABILITY, ReportFormat.ZIP)
    with deps.engine.connect() as conn:
        data = b"".join(generate(conn, request_for(provider, None)))
    with zipfile.ZipFile(io.BytesIO(data)) as opened:
        return [(name, opened.read(name)) for name in opened.namelist()]


def _chunks(data: bytes) -> Iterator[bytes]:
    for start in range(0, len(data), CHUNK):
        yield data[start : start + CHUNK]


class _Sink(io.RawIOBase):
    """A write-only, unseekable stream that counts bytes (what a streaming writer sees)."""

    def __init__(self) -> None:
        self.size = 0

    def writable(self) -> bool:
        return True

    def write(self, data: bytes) -> int:  # type: ignore[override]
        self.size += len(data)
        return len(data)


def zip_ours(entries: list[tuple[str, bytes]], password: str | None) -> int:
    when = datetime(2026, 12, 1, tzinfo=UTC)
    members = ((name, when, ENTRY_MODE, ZIP_32, _chunks(data)) for name, data in entries)
    secret = None if password is None else SecretStr(password)
    return sum(len(chunk) for chunk in archive(members, secret))


def zip_stdlib(entries: list[tuple[str, bytes]]) -> int:
    sink = _Sink()
    with zipfile.ZipFile(sink, "w", zipfile.ZIP_DEFLATED, compresslevel=DEFLATE_LEVEL) as out:
        for name, data in entries:
            with out.open(name, "w") as member:
                for chunk in _chunks(data):
                    member.write(chunk)
    return sink.size


def _rss_kib() -> int:
    """The process's resident memory now (not its lifetime peak, which imports set)."""
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * resource.getpagesize() // 1024


def child_peak(url: str, provider: uuid.UUID) -> dict[str, int]:
    """Generate once in this (fresh) process; resident memory before, and its peak during."""
    engine = make_engine(url, pool_size=1)
    generate = generator_for(ReportType.DATA_PORTABILITY, ReportFormat.ZIP)
    with engine.connect() as conn:
        conn.execute(text("SELECT 1"))
        before = peak = _rss_kib()
        size = 0
        with open("/dev/null", "wb") as out:
            for chunk in generate(conn, request_for(provider, PASSWORD)):
                out.write(chunk)
                size += len(chunk)
                peak = max(peak, _rss_kib())  # sampled at every chunk of 64 KiB
    engine.dispose()
    return {"before_kib": before, "peak_kib": peak, "bytes": size}


def measure_memory(claims: int) -> dict[str, int]:
    """Peak RSS of a fresh process exporting a physician with ``claims`` claims."""
    cluster = ThrowawayCluster()
    cluster.start()
    try:
        url = cluster.clone(f"bench_portability_mem_{claims}")
        provider, _ = seed(url, claims)
        done = subprocess.run(
            [sys.executable, "-m", "benchmarks.bench_portability", "--child", url, str(provider)],
            capture_output=True,
            text=True,
            check=True,
        )
        result: dict[str, int] = json.loads(done.stdout.strip().splitlines()[-1])
        return result
    finally:
        cluster.stop()


def median_of(samples: list[float]) -> float:
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--claims", type=int, default=50_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--memory-claims", type=int, nargs=2, default=[6_000, 60_000])
    parser.add_argument("--child", nargs=2, metavar=("URL", "PROVIDER"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child_peak(args.child[0], uuid.UUID(args.child[1]))))
        return

    cluster = ThrowawayCluster()
    cluster.start()
    workdir = Path(tempfile.mkdtemp(prefix="meritum-bench-portability-"))
    try:
        url = cluster.clone("bench_portability")
        provider, seeded = seed(url, args.claims)
        values: dict[str, Any] = {
            "environment": "test",
            "database_url": url,
            "data_dir": workdir,
            "storage_dir": workdir / "reports",
            "master_keys": {"bench": "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="},
        }
        settings = Settings(**values)
        deps = build_deps(settings, url, role=Role.COMMAND)
        try:
            with deps.engine.connect() as conn:
                version = conn.execute(text("SHOW server_version")).scalar_one()
                counts = conn.execute(
                    text(
                        "SELECT (SELECT count(*) FROM claims WHERE provider_id = :p), "
                        "(SELECT count(*) FROM claim_audit_history WHERE provider_id = :p), "
                        "(SELECT count(*) FROM ai_coach_suggestions WHERE provider_id = :p), "
                        "(SELECT count(*) FROM submission_batches WHERE provider_id = :p)"
                    ),
                    {"p": provider},
                ).one()
            entries = entries_of(deps, provider)
            raw = sum(len(data) for _, data in entries)
            paths: dict[str, Callable[[], int]] = {
                "worker path, no password": lambda: run_worker_path(deps, provider, None),
                "worker path, password": lambda: run_worker_path(deps, provider, PASSWORD),
                "generator alone, no password": lambda: run_generator(deps, provider, None),
                "generator alone, password": lambda: run_generator(deps, provider, PASSWORD),
            }
            zips: dict[str, Callable[[], int]] = {
                "zipfile, deflate 6 (baseline)": lambda: zip_stdlib(entries),
                "export archive, deflate 6": lambda: zip_ours(entries, None),
                "export archive, deflate 6 + AES-256": lambda: zip_ours(entries, PASSWORD),
            }
            timings: dict[str, list[float]] = {name: [] for name in (*paths, *zips)}
            sizes: dict[str, int] = {}
            for round_ in range(args.runs + 1):
                order = list({**paths, **zips}.items())
                random.shuffle(order)
                for name, run in order:
                    started = time.perf_counter()
                    sizes[name] = run()
                    if round_ > 0:  # the first round warms caches
                        timings[name].append(time.perf_counter() - started)
        finally:
            deps.close()
    finally:
        cluster.stop()

    memory = {claims: measure_memory(claims) for claims in args.memory_claims}

    baseline = median_of(timings["zipfile, deflate 6 (baseline)"])
    lines = [
        "# Data portability benchmark",
        "",
        f"- run: {stamp()}; machine: {describe()}",
        f"- PostgreSQL {version} (embedded); the measured physician has {counts[0]:,} claims, "
        f"{counts[1]:,} history rows, {counts[2]:,} AI Coach suggestions, {counts[3]:,} batches "
        "and 5,000 patients; a second physician has as much again; seeded in "
        f"{seeded:.1f} s",
        f"- median of {args.runs} runs per variant, interleaved in random order after one "
        "warm-up round",
        "",
        "## Total time",
        "",
        "| variant | median s | min s | archive MB |",
        "| --- | ---: | ---: | ---: |",
    ]
    for name in paths:
        lines.append(
            f"| {name} | {median_of(timings[name]):.2f} | {min(timings[name]):.2f} | "
            f"{sizes[name] / 1e6:.1f} |"
        )
    worst = max(median_of(timings[name]) for name in paths)
    lines += [
        "",
        f"Goal: under 30 s for {counts[0]:,} claims — {'met' if worst < 30 else 'NOT met'} "
        f"(slowest median {worst:.2f} s). The functional spec allows 5 minutes.",
        "",
        "## ZIP throughput on the same bytes",
        "",
        f"The {len(entries)} entries of one export, {raw / 1e6:.1f} MB uncompressed, zipped "
        "from memory in 64 KiB chunks.",
        "",
        "| variant | median s | MB/s (input) | archive MB | ratio to zipfile |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for name in zips:
        median = median_of(timings[name])
        lines.append(
            f"| {name} | {median:.3f} | {raw / median / 1e6:.1f} | {sizes[name] / 1e6:.2f} | "
            f"{baseline / median:.2f}× |"
        )
    plain = baseline / median_of(timings["export archive, deflate 6"])
    aes = baseline / median_of(timings["export archive, deflate 6 + AES-256"])
    lines += [
        "",
        f"Goal: ≥ 0.9× zipfile's throughput — without password {plain:.2f}× "
        f"({'met' if plain >= 0.9 else 'NOT met'}), with password {aes:.2f}× "
        f"({'met' if aes >= 0.9 else 'NOT met'}).",
        "",
        "## Peak memory (fresh process, password on, output to /dev/null)",
        "",
        "| claims | archive MB | RSS before MiB | peak RSS MiB | growth MiB |",
        "| ---: | ---: | ---: | ---: | ---: |",
    ]
    for claims, result in memory.items():
        lines.append(
            f"| {claims:,} | {result['bytes'] / 1e6:.1f} | {result['before_kib'] / 1024:.1f} | "
            f"{result['peak_kib'] / 1024:.1f} | "
            f"{(result['peak_kib'] - result['before_kib']) / 1024:.1f} |"
        )
    small, large = (memory[c]["peak_kib"] for c in args.memory_claims)
    flat = large <= small * 1.15
    lines += [
        "",
        f"Goal: flat — {'met' if flat else 'NOT met'} (ten times the claims: peak "
        f"{large / small:.2f}× as high).",
        "",
    ]
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "portability.md").write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
