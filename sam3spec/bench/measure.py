"""Measurement helpers: wall-clock latency, peak resident memory, file sizes, isolated runs.

Latency and memory are measured here and by benchmarks, never asserted inside unit tests. Peak
memory of one workload is measured in a fresh subprocess (:func:`run_isolated`), since a process's
high-water mark includes everything it ran before.

Standard library only (``psutil`` is imported inside :func:`current_rss_mb`), so every layer of
``sam3spec`` and the gate suites can use it without pulling anything else in.
"""

from __future__ import annotations

import json
import os
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any


def time_callable(fn: Callable[[], Any], warmup: int = 1, repeats: int = 5) -> dict[str, float]:
    """Run ``fn`` ``warmup`` times untimed, then ``repeats`` times timed.

    Returns:
        ``{"median_ms", "min_ms", "mean_ms", "repeats"}``.
    """
    if repeats < 1:
        raise ValueError(f"repeats must be >= 1, got {repeats}")
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1e3)
    return {
        "median_ms": statistics.median(times),
        "min_ms": min(times),
        "mean_ms": statistics.fmean(times),
        "repeats": float(repeats),
    }


def peak_rss_mb() -> float:
    """This process's peak resident set size so far, in MB.

    Linux: ``VmHWM`` from ``/proc/self/status``. Not ``ru_maxrss``: Linux carries it across
    ``exec``, so a worker started from a large pytest process reported the parent's peak (a 3.7 GB
    "program RSS" after the seed export in the same session, against 256 MB measured alone).
    Elsewhere ``ru_maxrss`` (bytes on macOS).
    """
    status = Path("/proc/self/status")
    if status.is_file():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024  # kB
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 1024 / 1024 if sys.platform == "darwin" else peak / 1024


def current_rss_mb() -> float:
    """This process's current resident set size in MB."""
    import psutil

    return psutil.Process().memory_info().rss / 1024 / 1024


def file_size_mb(path: str | Path) -> float:
    """Size of a file in MB (10^6 bytes, as phone app stores report)."""
    return Path(path).stat().st_size / 1e6


def run_isolated(module: str, args: Sequence[str], timeout: float = 1800) -> dict[str, Any]:
    """Run ``python -m module *args`` in a fresh process and parse the JSON on its last stdout line.

    Args:
        module: a module path with a ``__main__`` entry point, e.g. ``sam3spec.bench.image``.
        args: its command-line arguments.
        timeout: seconds before the child is killed.

    Returns:
        The parsed JSON object of the child's last stdout line.

    Raises:
        RuntimeError: when the process fails or prints no JSON, with its stderr tail.
    """
    root = Path(__file__).resolve().parents[2]  # the repository: ``-m`` finds this checkout's sam3spec
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(root), os.environ.get("PYTHONPATH")])),
    }
    # The child keeps the caller's working directory (relative paths in ``args`` mean what the
    # caller meant); ``-P`` keeps that directory off ``sys.path``, so it cannot shadow sam3spec.
    process = subprocess.run(
        [sys.executable, "-P", "-m", module, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
    )
    lines = process.stdout.strip().splitlines()
    if process.returncode != 0 or not lines:
        raise RuntimeError(
            f"{module} {' '.join(args)} failed ({process.returncode}): {process.stderr[-2000:]}"
        )
    try:
        return json.loads(lines[-1])
    except json.JSONDecodeError as error:
        raise RuntimeError(f"{module}: last line is not JSON: {lines[-1]!r}") from error
