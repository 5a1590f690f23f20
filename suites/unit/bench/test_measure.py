"""Measurement helpers."""

import subprocess
import sys
from pathlib import Path

import pytest

from sam3spec.bench.measure import peak_rss_mb

ROOT = Path(__file__).resolve().parents[3]


@pytest.mark.skipif(not Path("/proc/self/status").is_file(), reason="needs Linux /proc")
def test_a_child_reports_its_own_peak_not_its_parents():
    ballast = bytearray(400 * 1024 * 1024)  # touched below: 400 MB resident in this process
    ballast[::4096] = b"x" * len(ballast[::4096])
    assert peak_rss_mb() > 400
    child = subprocess.run(
        [sys.executable, "-c", "from sam3spec.bench.measure import peak_rss_mb; print(peak_rss_mb())"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    assert float(child.stdout) < 150  # ru_maxrss would carry this process's > 400 MB across exec
    del ballast
