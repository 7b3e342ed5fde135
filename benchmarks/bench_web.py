"""The web app against the API it is built beside, side by side in one run.

Run: ``uv run python -m benchmarks.bench_web [--requests N] [--rounds N] [--loads N] [--mb N]
[--link-mbit N ...]``

One product server (``create_app`` under uvicorn, a real PostgreSQL 16, every
middleware) serves a physician with 100 ready reports (ten of them
downloaded, so the list shows receipts), two more still pending (so it shows
estimates) and 30 unread notifications (the header's count). Measured,
interleaved in rounds so that machine noise hits both sides alike:

- **The reports page against the JSON list of the same page** (the 20 newest
  of the 102, ``GET /`` vs ``GET /api/v1/reports?limit=20``), both with the
  same session cookie over one keep-alive HTTP connection: time to first
  byte (the response's head) and to the last byte of the body. Then in
  Chromium, each navigated to in turn: the navigation's time to first byte
  and its full load (``loadEventEnd``: for the page, with its stylesheet, its
  ES modules and the favicon). Goal: the page within 2× of the JSON.
- **Downloading a large report** in Chromium from its page: the Download
  button with JavaScript (``download.js``: a fetch that counts progress and can
  resume, a SHA-256 over what it received, then the file offered from memory)
  against the same button without JavaScript, a plain link the browser
  downloads itself. Timed from the click until the file is on disk, twice:
  over loopback, and over paced links (``--link-mbit``, 100 and 1,000 Mbit/s
  by default: ``benchmarks/link.py``), the networks a clinic has.
  Goal: the downloader's throughput ≥ 0.8× the plain link's.
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
from datetime import date, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import psutil

from benchmarks.link import Link
from benchmarks.machine import RESULTS, describe, percentile, stamp
from meritum_api.settings import Settings

if TYPE_CHECKING:
    from playwright.sync_api import Page

KEY = {"bench": base64.b64encode(b"w" * 32).decode()}
PASSWORD = "benchmark password 2026"  # noqa: S105 - a throw-away database
EMAIL = "bench-web@clinic.example"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
REPORTS = 100
PAGE = "/"
LISTING = "/api/v1/reports?limit=20"
#: Requests of one kind in a row before the other kind's turn.
BLOCK = 10
#: The navigation's time to first byte and to the end of its load event, in ms.
TIMING = (
    "(() => { const t = performance.getEntriesByType('navigation')[0];"
    " return [t.responseStart - t.startTime, t.loadEventEnd - t.startTime]; })()"
)


def _settings(url: str, storage: Path) -> Settings:
    return Settings(
        database_url=url,
        storage_dir=storage,
        data_dir=storage.parent,
        master_keys=KEY,
        environment="test",
        serve_with_worker=False,
        rate_limit_per_minute=10_000_000,
        log_level="warning",
    )


def serve(url: str, storage: str, port: int) -> None:
    """Entry point of the server process."""
    import uvicorn

    from meritum_api.app import create_app
    from meritum_api.deps import Role, build_deps

    runtime = build_deps(_settings(url, Path(storage)), url, role=Role.SERVE)
    uvicorn.run(
        create_app(runtime),
        host="127.0.0.1",
        port=port,
        log_level="warning",
        access_log=False,
        server_header=False,
    )


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


@contextmanager
def _server(url: str, storage: Path) -> Iterator[tuple[str, psutil.Process]]:
    port = _free_port()
    args = [sys.executable, "-m", "benchmarks.bench_web", "serve", url, str(storage), str(port)]
    proc = subprocess.Popen(args)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            httpx.get(base + "/health", timeout=1)
            break
        except httpx.TransportError:
            if time.monotonic() > deadline or proc.poll() is not None:
                proc.kill()
                raise SystemExit("the server did not start") from None
            time.sleep(0.1)
    try:
        yield base, psutil.Process(proc.pid)
    finally:
        proc.terminate()
        proc.wait(30)


def _prepare(url: str, storage: Path, mb: int) -> uuid.UUID:
    """The physician, their reports and notifications; returns the large report's id."""
    from sqlalchemy import text
    from sqlalchemy.orm import Session

    from meritum_api.auth.service import create_user
    from meritum_api.context import AuthContext
    from meritum_api.deps import Role, build_deps
    from meritum_api.domains.analytics import repository, service
    from meritum_api.domains.analytics.keys import storage_key
    from meritum_shared.constants.analytics import ReportFormat, ReportStatus, ReportType
    from meritum_shared.constants.auth import PHYSICIAN_PERMISSIONS, UserRole
    from meritum_shared.schemas.db import providers

    runtime = build_deps(_settings(url, storage), url, role=Role.COMMAND)
    with Session(runtime.engine) as session, session.begin():
        provider_id = session.execute(
            providers.insert()
            .values(billing_number="4343", first_name="Web", last_name="Bench")
            .returning(providers.c.provider_id)
        ).scalar_one()
        user_id = create_user(
            session=session,
            email=EMAIL,
            password=PASSWORD,
            provider_id=provider_id,
            role=UserRole.PHYSICIAN,
        )
    ctx = AuthContext(provider_id=provider_id, user_id=user_id, permissions=PHYSICIAN_PERMISSIONS)
    line = b"2026-01-05,03.03A,CMGP,41.73,40.12,2026-02-01,12345,Clinique Saint-Eloi,AHCIP\r\n"
    big: uuid.UUID | None = None
    for n in range(REPORTS):
        first = date(2024, 1, 1) + timedelta(days=7 * n)
        with runtime.session_factory.begin() as session:
            view = repository.create_report(
                session=session,
                ctx=ctx,
                report_type=ReportType.ACCOUNTANT_SUMMARY,
                format=ReportFormat.CSV,
                period_start=first,
                period_end=first + timedelta(days=6),
            )
            repository.move_status(
                session=session,
                report_id=view.report_id,
                expected=ReportStatus.PENDING,
                target=ReportStatus.GENERATING,
            )
            whole = n == REPORTS - 1  # the newest ready one: on the page's first screen

            def chunks(whole: bool = whole) -> Iterator[bytes]:
                block = line * (65_536 // len(line))
                if not whole:
                    yield line
                    return
                for _ in range(mb * 1024 * 1024 // len(block) + 1):
                    yield block

            stored = runtime.storage.write(
                storage_key(provider_id=provider_id, report_id=view.report_id), chunks()
            )
            ready = repository.finish_ready(
                session=session, report=view, size=stored.size, sha256=stored.sha256
            )
            if n % 10 == 5:
                service.record_download(session=session, ctx=ctx, report=ready)
            if whole:
                big = view.report_id
    with runtime.session_factory.begin() as session:
        for month in (1, 2):
            repository.create_report(
                session=session,
                ctx=ctx,
                report_type=ReportType.ACCOUNTANT_SUMMARY,
                format=ReportFormat.CSV,
                period_start=date(2026, month, 1),
                period_end=date(2026, month, 28),
            )
        session.execute(
            text(
                "INSERT INTO notifications (user_id, provider_id, event, report_id) "
                "SELECT :user_id, :provider_id, 'REPORT_READY', report_id "
                "FROM generated_reports WHERE provider_id = :provider_id AND status = 'ready' "
                "ORDER BY created_at DESC LIMIT 30"
            ),
            {"user_id": user_id, "provider_id": provider_id},
        )
        # As if each had taken 8 s from request to ready: the pending ones get an estimate.
        session.execute(
            text(
                "UPDATE generated_report_contents c SET recorded_at = r.created_at"
                " + interval '8 seconds' FROM generated_reports r"
                " WHERE r.report_id = c.report_id AND r.provider_id = :provider_id"
            ),
            {"provider_id": provider_id},
        )
    runtime.close()
    assert big is not None
    return big


def _sign_in(base: str) -> httpx.Cookies:
    answer = httpx.post(
        f"{base}/sign-in",
        data={"email": EMAIL, "password": PASSWORD},
        headers={"Origin": base},
        follow_redirects=False,
    )
    if answer.status_code != 303:
        raise SystemExit(f"sign-in: {answer.status_code}")
    return answer.cookies


def _timed(client: httpx.Client, path: str) -> tuple[float, float, bytes]:
    """Seconds to the response's head, to its last byte, and the body."""
    started = time.perf_counter()
    with client.stream("GET", path) as response:
        head = time.perf_counter()
        body = response.read()
        done = time.perf_counter()
    if response.status_code != 200:
        raise SystemExit(f"{path}: {response.status_code}")
    return head - started, done - started, body


def _cpu_seconds(process: psutil.Process) -> float:
    times = process.cpu_times()
    return float(times.user + times.system)


def _downloads(
    tabs: dict[str, Page], detail: str, into: dict[str, list[float]], *, count: int
) -> int:
    """Download the report from its page in each tab in turn; returns the file's size."""
    for each in tabs.values():
        each.goto(detail)
    size = 0
    for _ in range(count):
        for kind, each in tabs.items():
            button = each.get_by_role("link", name="Download CSV", exact=False)
            started = time.perf_counter()
            with each.expect_download(timeout=300_000) as info:
                button.click()
            saved = Path(info.value.path())
            into[kind].append(time.perf_counter() - started)
            size = saved.stat().st_size
            if kind == "downloader":
                outcome = each.locator("[data-download-progress]")
                if outcome.get_attribute("data-outcome") != "verified":
                    raise SystemExit("the downloader did not verify the file")
            info.value.delete()
    return size


def _ratio(samples: dict[str, list[float]]) -> float:
    """The downloader's throughput over the plain link's (medians)."""
    return percentile(samples["plain link"], 0.5) / percentile(samples["downloader"], 0.5)


def _download_rows(network: str, samples: dict[str, list[float]], size: int) -> list[str]:
    ratio = f"{_ratio(samples):.2f}×"
    return [
        f"| {network}: {kind} | {size / percentile(seconds, 0.5) / 1e6:,.0f} | "
        f"{percentile(seconds, 0.5):.2f} | {ratio if kind == 'downloader' else '—'} |"
        for kind, seconds in samples.items()
    ]


def _ms(samples: list[float]) -> str:
    return f"{percentile(samples, 0.5) * 1000:.2f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=200, help="HTTP requests per round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--loads", type=int, default=30, help="Chromium loads per round")
    parser.add_argument("--downloads", type=int, default=5, help="downloads of each kind")
    parser.add_argument("--mb", type=int, default=48, help="MiB of the large report")
    parser.add_argument(
        "--link-mbit",
        type=float,
        nargs="*",
        default=[100.0, 1000.0],
        help="speeds of the paced links the downloads are measured over too (none: skip)",
    )
    parser.add_argument(
        "--linked-downloads", type=int, default=3, help="downloads of each kind over each link"
    )
    args = parser.parse_args()

    from playwright.sync_api import sync_playwright

    from meritum_api.db.cluster import ThrowawayCluster, fast_root

    cluster = ThrowawayCluster()
    cluster.start()
    http: dict[str, dict[str, list[float]]] = {
        k: {"head": [], "full": []} for k in ("page", "json")
    }
    browser_loads: dict[str, dict[str, list[float]]] = {
        k: {"head": [], "full": []} for k in ("page", "json")
    }
    downloads: dict[str, list[float]] = {"downloader": [], "plain link": []}
    linked: dict[float, dict[str, list[float]]] = {
        mbit: {"downloader": [], "plain link": []} for mbit in args.link_mbit
    }
    cpu = {"page": 0.0, "json": 0.0}
    sizes: dict[str, int] = {}
    try:
        url = cluster.clone("bench_web")
        with tempfile.TemporaryDirectory(prefix="meritum-bench-web-", dir=fast_root()) as tmp:
            root = Path(tmp)
            big = _prepare(url, root / "reports", args.mb)
            with _server(url, root / "reports") as (base, process):
                cookies = _sign_in(base)
                # Set as a header: the cookies are Secure outside development.
                cookie = "; ".join(f"{name}={value}" for name, value in cookies.items())
                with httpx.Client(base_url=base, headers={"Cookie": cookie}, timeout=60) as client:
                    _, _, page_body = _timed(client, PAGE)
                    _, _, json_body = _timed(client, LISTING)
                    rows = page_body.count(b"<tr data-report-id=")
                    if rows != 20 or b"data-eta" not in page_body:
                        raise SystemExit(f"the page shows {rows} reports or no estimate")
                    if json_body.count(b'"report_id"') != 20:
                        raise SystemExit("the JSON list is not 20 reports")
                    if b"Downloaded <time" not in page_body:
                        raise SystemExit("the page shows no download receipt")
                    sizes = {"page": len(page_body), "json": len(json_body)}
                    for _ in range(50):  # warm up: connections, caches, prepared plans
                        _timed(client, PAGE)
                        _timed(client, LISTING)
                    # Small alternating blocks, so that a burst of load elsewhere on the
                    # machine falls on both; the server's CPU time is counted per block.
                    for _ in range(args.rounds * args.requests // BLOCK):
                        for kind, path in (("page", PAGE), ("json", LISTING)):
                            before = _cpu_seconds(process)
                            for _ in range(BLOCK):
                                head, full, _ = _timed(client, path)
                                http[kind]["head"].append(head)
                                http[kind]["full"].append(full)
                            cpu[kind] += _cpu_seconds(process) - before
                with sync_playwright() as pw:
                    chromium = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
                    context = chromium.new_context(accept_downloads=True)
                    context.add_cookies(
                        [
                            {"name": name, "value": value, "url": base}
                            for name, value in cookies.items()
                        ]
                    )
                    tab = context.new_page()
                    for _ in range(args.rounds * args.loads):
                        for kind, path in (("page", PAGE), ("json", LISTING)):
                            tab.goto(base + path, wait_until="load")
                            head_ms, full_ms = tab.evaluate(TIMING)
                            browser_loads[kind]["head"].append(head_ms / 1000)
                            browser_loads[kind]["full"].append(full_ms / 1000)
                    plain_context = chromium.new_context(
                        accept_downloads=True, java_script_enabled=False
                    )
                    plain_context.add_cookies(
                        [
                            {"name": name, "value": value, "url": base}
                            for name, value in cookies.items()
                        ]
                    )
                    tabs = {"downloader": tab, "plain link": plain_context.new_page()}
                    sizes["download"] = _downloads(
                        tabs, f"{base}/reports/{big}", downloads, count=args.downloads
                    )
                    port = int(base.rsplit(":", 1)[1])
                    for mbit, samples in linked.items():
                        with Link(("127.0.0.1", port), bits_per_second=mbit * 1e6) as link:
                            detail = f"http://127.0.0.1:{link.port}/reports/{big}"
                            _downloads(tabs, detail, samples, count=args.linked_downloads)
                    load = os.getloadavg()[0]
                    chromium.close()
    finally:
        cluster.stop()

    def ratio(key: str, source: dict[str, dict[str, list[float]]]) -> float:
        return percentile(source["page"][key], 0.5) / percentile(source["json"][key], 0.5)

    http_full = ratio("full", http)
    load_full = ratio("full", browser_loads)
    dl_ratio = _ratio(downloads)
    lines = [
        "# Web benchmark: the reports page against its JSON, the downloader against a link",
        "",
        f"- run: {stamp()}; machine: {describe()}",
        f"- one product server (uvicorn, PostgreSQL 16); a physician with {REPORTS} ready "
        "reports (10 downloaded), 2 pending and 30 unread notifications; the page shows the "
        "20 newest, the JSON list is the same 20",
        f"- HTTP: {args.rounds * args.requests} requests of each in alternating blocks of "
        f"{BLOCK}, one keep-alive connection, the same session cookie; Chromium: "
        f"{args.rounds * args.loads} navigations of each, alternating; downloads: "
        f"{args.downloads} of each, interleaved; load average at the end {load:.1f}; client, "
        "browser and server share the machine's cores",
        "",
        "| median, ms | reports page | JSON list | page ÷ JSON |",
        "| --- | ---: | ---: | ---: |",
        f"| HTTP: first byte | {_ms(http['page']['head'])} | {_ms(http['json']['head'])} | "
        f"{ratio('head', http):.2f}× |",
        f"| HTTP: last byte | {_ms(http['page']['full'])} | {_ms(http['json']['full'])} | "
        f"{http_full:.2f}× |",
        f"| Chromium: first byte | {_ms(browser_loads['page']['head'])} | "
        f"{_ms(browser_loads['json']['head'])} | {ratio('head', browser_loads):.2f}× |",
        f"| Chromium: full load | {_ms(browser_loads['page']['full'])} | "
        f"{_ms(browser_loads['json']['full'])} | {load_full:.2f}× |",
        f"| server CPU per request | {cpu['page'] / len(http['page']['full']) * 1000:.2f} | "
        f"{cpu['json'] / len(http['json']['full']) * 1000:.2f} | "
        f"{cpu['page'] / cpu['json']:.2f}× |",
        f"| body size, bytes | {sizes['page']:,} | {sizes['json']:,} | "
        f"{sizes['page'] / sizes['json']:.2f}× |",
        "",
        f"Goal: the page within 2× of the JSON — HTTP last byte "
        f"{'met' if http_full <= 2 else 'not met'}, Chromium full load "
        f"{'met' if load_full <= 2 else 'not met'}.",
        "",
        f"| {sizes['download'] / 2**20:.0f} MiB report, in Chromium | MB/s (median) | "
        "seconds (median) | downloader ÷ plain link |",
        "| --- | ---: | ---: | ---: |",
        *_download_rows("loopback", downloads, sizes["download"]),
        *(
            row
            for mbit, samples in linked.items()
            for row in _download_rows(f"{mbit:g} Mbit/s link", samples, sizes["download"])
        ),
        "",
        f"Downloader ÷ plain link over loopback: {dl_ratio:.2f}× — goal ≥ 0.8×: "
        f"{'met' if dl_ratio >= 0.8 else 'not met'}."
        + "".join(
            f" Over a {mbit:g} Mbit/s link: {_ratio(samples):.2f}× — "
            f"{'met' if _ratio(samples) >= 0.8 else 'not met'}."
            for mbit, samples in linked.items()
        ),
        "",
        "The downloader's time includes its SHA-256 check (Web Crypto, over the whole file "
        "once the last byte is in) and handing the verified file to the browser; the plain "
        "link's is the browser's own download, written as it arrives. Over loopback the "
        "transfer is as fast as the cores, so that fixed work weighs as much as the transfer; "
        "the link (a proxy pacing the server's bytes, `benchmarks/link.py`) gives both the "
        "same network between browser and server.",
        "",
    ]
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "web.md").write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "serve":
        serve(sys.argv[2], sys.argv[3], int(sys.argv[4]))
    else:
        os.environ.setdefault("MERITUM_LOG_LEVEL", "warning")
        main()
