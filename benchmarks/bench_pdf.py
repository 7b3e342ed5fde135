"""The accountant PDFs: time against a bare reportlab canvas, and memory at 6,000 and 60,000 claims.

Run: ``uv run python -m benchmarks.bench_pdf [--runs N]``

Two providers have paid claims over the same two years: one 6,000 (a busy
year's volume for the detail), the other 60,000. Measured in one run:

- **time**, median of ``runs`` after a warm-up, interleaved in random order:
  the PDF detail of the 6,000 claims as shipped (queries, two reads of the
  scrollable cursor, layout, page N of M, streaming writer, every chunk
  consumed) against the baseline, a bare reportlab ``Canvas`` drawing the
  same rows (fetched beforehand, not timed) with the same font, nine
  ``drawString`` calls a row, a page every 40 rows, saved in memory; and
  the PDF summary over the two years of each provider;
- **peak memory** of each generator (CSV, summary, detail) at 6,000 and at
  60,000 claims, each in a fresh process: the peak resident set during the
  generation (Linux's VmHWM, reset just before it) minus the resident set
  just before it (after a warm-up report of the same kind), chunks consumed
  and dropped as storage does; beside
  them, reportlab's stock canvas drawing the same rows, which holds the
  whole document until ``save()``.

Writes ``results/pdf.md``.
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
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import psycopg
from reportlab.lib.pagesizes import LETTER, landscape
from reportlab.pdfgen.canvas import Canvas
from sqlalchemy import Engine

from benchmarks.accountant_claims import PAID_ROWS, paid_claims
from benchmarks.machine import RESULTS, describe, stamp
from meritum_api.db.cluster import ThrowawayCluster, libpq_dsn
from meritum_api.db.engine import make_engine
from meritum_api.domains.analytics.generators import GenerationRequest, generator_for
from meritum_api.domains.analytics.generators.pdf import REGULAR, register_fonts
from meritum_shared.constants.analytics import ReportFormat, ReportType

PERIOD = (date(2025, 1, 1), date(2026, 12, 31))
WARM_UP = (date(2025, 1, 1), date(2025, 1, 31))
SIZES = (6_000, 60_000)

SEED = """
INSERT INTO providers (billing_number, first_name, last_name)
VALUES ('{billing}', 'Amélie', 'Nguyễn-Côté');
INSERT INTO patients (provider_id, phn, first_name, last_name, date_of_birth)
SELECT provider_id, lpad(({billing} * 1000 + n)::text, 9, '0'), 'Zoë', 'D''Arcy', DATE '1970-01-01'
FROM providers CROSS JOIN generate_series(1, 200) n WHERE billing_number = '{billing}';
""" + paid_claims(
    claims="{claims}",
    first_service=date(2024, 12, 20),
    service_days=725,
    first_payment=date(2025, 1, 1),
    payment_days=730,
    locations=(
        "Sunridge Family Medicine, Calgary",
        "Clinique médicale Saint-Éloi, Edmonton",
        "Crowfoot Village Clinic — Suite 210, Calgary",
        "High Level Medical Clinic",
    ),
    where="p.billing_number = '{billing}'",
)


KINDS = {
    "csv": (ReportType.ACCOUNTANT_SUMMARY, ReportFormat.CSV),
    "summary": (ReportType.ACCOUNTANT_SUMMARY, ReportFormat.PDF),
    "detail": (ReportType.ACCOUNTANT_DETAIL, ReportFormat.PDF),
}


def _request(provider: uuid.UUID, kind: str, period: tuple[date, date]) -> GenerationRequest:
    report_type, report_format = KINDS[kind]
    return GenerationRequest(
        report_id=uuid.uuid4(),
        provider_id=provider,
        report_type=report_type,
        format=report_format,
        period_start=period[0],
        period_end=period[1],
        created_at=datetime(2027, 1, 2, 16, 0, tzinfo=UTC),
    )


def _consume(chunks: Iterator[bytes]) -> int:
    return sum(len(chunk) for chunk in chunks)


def _generate(engine: Engine, provider: uuid.UUID, kind: str, period: tuple[date, date]) -> int:
    request = _request(provider, kind, period)
    with engine.connect() as conn:
        return _consume(generator_for(request.report_type, request.format)(conn, request))


def _rows(url: str, provider: uuid.UUID) -> list[tuple[Any, ...]]:
    with psycopg.connect(libpq_dsn(url)) as conn:
        return conn.execute(PAID_ROWS, (provider, *PERIOD)).fetchall()


def _bare_canvas(rows: list[tuple[Any, ...]]) -> int:
    """The floor: reportlab's stock canvas drawing the rows' nine cells, nothing else."""
    out = io.BytesIO()
    canvas = Canvas(out, pagesize=landscape(LETTER), invariant=1)
    xs = (36, 92, 138, 264, 330, 340, 400, 452, 716)
    for index, row in enumerate(rows):
        if index % 40 == 0:
            if index:
                canvas.showPage()
            canvas.setFont(REGULAR, 7.5)
        y = 540 - (index % 40) * 12
        served, hsc, modifiers, submitted, assessed, paid, ba, location, kind = row
        canvas.drawString(xs[0], y, served.isoformat())
        canvas.drawString(xs[1], y, hsc)
        canvas.drawString(xs[2], y, modifiers)
        canvas.drawRightString(xs[3], y, f"${submitted:,.2f}")
        canvas.drawRightString(xs[4], y, f"${assessed:,.2f}")
        canvas.drawString(xs[5], y, paid.isoformat())
        canvas.drawString(xs[6], y, ba)
        canvas.drawString(xs[7], y, location)
        canvas.drawString(xs[8], y, kind)
    canvas.save()
    return len(out.getvalue())


def _rss_kib() -> int:
    return int(Path("/proc/self/statm").read_text().split()[1]) * resource.getpagesize() // 1024


def _reset_peak() -> None:
    # Linux: writing 5 to clear_refs resets the process's peak resident set
    # (VmHWM), so the peak read afterwards is the generation's alone.
    Path("/proc/self/clear_refs").write_text("5")


def _peak_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise RuntimeError("no VmHWM in /proc/self/status")


def _child(url: str, provider: uuid.UUID, kind: str) -> None:
    """One measurement in this fresh process; prints JSON."""
    register_fonts()
    engine = make_engine(url, pool_size=1)
    if kind == "stock canvas":
        rows = _rows(url, provider)
        _bare_canvas(rows[:500])  # warm-up
        _reset_peak()
        before = _rss_kib()
        size = _bare_canvas(rows)
    else:
        _generate(engine, provider, kind, WARM_UP)
        _reset_peak()
        before = _rss_kib()
        size = _generate(engine, provider, kind, PERIOD)
    peak = _peak_kib()
    engine.dispose()
    print(json.dumps({"before": before, "peak": peak, "bytes": size}))


def _measure_memory(url: str, provider: uuid.UUID, kind: str) -> dict[str, int]:
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.bench_pdf", "--child", url, str(provider), kind],
        capture_output=True,
        text=True,
        check=True,
        timeout=600,
    )
    result: dict[str, int] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--child", nargs=3, metavar=("URL", "PROVIDER", "KIND"))
    args = parser.parse_args()
    if args.child:
        _child(args.child[0], uuid.UUID(args.child[1]), args.child[2])
        return

    cluster = ThrowawayCluster()
    cluster.start()
    try:
        url = cluster.clone("bench_pdf")
        providers: dict[int, uuid.UUID] = {}
        with psycopg.connect(libpq_dsn(url), autocommit=True) as conn:
            for number, claims in enumerate(SIZES):
                billing = 200000 + number
                for statement in SEED.format(billing=billing, claims=claims).split(";"):
                    conn.execute(statement)
                found = conn.execute(
                    "SELECT provider_id FROM providers WHERE billing_number = %s", (str(billing),)
                ).fetchone()
                assert found is not None
                providers[claims] = found[0]
            conn.execute("VACUUM ANALYZE")
            version = conn.execute("SHOW server_version").fetchone()

        register_fonts()
        engine = make_engine(url, pool_size=1)
        small, large = providers[SIZES[0]], providers[SIZES[1]]
        rows = _rows(url, small)
        variants: dict[str, Callable[[], int]] = {
            f"PDF detail, {len(rows):,} claims": lambda: _generate(engine, small, "detail", PERIOD),
            f"bare reportlab canvas, same {len(rows):,} rows": lambda: _bare_canvas(rows),
            f"PDF summary, two years, {SIZES[0]:,} claims": lambda: _generate(
                engine, small, "summary", PERIOD
            ),
            f"PDF summary, two years, {SIZES[1]:,} claims": lambda: _generate(
                engine, large, "summary", PERIOD
            ),
        }
        samples: dict[str, list[float]] = {name: [] for name in variants}
        sizes: dict[str, int] = {}
        for round_ in range(args.runs + 1):
            order = list(variants.items())
            random.shuffle(order)
            for name, run in order:
                started = time.perf_counter()
                sizes[name] = run()
                if round_:  # the first round warms caches and plans
                    samples[name].append(time.perf_counter() - started)
        engine.dispose()

        memory = {
            (kind, claims): _measure_memory(url, providers[claims], kind)
            for kind in ("csv", "summary", "detail", "stock canvas")
            for claims in SIZES
        }
    finally:
        cluster.stop()

    names = list(variants)
    detail, bare = statistics.median(samples[names[0]]), statistics.median(samples[names[1]])
    summary_small = statistics.median(samples[names[2]])
    summary_large = statistics.median(samples[names[3]])
    lines = [
        "# PDF benchmark: the accountant summary and detail",
        "",
        f"- run: {stamp()}; machine: {describe()}",
        f"- PostgreSQL {version[0] if version else '?'} (embedded); two providers with "
        f"{SIZES[0]:,} and {SIZES[1]:,} paid claims between {PERIOD[0]} and {PERIOD[1]}",
        f"- time: median of {args.runs} runs per variant, interleaved in random order after a "
        "warm-up round; generators end to end (queries, layout, writing, every chunk "
        "consumed); the bare canvas draws rows fetched beforehand",
        "",
        "| variant | median s | min s | bytes | ÷ bare canvas |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for name in names:
        median = statistics.median(samples[name])
        ratio = f"{median / bare:.2f}×" if name in names[:2] else "—"
        lines.append(
            f"| {name} | {median:.3f} | {min(samples[name]):.3f} | {sizes[name]:,} | {ratio} |"
        )
    ok = detail / bare <= 1.5 and detail < 3
    lines += [
        "",
        f"Goals: detail of {len(rows):,} claims ≤ 1.5× the bare canvas and < 3 s — "
        f"{'met' if ok else 'NOT met'} ({detail / bare:.2f}×, {detail:.2f} s); summary over two "
        f"years < 1 s — {'met' if max(summary_small, summary_large) < 1 else 'NOT met'} "
        f"({summary_small * 1000:.0f} ms at {SIZES[0]:,} claims, "
        f"{summary_large * 1000:.0f} ms at {SIZES[1]:,}).",
        "",
        "## Peak memory (each in a fresh process)",
        "",
        "Growth = peak resident set during the generation − resident set just before it.",
        "",
        "| generator | claims | before MiB | peak MiB | growth MiB | file bytes |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for (kind, claims), m in memory.items():
        lines.append(
            f"| {kind} | {claims:,} | {m['before'] / 1024:.1f} | {m['peak'] / 1024:.1f} | "
            f"{(m['peak'] - m['before']) / 1024:.1f} | {m['bytes']:,} |"
        )
    growth = {key: (m["peak"] - m["before"]) / 1024 for key, m in memory.items()}
    flat = all(
        growth[kind, SIZES[1]] - growth[kind, SIZES[0]] < 8 for kind in ("csv", "summary", "detail")
    )
    lines += [
        "",
        f"Goal: flat from {SIZES[0]:,} to {SIZES[1]:,} claims (growth differing by < 8 MiB) — "
        f"{'met' if flat else 'NOT met'}. The stock canvas, which keeps every page until "
        f"save(), grows by {growth['stock canvas', SIZES[1]]:.1f} MiB at {SIZES[1]:,} rows.",
    ]
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "pdf.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
