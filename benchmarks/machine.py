"""A one-line description of the machine a benchmark ran on."""

from __future__ import annotations

import os
import platform
from datetime import UTC, datetime
from pathlib import Path

RESULTS = Path(__file__).parent / "results"


def describe() -> str:
    """CPU model, cores, memory and Python version."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = ""
    try:
        kib = int(Path("/proc/meminfo").read_text().split()[1])
        memory = f", {kib / 1024 / 1024:.0f} GiB"
    except (OSError, ValueError, IndexError):
        pass
    return f"{cpu}, {os.cpu_count()} vCPU{memory}, Python {platform.python_version()}"


def stamp() -> str:
    """Date and time of the run (UTC)."""
    return datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")


def percentile(samples: list[float], fraction: float) -> float:
    """Nearest-rank percentile of unsorted samples."""
    ordered = sorted(samples)
    rank = max(0, min(len(ordered) - 1, round(fraction * len(ordered)) - 1))
    return ordered[rank]
