"""Encrypted local storage against plain files: throughput and peak memory.

Run: ``uv run python -m benchmarks.bench_storage [--size-mib N] [--repeats N] [--dir PATH]``

Throughput, in one run over the same CSV-like bytes handed over in 64 KiB chunks (as the
report generators do), each encrypted operation against its plain baseline measured in
the same repetition:

- write: ``EncryptedStorage.write`` on the local blob store (SHA-256 of the plaintext on
  a second thread, AES-256-GCM, temp file, fsync, rename, fsync the directory) against a
  plain write of the same bytes done the same way (temp file, fsync, rename, fsync the
  directory), without encryption or hashing;
- small writes: the same for 32 report-sized files of 1 MiB one after another;
- warm read: ``EncryptedStorage.read`` of the whole object (decrypt and authenticate
  every segment) against reading the plain file 1 MiB at a time, both files read once
  beforehand so that they come from the page cache;
- cold read: the same right after ``posix_fadvise(DONTNEED)`` evicted both files;
- and, for reference, SHA-256 alone and AES-256-GCM alone (64 KiB calls, the segment
  size), the latter also on two threads at once.

Variants alternate in a fresh random order each repetition, so machine noise hits both
alike. Each ratio is the median of the per-repetition ratios; the range is their lowest
and highest.

Peak memory: each measurement is a fresh child process that writes (or reads) a file
of 10 MB or 1 GiB from generated chunks, never holding the whole of it, and reports
its peak resident set. That is VmHWM, not ru_maxrss: Linux carries ru_maxrss over
exec, so a child would report its parent's peak.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from benchmarks.machine import RESULTS, describe, stamp
from meritum_api.crypto.keys import Keyring
from meritum_api.crypto.streaming import DEFAULT_SEGMENT_SIZE
from meritum_api.storage.encrypted import EncryptedStorage
from meritum_api.storage.local import WRITEBACK_BYTES, LocalBlobStore, start_writeback

CHUNK = 64 * 1024
MB = 1_000_000
MiB = 1024 * 1024
#: A fixed key, so that a child process can read what another one wrote (benchmark only).
KEYRING = Keyring(keys={"bench": bytes(range(32))}, active_id="bench")


def csv_block() -> bytes:
    """One MiB of CSV rows shaped like an accountant detail export (fake values)."""
    rows = []
    for n in range(20_000):
        rows.append(
            f"2026-01-{1 + n % 28:02d},{9_000_000_000 + n * 7919 % 999_999_999},"
            f"03.0{n % 9}A,{n % 5 + 1},{(n * 37) % 20000 / 100:.2f},PAID,{n:08d}\r\n"
        )
    block = "".join(rows).encode()
    return (block * (MiB // len(block) + 1))[:MiB]


def chunks_of(block: bytes, total: int) -> Iterator[bytes]:
    """``total`` bytes in 64 KiB chunks, cycling over ``block`` (nothing accumulates)."""
    pieces = [block[at : at + CHUNK] for at in range(0, len(block), CHUNK)]
    sent, n = 0, 0
    while sent < total:
        piece = pieces[n % len(pieces)]
        if sent + len(piece) > total:
            piece = piece[: total - sent]
        yield piece
        sent += len(piece)
        n += 1


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def plain_write(
    root: Path, name: str, chunks: Iterator[bytes], *, early_writeback: bool = False
) -> None:
    """The unencrypted baseline, as durable as the real write: temp, fsync, rename.

    ``early_writeback``: start writeback every few MiB as the local blob store does.
    """
    temp = root / f".{name}.tmp"
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        written = flushed = 0
        for chunk in chunks:
            view = memoryview(chunk)
            while view:
                view = view[os.write(fd, view) :]
            written += len(chunk)
            if early_writeback and written - flushed >= WRITEBACK_BYTES:
                start_writeback(fd, flushed, written - flushed)
                flushed = written
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(temp, root / name)
    _fsync_dir(root)


def plain_read(root: Path, name: str) -> Iterator[bytes]:
    """The unencrypted baseline read: 1 MiB system calls, as the storage makes."""
    with (root / name).open("rb", buffering=0) as f:
        while piece := f.read(MiB):
            yield piece


def _timed(action: Callable[[], object]) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def _consume(pieces: Iterator[bytes]) -> None:
    for _ in pieces:
        pass


def _consume_encrypted(storage: EncryptedStorage, key: str) -> None:
    _consume(storage.read(key))


def evict(path: Path) -> None:
    """Drop one file's clean pages from the page cache (this file only, no privileges)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


#: Report-sized files: many small writes, where fsync latency weighs more than bytes.
SMALL_FILES, SMALL_SIZE = 32, MiB


def _small_encrypted(storage: EncryptedStorage, rep: int, block: bytes) -> None:
    for n in range(SMALL_FILES):
        storage.write(f"reports/small/r{rep}-{n}", chunks_of(block, SMALL_SIZE))


def _small_plain(root: Path, rep: int, block: bytes) -> None:
    for n in range(SMALL_FILES):
        plain_write(root, f"s{rep}-{n}", chunks_of(block, SMALL_SIZE))


def _cpu_seconds() -> tuple[float, float]:
    """Busy and total CPU seconds of the whole machine so far (all cores)."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    ticks = os.sysconf("SC_CLK_TCK")
    idle = fields[3] + fields[4]  # idle and iowait
    return (sum(fields) - idle) / ticks, sum(fields) / ticks


def _own_cpu_seconds() -> float:
    """CPU seconds of this process (all its threads) and of its finished children."""
    own, children = (
        resource.getrusage(resource.RUSAGE_SELF),
        resource.getrusage(resource.RUSAGE_CHILDREN),
    )
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def wait_for_quiet(*, idle: float, timeout: float) -> bool:
    """Wait until other processes leave ``idle`` of the CPU free for 2 s; False on timeout."""
    deadline = time.monotonic() + timeout
    while True:
        busy, total = _cpu_seconds()
        time.sleep(2)
        busy_after, total_after = _cpu_seconds()
        if 1 - (busy_after - busy) / max(total_after - total, 1e-9) >= idle:
            return True
        if time.monotonic() > deadline:
            return False


def load_mark() -> tuple[float, float, float]:
    """Where the machine's and this process's CPU counters stand now."""
    busy, total = _cpu_seconds()
    return busy, total, _own_cpu_seconds()


def others_share(since: tuple[float, float, float]) -> float:
    """The share of the machine's CPU that other processes used since ``since``."""
    busy, total = _cpu_seconds()
    others = (busy - since[0]) - (_own_cpu_seconds() - since[2])
    return max(0.0, others / max(total - since[1], 1e-9))


#: Throughput rows: (name, label); each has an "encrypted" and a "plain" variant.
OPERATIONS = (
    ("write", "write (fsync)"),
    ("small writes", f"write, {SMALL_FILES} files of {SMALL_SIZE // MiB} MiB (fsync each)"),
    ("warm read", "read, from the page cache"),
    ("cold read", "read, evicted from the page cache first"),
)


def throughput(
    root: Path, size: int, repeats: int, *, quiet_wait: float, max_others: float, budget: float
) -> dict[str, list[float]]:
    """MB/s of each variant over ``repeats`` interleaved repetitions.

    On a shared machine, each repetition first waits up to ``quiet_wait`` seconds for the
    other processes to leave most of the CPU free, and one during which they still took
    more than ``max_others`` of it is measured again, until ``budget`` seconds have gone
    (then it is kept). ``others`` records their share in each kept repetition,
    ``discarded`` how many were measured again.
    """
    block = csv_block()
    storage = EncryptedStorage(LocalBlobStore(root / "encrypted"), KEYRING)
    plain_root = root / "plain"
    plain_root.mkdir()
    speeds: dict[str, list[float]] = {"discarded": [0]}
    deadline = time.monotonic() + budget
    rep = kept = 0
    while kept < repeats:
        rep += 1
        if quiet_wait > 0:
            wait_for_quiet(idle=1 - max_others, timeout=quiet_wait)
        sample: dict[str, float] = {}
        mark = load_mark()
        key, name = f"reports/bench/r{rep}", f"r{rep}"
        encrypted_file = root / "encrypted" / "reports" / "bench" / name
        small = SMALL_FILES * SMALL_SIZE
        groups: list[tuple[str, dict[str, tuple[Callable[[], object], int]]]] = [
            (
                "write",
                {
                    "encrypted": (partial(storage.write, key, chunks_of(block, size)), size),
                    "plain": (partial(plain_write, plain_root, name, chunks_of(block, size)), size),
                    "plain, early writeback": (
                        partial(
                            plain_write,
                            plain_root,
                            f"{name}-w",
                            chunks_of(block, size),
                            early_writeback=True,
                        ),
                        size,
                    ),
                },
            ),
            (
                "small writes",
                {
                    "encrypted": (partial(_small_encrypted, storage, rep, block), small),
                    "plain": (partial(_small_plain, plain_root, rep, block), small),
                },
            ),
            (
                "warm read",
                {
                    "encrypted": (partial(_consume_encrypted, storage, key), size),
                    "plain": (partial(_consume, plain_read(plain_root, name)), size),
                },
            ),
            (
                "cold read",
                {
                    "encrypted": (partial(_consume_encrypted, storage, key), size),
                    "plain": (partial(_consume, plain_read(plain_root, name)), size),
                },
            ),
        ]
        for operation, variants in groups:
            if operation == "warm read":
                _consume_encrypted(storage, key)
                _consume(plain_read(plain_root, name))
            if operation == "cold read":
                evict(encrypted_file)
                evict(plain_root / name)
            order = list(variants.items())
            random.shuffle(order)
            for variant, (action, nbytes) in order:
                sample[f"{variant} {operation}"] = nbytes / _timed(action) / MB
        sample.update(primitives(block))
        sample["others"] = others_share(mark)
        if rep == 1:
            pass  # the first repetition warms up and is dropped
        elif sample["others"] <= max_others or time.monotonic() > deadline:
            kept += 1
            for label, value in sample.items():
                speeds.setdefault(label, []).append(value)
        else:
            speeds["discarded"][0] += 1
        storage.delete(key)
        (plain_root / name).unlink()
        (plain_root / f"{name}-w").unlink()
        for n in range(SMALL_FILES):
            storage.delete(f"reports/small/r{rep}-{n}")
            (plain_root / f"s{rep}-{n}").unlink()
    return speeds


def primitives(block: bytes) -> dict[str, float]:
    """MB/s of SHA-256 and AES-256-GCM alone, and of AES-256-GCM opening on two threads.

    Opening on two threads is measured with 64 KiB calls (the segment size) and with
    1 MiB calls: cryptography lets go of the GIL during each call, which pays only when
    a call is long enough to outweigh handing the GIL over.
    """
    pieces = [block[at : at + CHUNK] for at in range(0, len(block), CHUNK)] * 128
    total = sum(len(p) for p in pieces)
    aead, nonce = AESGCM(bytes(32)), bytes(12)
    sealed = [aead.encrypt(nonce, piece, b"") for piece in pieces[:16]] * 128
    sealed_mib = [aead.encrypt(nonce, block, b"")] * (total // len(block))

    def hash_all() -> None:
        digest = hashlib.sha256()
        for piece in pieces:
            digest.update(piece)

    def seal_all() -> None:
        for piece in pieces:
            aead.encrypt(nonce, piece, b"")  # one nonce is fine: nothing is kept

    def open_all(batch: list[bytes]) -> None:
        for piece in batch:
            aead.decrypt(nonce, piece, b"")

    def on_two_threads(batch: list[bytes]) -> None:
        second = threading.Thread(target=open_all, args=(batch,))
        second.start()
        open_all(batch)
        second.join()

    return {
        "SHA-256": total / _timed(hash_all) / MB,
        "AES-256-GCM seal": total / _timed(seal_all) / MB,
        "AES-256-GCM open": total / _timed(partial(open_all, sealed)) / MB,
        "AES-256-GCM open, two threads": 2 * total / _timed(partial(on_two_threads, sealed)) / MB,
        "AES-256-GCM open 1 MiB": total / _timed(partial(open_all, sealed_mib)) / MB,
        "AES-256-GCM open 1 MiB, two threads": (
            2 * total / _timed(partial(on_two_threads, sealed_mib)) / MB
        ),
    }


# --- peak memory, one fresh process per measurement ---


def _peak_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def child(variant: str, operation: str, size: int, root: Path) -> None:
    """Run one measured operation and print its peak memory as JSON."""
    baseline = _peak_kib()
    block = csv_block()
    storage = EncryptedStorage(LocalBlobStore(root / "encrypted"), KEYRING)
    (root / "plain").mkdir(exist_ok=True)
    started = time.perf_counter()
    if operation == "write" and variant == "encrypted":
        storage.write("reports/bench/memory", chunks_of(block, size))
    elif operation == "write":
        plain_write(root / "plain", "memory", chunks_of(block, size))
    elif variant == "encrypted":
        _consume(storage.read("reports/bench/memory"))
    else:
        _consume(plain_read(root / "plain", "memory"))
    seconds = time.perf_counter() - started
    print(json.dumps({"baseline_kib": baseline, "peak_kib": _peak_kib(), "seconds": seconds}))


def peak_memory(root: Path) -> list[tuple[str, str, int, dict[str, float]]]:
    """Peak resident memory of each (variant, operation, size) in a fresh process."""
    results = []
    for size in (10 * MB, 1024 * MiB):
        for variant in ("encrypted", "plain"):
            for operation in ("write", "read"):
                done = subprocess.run(
                    [
                        sys.executable,
                        "-m",
                        "benchmarks.bench_storage",
                        "--child",
                        variant,
                        operation,
                        str(size),
                        str(root),
                    ],
                    capture_output=True,
                    text=True,
                    check=True,
                )
                results.append((variant, operation, size, json.loads(done.stdout)))
        shutil.rmtree(root / "encrypted", ignore_errors=True)
        shutil.rmtree(root / "plain", ignore_errors=True)
    return results


def filesystem_of(path: Path) -> str:
    """The filesystem type the path lives on (longest matching mount point)."""
    best, kind = "", "unknown"
    resolved = str(path.resolve())
    try:
        mounts = Path("/proc/mounts").read_text().splitlines()
    except OSError:
        return kind
    for line in mounts:
        fields = line.split()
        if len(fields) >= 3 and resolved.startswith(fields[1]) and len(fields[1]) > len(best):
            best, kind = fields[1], fields[2]
    return kind


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size-mib", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument(
        "--dir", type=Path, default=None, help="where to write (default: the system temp dir)"
    )
    parser.add_argument(
        "--quiet-wait",
        type=float,
        default=120,
        help="seconds to wait, before each repetition, for other processes to leave the "
        "CPU mostly idle (0: do not wait)",
    )
    parser.add_argument(
        "--max-others",
        type=float,
        default=0.15,
        help="measure a repetition again when other processes took more of the CPU",
    )
    parser.add_argument(
        "--budget", type=float, default=1800, help="seconds after which noisy repetitions count"
    )
    parser.add_argument("--child", nargs=4, metavar=("VARIANT", "OP", "SIZE", "ROOT"))
    args = parser.parse_args()
    if args.child:
        variant, operation, size, root = args.child
        child(variant, operation, int(size), Path(root))
        return

    place = "the system temporary directory" if args.dir is None else "the directory given"
    with tempfile.TemporaryDirectory(prefix="bench-storage-", dir=args.dir) as tmp:
        root = Path(tmp)
        filesystem = filesystem_of(root)
        size = args.size_mib * MiB
        load_before = os.getloadavg()[0]
        speeds = throughput(
            root,
            size,
            args.repeats,
            quiet_wait=args.quiet_wait,
            max_others=args.max_others,
            budget=args.budget,
        )
        memory = peak_memory(root)
        load_after = os.getloadavg()[0]

    median = {label: statistics.median(values) for label, values in speeds.items()}
    lines = [
        "# Storage benchmark: encrypted local files against plain files",
        "",
        f"- run: {stamp()}; machine: {describe()}",
        f"- files in {place}, on a {filesystem} filesystem",
        f"- payload: {args.size_mib} MiB of CSV-like rows handed over in 64 KiB chunks; "
        f"{DEFAULT_SEGMENT_SIZE // 1024} KiB segments, AES-256-GCM; MB = 10^6 bytes",
        f"- {args.repeats} repetitions after one warm-up, variants in a fresh random order "
        "each time; each ratio is the median of the repetitions' own ratios (encrypted ÷ "
        "plain of the same repetition), with their lowest and highest; cold reads follow "
        "posix_fadvise(DONTNEED) of both files (the virtual disk may still cache on its host)",
        f"- the machine is shared: load average {load_before:.1f} before, {load_after:.1f} "
        f"after; each repetition waited up to {args.quiet_wait:.0f} s for a quiet moment; "
        f"{speeds['discarded'][0]:.0f} during which other processes took more than "
        f"{args.max_others:.0%} of the CPU were measured again; in those kept they took "
        f"{statistics.median(speeds['others']):.0%} (median; "
        f"{min(speeds['others']):.0%}–{max(speeds['others']):.0%})",
        "",
        "| operation | encrypted MB/s | plain MB/s | encrypted ÷ plain | ratio range |",
        "| --- | ---: | ---: | ---: | --- |",
    ]
    ratios: dict[str, list[float]] = {}
    for operation, label in OPERATIONS:
        encrypted, plain = speeds[f"encrypted {operation}"], speeds[f"plain {operation}"]
        ratios[operation] = [e / p for e, p in zip(encrypted, plain, strict=True)]
        lines.append(
            f"| {label} | {statistics.median(encrypted):,.0f} | {statistics.median(plain):,.0f} "
            f"| {statistics.median(ratios[operation]):.0%} "
            f"| {min(ratios[operation]):.0%}–{max(ratios[operation]):.0%} |"
        )
    tuned = speeds["plain, early writeback write"]
    ratios["write, tuned"] = [e / p for e, p in zip(speeds["encrypted write"], tuned, strict=True)]
    lines.append(
        f"| write, against a plain write that also starts writeback early | "
        f"{median['encrypted write']:,.0f} | {statistics.median(tuned):,.0f} "
        f"| {statistics.median(ratios['write, tuned']):.0%} "
        f"| {min(ratios['write, tuned']):.0%}–{max(ratios['write, tuned']):.0%} |"
    )
    sha, seal = median["SHA-256"], median["AES-256-GCM seal"]
    opened, opened_two = median["AES-256-GCM open"], median["AES-256-GCM open, two threads"]
    opened_mib = median["AES-256-GCM open 1 MiB"]
    opened_mib_two = median["AES-256-GCM open 1 MiB, two threads"]
    plain_write_speed, plain_read_speed = median["plain write"], median["plain warm read"]
    one_core_write = 1 / (1 / plain_write_speed + 1 / sha + 1 / seal)
    read_bound = 1 / (1 / plain_read_speed + 1 / opened)
    lines += [
        "",
        "Goal: encrypted write at least 70% of plain. Both writes fsync the file and the "
        "directory; the encrypted one also seals every segment and computes the SHA-256 of "
        "the plaintext on a second thread, and asks the kernel to start writeback every "
        f"{WRITEBACK_BYTES // MiB} MiB (posix_fadvise DONTNEED) so that the disk works while "
        "it hashes. The last row gives the plain write that same hint, for comparison.",
        "",
        f"For reference (medians of the same repetitions): SHA-256 {sha:,.0f} MB/s, "
        f"AES-256-GCM sealing {seal:,.0f} MB/s and opening {opened:,.0f} MB/s on one "
        f"thread, opening on two threads at once {opened_two:,.0f} MB/s in all "
        f"({opened_two / opened:.2f}× one thread, in 64 KiB calls, the segment size; in "
        f"1 MiB calls {opened_mib_two:,.0f} MB/s, {opened_mib_two / opened_mib:.2f}× one "
        f"thread's {opened_mib:,.0f} MB/s). Done one after another "
        f"on one thread, plain write, hash and seal would bound the encrypted write at "
        f"{one_core_write:,.0f} MB/s ({one_core_write / plain_write_speed:.0%} of plain); "
        f"measured {median['encrypted write'] / one_core_write:.0%} of that bound. The read "
        f"from the page cache is bounded by plain read plus opening at {read_bound:,.0f} "
        f"MB/s ({read_bound / plain_read_speed:.0%} of plain; measured "
        f"{median['encrypted warm read'] / read_bound:.0%} of that bound), and even with a "
        f"free read by opening alone at {opened / plain_read_speed:.0%} of plain.",
        "",
        "Peak resident memory, each in a fresh process (interpreter and imports included):",
        "",
        "| variant | operation | 10 MB: peak MiB | 1 GiB: peak MiB | difference MiB |",
        "| --- | --- | ---: | ---: | ---: |",
    ]
    by = {(v, o, s): r for v, o, s, r in memory}
    for variant in ("encrypted", "plain"):
        for operation in ("write", "read"):
            small = by[variant, operation, 10 * MB]["peak_kib"] / 1024
            big = by[variant, operation, 1024 * MiB]["peak_kib"] / 1024
            lines.append(
                f"| {variant} | {operation} | {small:.1f} | {big:.1f} | {big - small:+.1f} |"
            )
    lines += [
        "",
        "Goal: flat, the same peak for 10 MB and 1 GiB (one segment at a time).",
        "",
    ]
    spread = ", ".join(
        f"{operation} {statistics.median(values):.0%} ({min(values):.0%}–{max(values):.0%})"
        for operation, values in ratios.items()
    )
    lines.append(f"Ratios, median (lowest–highest): {spread}.")
    lines.append("")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "storage.md").write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
