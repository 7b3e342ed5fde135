"""The weekly summary, monthly performance and RRNP quarterly PDFs at 6,000 and 60,000 claims.

Run: ``uv run python -m benchmarks.bench_weekly_monthly_rrnp [--runs N]``

Two seeded physicians (``meritum seed``'s generator, so every claim has its
history and some their AI Coach suggestions) with two years of claims: about
6,000 and about 60,000. Measured in one run:

- **time**, median of ``runs`` after a warm-up round, interleaved in random
  order: each scheduled kind over its period (a week, a month, a quarter
  of monthly performance, a quarter of RRNP), beside the baseline, the
  accountant PDF summary of the same physician over the same month, which
  reads the same paid claims with one statement;
- **peak memory** of each kind at both sizes, each in a fresh process: the
  growth of the resident set during the generation (Linux's VmHWM, reset
  just before it, after a warm-up report of the same kind).

Writes ``results/weekly_monthly_rrnp.md``.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from functools import partial

from sqlalchemy import Engine, text

from benchmarks.bench_pdf import _peak_kib, _reset_peak, _rss_kib
from benchmarks.machine import RESULTS, describe, stamp
from meritum_api.db.cluster import ThrowawayCluster
from meritum_api.db.engine import make_engine
from meritum_api.domains.analytics.generators import GenerationRequest, generator_for
from meritum_api.domains.analytics.generators.pdf import register_fonts
from meritum_api.seed import seed_demo
from meritum_shared.constants.analytics import ReportFormat, ReportType

TODAY = date(2026, 11, 15)
#: Claims per month of each physician: two years of them make ~6,000 and ~60,000.
VOLUMES = (310, 2_090)
KINDS: dict[str, tuple[ReportType, tuple[date, date]]] = {
    "weekly summary (a week)": (ReportType.WEEKLY_SUMMARY, (date(2026, 11, 2), date(2026, 11, 8))),
    "monthly performance (a month)": (
        ReportType.MONTHLY_PERFORMANCE,
        (date(2026, 10, 1), date(2026, 10, 31)),
    ),
    "monthly performance (a quarter)": (
        ReportType.MONTHLY_PERFORMANCE,
        (date(2026, 7, 1), date(2026, 9, 30)),
    ),
    "RRNP quarterly (a quarter)": (
        ReportType.RRNP_QUARTERLY,
        (date(2026, 7, 1), date(2026, 9, 30)),
    ),
    "baseline: accountant summary (a month)": (
        ReportType.ACCOUNTANT_SUMMARY,
        (date(2026, 10, 1), date(2026, 10, 31)),
    ),
}


def _year_before(period: tuple[date, date]) -> tuple[date, date]:
    """The same kind of period a year earlier (52 weeks for a week): the warm-up."""
    if period[0].weekday() == 0 and (period[1] - period[0]).days == 6:
        return period[0] - timedelta(weeks=52), period[1] - timedelta(weeks=52)
    return period[0].replace(year=period[0].year - 1), period[1].replace(year=period[1].year - 1)


def _generate(
    engine: Engine, provider: uuid.UUID, report_type: ReportType, period: tuple[date, date]
) -> int:
    request = GenerationRequest(
        report_id=uuid.uuid4(),
        provider_id=provider,
        report_type=report_type,
        format=ReportFormat.PDF,
        period_start=period[0],
        period_end=period[1],
        created_at=datetime(2026, 11, 16, 13, 0, tzinfo=UTC),
    )
    with engine.connect() as conn:
        return sum(
            len(chunk) for chunk in generator_for(report_type, ReportFormat.PDF)(conn, request)
        )


def _child(url: str, provider: uuid.UUID, kind: str) -> None:
    """One memory measurement in this fresh process; prints JSON."""
    register_fonts()
    engine = make_engine(url, pool_size=1)
    report_type, period = KINDS[kind]
    _generate(engine, provider, report_type, _year_before(period))  # warm-up
    _reset_peak()
    before = _rss_kib()
    size = _generate(engine, provider, report_type, period)
    peak = _peak_kib()
    engine.dispose()
    print(json.dumps({"before": before, "peak": peak, "bytes": size}))


def _measure_memory(url: str, provider: uuid.UUID, kind: str) -> dict[str, int]:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "benchmarks.bench_weekly_monthly_rrnp",
            "--child",
            url,
            str(provider),
            kind,
        ],
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
        # One database per volume: the seed's demo logins are the same in each.
        urls: dict[int, str] = {}
        engines: dict[int, Engine] = {}
        providers: dict[int, uuid.UUID] = {}
        counts: dict[int, int] = {}
        for number, volume in enumerate(VOLUMES):
            urls[volume] = cluster.clone(f"bench_weekly_monthly_rrnp_{number}")
            engine = engines[volume] = make_engine(urls[volume], pool_size=1)
            seed_demo(engine, physicians=1, years=2, claims_per_month=volume, seed=100 + number,
                      today=TODAY)  # fmt: skip
            with engine.connect() as conn:
                found = conn.execute(
                    text(
                        "SELECT p.provider_id, count(c.claim_id) FROM providers p "
                        "JOIN claims c USING (provider_id) GROUP BY 1"
                    )
                ).one()
                conn.execute(text("ANALYZE"))
                conn.commit()
                version = conn.execute(text("SHOW server_version")).scalar_one()
            providers[volume], counts[volume] = found[0], found[1]
        register_fonts()
        variants: dict[tuple[str, int], Callable[[], int]] = {
            (kind, volume): partial(_generate, engines[volume], providers[volume], *KINDS[kind])
            for kind in KINDS
            for volume in VOLUMES
        }
        samples: dict[tuple[str, int], list[float]] = {key: [] for key in variants}
        sizes: dict[tuple[str, int], int] = {}
        for round_ in range(args.runs + 1):
            order = list(variants.items())
            random.shuffle(order)
            for key, run in order:
                started = time.perf_counter()
                sizes[key] = run()
                if round_:  # the first round warms caches and plans
                    samples[key].append(time.perf_counter() - started)
        for engine in engines.values():
            engine.dispose()
        memory = {
            (kind, volume): _measure_memory(urls[volume], providers[volume], kind)
            for kind in KINDS
            for volume in VOLUMES
        }
    finally:
        cluster.stop()

    baseline = "baseline: accountant summary (a month)"
    lines = [
        "# Scheduled PDFs: weekly summary, monthly performance, RRNP quarterly",
        "",
        f"- run: {stamp()}; machine: {describe()}",
        f"- PostgreSQL {version} (embedded); two seeded physicians with "
        + " and ".join(f"{counts[v]:,} claims" for v in VOLUMES)
        + f" over two years to {TODAY}, each with its claim history",
        f"- time: median of {args.runs} runs per variant, interleaved in random order after a "
        "warm-up round; generators end to end (queries, layout, writing, every chunk consumed)",
        "",
        "| report | claims | median s | min s | bytes | ÷ accountant summary, same claims |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for kind in KINDS:
        for volume in VOLUMES:
            median = statistics.median(samples[kind, volume])
            base = statistics.median(samples[baseline, volume])
            lines.append(
                f"| {kind} | {counts[volume]:,} | {median:.3f} | "
                f"{min(samples[kind, volume]):.3f} | {sizes[kind, volume]:,} | "
                f"{median / base:.2f}× |"
            )
    slowest = max(statistics.median(samples[key]) for key in samples)
    lines += [
        "",
        f"Goal: every kind < 1 s at {counts[VOLUMES[-1]]:,} claims — "
        f"{'met' if slowest < 1 else 'NOT met'} (slowest {slowest:.2f} s).",
        "",
        "## Peak memory (each in a fresh process)",
        "",
        "Growth = peak resident set during the generation − resident set just before it.",
        "",
        "| report | claims | before MiB | peak MiB | growth MiB | file bytes |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for (kind, volume), m in memory.items():
        lines.append(
            f"| {kind} | {counts[volume]:,} | {m['before'] / 1024:.1f} | {m['peak'] / 1024:.1f} | "
            f"{(m['peak'] - m['before']) / 1024:.1f} | {m['bytes']:,} |"
        )
    growth = {key: (m["peak"] - m["before"]) / 1024 for key, m in memory.items()}
    flat = all(growth[kind, VOLUMES[1]] - growth[kind, VOLUMES[0]] < 8 for kind in KINDS)
    lines += [
        "",
        f"Goal: flat from {counts[VOLUMES[0]]:,} to {counts[VOLUMES[1]]:,} claims (growth "
        f"differing by < 8 MiB) — {'met' if flat else 'NOT met'}.",
    ]
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "weekly_monthly_rrnp.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
