"""The rejection digest and WCB timing PDFs: time against a bare reportlab canvas, and memory.

Run: ``uv run python -m benchmarks.bench_scheduled_pdf [--runs N]``

Two providers each have 6,000 or 60,000 claims rejected in one month
(October 2026) and as many WCB claims not yet sent, with tier deadlines in
the week from Wednesday 18 November 2026. Measured in one run:

- **time**, median of ``runs`` after a warm-up, interleaved in random order:
  the digest of 6,000 rejections as shipped (query, three reads of the
  scrollable cursor, layout, page N of M, streaming writer, every chunk
  consumed) against the baseline, a bare reportlab ``Canvas`` drawing the
  same rows' cells (fetched beforehand, not timed) with the same font, a page
  every 15 rows, saved in memory; and the WCB timing report of 6,000 claims;
- **peak memory** of each generator at 6,000 and at 60,000 in a fresh
  process (Linux's VmHWM reset just before the generation, minus the
  resident set then), beside the stock canvas drawing the same rows.

Writes ``results/scheduled_pdf.md``.
"""

from __future__ import annotations

import argparse
import io
import json
import random
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Any

import psycopg
from reportlab.lib.pagesizes import LETTER
from reportlab.pdfgen.canvas import Canvas
from sqlalchemy import Engine

from benchmarks.bench_pdf import _consume, _peak_kib, _reset_peak, _rss_kib
from benchmarks.machine import RESULTS, describe, stamp
from meritum_api.db.cluster import ThrowawayCluster, libpq_dsn
from meritum_api.db.engine import make_engine
from meritum_api.domains.analytics.generators import GenerationRequest, generator_for
from meritum_api.domains.analytics.generators.pdf import REGULAR, register_fonts
from meritum_api.seed import REJECTION_CODES
from meritum_shared.constants.analytics import ReportFormat, ReportType

SIZES = (6_000, 60_000)
DIGEST = (date(2026, 10, 1), date(2026, 10, 31))
WINDOW = (date(2026, 11, 18), date(2026, 11, 25))
CREATED = datetime(2026, 11, 18, 13, 0, tzinfo=UTC)  # 06:00 MST, when the runs start
KINDS = {"digest": ReportType.REJECTION_DIGEST, "wcb": ReportType.WCB_TIMING}

SEED = """
INSERT INTO providers (billing_number, first_name, last_name)
VALUES ('{billing}', 'Amélie', 'Nguyễn-Côté');
INSERT INTO patients (provider_id, phn, first_name, last_name, date_of_birth)
SELECT provider_id, lpad(({billing} * 1000 + n)::text, 9, '0'), 'Zoë', 'D''Arcy', DATE '1970-01-01'
FROM providers CROSS JOIN generate_series(1, 200) n WHERE billing_number = '{billing}';
INSERT INTO claims (provider_id, patient_id, claim_type, state, date_of_service, hsc_code,
    modifiers, submitted_fee, assessed_fee, ba_number, location, rejection_code,
    wcb_claim_number, wcb_form_type)
SELECT p.provider_id, pt.patient_id, 'AHCIP', 'REJECTED', DATE '2026-09-20' + g % 40,
    (ARRAY['03.03A', '03.04A', '03.07B', '03.08A', '08.19A', '13.99H'])[1 + g % 6],
    (ARRAY['', 'CMGP', 'CMGP,AFHR', 'EV', 'TM', 'BMI'])[1 + g % 6],
    ((g * 7919) % 30011)::numeric / 100 + 20, 0, '12345',
    (ARRAY['Sunridge Family Medicine, Calgary', 'Clinique médicale Saint-Éloi, Edmonton',
           'Crowfoot Village Clinic — Suite 210, Calgary', 'High Level Medical Clinic'])[1 + g % 4],
    (ARRAY[{codes}])[1 + g % {code_count}], NULL, NULL
FROM providers p
JOIN LATERAL (SELECT patient_id FROM patients WHERE provider_id = p.provider_id LIMIT 1) pt
    ON true
CROSS JOIN generate_series(1, {claims}) g
WHERE p.billing_number = '{billing}';
INSERT INTO claim_audit_history (claim_id, provider_id, occurred_at, action, from_state,
    to_state, actor, details)
SELECT claim_id, provider_id,
    TIMESTAMPTZ '2026-10-01 07:00:00-06' + (row_number() OVER (ORDER BY claim_id))
        * interval '1 second' * (2592000 / {claims}),
    'STATE_CHANGED', 'SUBMITTED', 'REJECTED', 'system:ahcip', NULL
FROM claims WHERE state = 'REJECTED'
    AND provider_id = (SELECT provider_id FROM providers WHERE billing_number = '{billing}');
INSERT INTO claims (provider_id, patient_id, claim_type, state, date_of_service, hsc_code,
    submitted_fee, ba_number, location, wcb_claim_number, wcb_form_type)
SELECT p.provider_id, pt.patient_id, 'WCB', (ARRAY['DRAFT', 'QUEUED'])[1 + g % 2],
    DATE '2026-11-10' + g % 15, '03.04A', 94.15, '12345', 'Clinique médicale Saint-Éloi, Edmonton',
    (1000000 + g)::text, (ARRAY['C050E', 'C151', 'RF01E', 'RF03E', 'C568A'])[1 + g % 5]
FROM providers p
JOIN LATERAL (SELECT patient_id FROM patients WHERE provider_id = p.provider_id LIMIT 1) pt
    ON true
CROSS JOIN generate_series(1, {claims}) g
WHERE p.billing_number = '{billing}'
"""

ROWS = """
SELECT h.occurred_at, c.date_of_service, c.claim_type, c.hsc_code, c.modifiers, c.submitted_fee,
    c.rejection_code, r.description, r.corrective_guidance, c.claim_id, c.location
FROM claim_audit_history h JOIN claims c USING (claim_id)
LEFT JOIN rejection_codes r ON r.code = c.rejection_code
WHERE h.provider_id = %s AND h.to_state = 'REJECTED'
ORDER BY h.occurred_at, h.event_id
"""


def _request(provider: uuid.UUID, kind: str) -> GenerationRequest:
    period = DIGEST if kind == "digest" else WINDOW
    return GenerationRequest(
        report_id=uuid.uuid4(),
        provider_id=provider,
        report_type=KINDS[kind],
        format=ReportFormat.PDF,
        period_start=period[0],
        period_end=period[1],
        created_at=CREATED,
    )


def _generate(engine: Engine, provider: uuid.UUID, kind: str) -> int:
    request = _request(provider, kind)
    with engine.connect() as conn:
        return _consume(generator_for(request.report_type, request.format)(conn, request))


def _rows(url: str, provider: uuid.UUID) -> list[tuple[Any, ...]]:
    with psycopg.connect(libpq_dsn(url)) as conn:
        return conn.execute(ROWS, (provider,)).fetchall()


def _bare_canvas(rows: list[tuple[Any, ...]]) -> int:
    """The floor: reportlab's stock canvas drawing each rejection's cells and notes, no layout."""
    out = io.BytesIO()
    canvas = Canvas(out, pagesize=LETTER, invariant=1)
    for index, row in enumerate(rows):
        if index % 15 == 0:
            if index:
                canvas.showPage()
            canvas.setFont(REGULAR, 7.5)
        y = 720 - (index % 15) * 44
        at, served, kind, hsc, modifiers, fee, code, description, guidance, claim, place = row
        for x, value in zip(
            (48, 132, 194, 238, 288, 384, 454),
            (f"{at:%Y-%m-%d %H:%M}", served.isoformat(), kind, hsc, modifiers, f"${fee:,.2f}",
             code),
            strict=True,
        ):  # fmt: skip
            canvas.drawString(x, y, value)
        canvas.drawString(132, y - 10, description or "")
        canvas.drawString(132, y - 20, f"To correct: {guidance or ''}")
        canvas.drawString(132, y - 30, f"Claim {claim} · {place}")
    canvas.save()
    return len(out.getvalue())


def _child(url: str, provider: uuid.UUID, kind: str) -> None:
    """One measurement in this fresh process; prints JSON."""
    register_fonts()
    engine = make_engine(url, pool_size=1)
    if kind == "stock canvas":
        rows = _rows(url, provider)
        _bare_canvas(rows[:300])  # warm-up
        _reset_peak()
        before = _rss_kib()
        size = _bare_canvas(rows)
    else:
        _generate(engine, provider, kind)  # warm-up
        _reset_peak()
        before = _rss_kib()
        size = _generate(engine, provider, kind)
    peak = _peak_kib()
    engine.dispose()
    print(json.dumps({"before": before, "peak": peak, "bytes": size}))


def _measure_memory(url: str, provider: uuid.UUID, kind: str) -> dict[str, int]:
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.bench_scheduled_pdf", "--child", url, str(provider),
         kind],
        capture_output=True,
        text=True,
        check=True,
        timeout=900,
    )  # fmt: skip
    result: dict[str, int] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def _seed(url: str) -> tuple[dict[int, uuid.UUID], str]:
    providers: dict[int, uuid.UUID] = {}
    codes = ", ".join(f"'{c.code}'" for c in REJECTION_CODES)
    with psycopg.connect(libpq_dsn(url), autocommit=True) as conn:
        with conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO rejection_codes (code, claim_type, description, corrective_guidance) "
                "VALUES (%s, %s, %s, %s)",
                [(c.code, c.claim_type.value, c.description, c.corrective_guidance)
                 for c in REJECTION_CODES],
            )  # fmt: skip
        for number, claims in enumerate(SIZES):
            billing = 300000 + number
            sql = SEED.format(
                billing=billing, claims=claims, codes=codes, code_count=len(REJECTION_CODES)
            )
            for statement in sql.split(";"):
                conn.execute(statement)
            found = conn.execute(
                "SELECT provider_id FROM providers WHERE billing_number = %s", (str(billing),)
            ).fetchone()
            assert found is not None
            providers[claims] = found[0]
        conn.execute("VACUUM ANALYZE")
        version = conn.execute("SHOW server_version").fetchone()
    return providers, version[0] if version else "?"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--child", nargs=3, metavar=("URL", "PROVIDER", "KIND"))
    args = parser.parse_args()
    if args.child:
        _child(args.child[0], uuid.UUID(args.child[1]), args.child[2])
        return

    cluster = ThrowawayCluster()
    cluster.start()
    try:
        url = cluster.clone("bench_scheduled_pdf")
        providers, version = _seed(url)
        register_fonts()
        engine = make_engine(url, pool_size=1)
        small = providers[SIZES[0]]
        rows = _rows(url, small)
        variants: dict[str, Callable[[], int]] = {
            f"rejection digest, {len(rows):,} rejections": lambda: _generate(
                engine, small, "digest"
            ),
            f"bare reportlab canvas, same {len(rows):,} rows": lambda: _bare_canvas(rows),
            f"WCB timing, {SIZES[0]:,} unsent WCB claims": lambda: _generate(engine, small, "wcb"),
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
            for kind in ("digest", "wcb", "stock canvas")
            for claims in SIZES
        }
    finally:
        cluster.stop()

    names = list(variants)
    digest, bare = statistics.median(samples[names[0]]), statistics.median(samples[names[1]])
    lines = [
        "# PDF benchmark: the rejection digest and WCB timing",
        "",
        f"- run: {stamp()}; machine: {describe()}",
        f"- PostgreSQL {version} (embedded); two providers, each with {SIZES[0]:,} or "
        f"{SIZES[1]:,} claims rejected in {DIGEST[0]:%B %Y} and as many unsent WCB claims "
        f"served 2026-11-10 to 2026-11-24 (window {WINDOW[0]} to {WINDOW[1]})",
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
    lines += [
        "",
        f"The digest of {len(rows):,} rejections takes {digest / bare:.2f}× the bare canvas "
        f"({digest:.2f} s); a real day holds a handful.",
        "",
        "## Peak memory (each in a fresh process)",
        "",
        "Growth = peak resident set during the generation − resident set just before it.",
        "",
        "| generator | rows | before MiB | peak MiB | growth MiB | file bytes |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for (kind, claims), m in memory.items():
        lines.append(
            f"| {kind} | {claims:,} | {m['before'] / 1024:.1f} | {m['peak'] / 1024:.1f} | "
            f"{(m['peak'] - m['before']) / 1024:.1f} | {m['bytes']:,} |"
        )
    growth = {key: (m["peak"] - m["before"]) / 1024 for key, m in memory.items()}
    flat = all(growth[kind, SIZES[1]] - growth[kind, SIZES[0]] < 8 for kind in ("digest", "wcb"))
    lines += [
        "",
        f"Goal: flat from {SIZES[0]:,} to {SIZES[1]:,} rows (growth differing by < 8 MiB) — "
        f"{'met' if flat else 'NOT met'}. The stock canvas, which keeps every page until "
        f"save(), grows by {growth['stock canvas', SIZES[1]]:.1f} MiB at {SIZES[1]:,} rows.",
    ]
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "scheduled_pdf.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
