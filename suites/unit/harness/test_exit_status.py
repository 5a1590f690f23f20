"""The main job's exit status: a missed spec target is a result, a crashed gate is a failure."""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]

SPEC = """
- id: demo.size
  what: size of the program
  metric: mb
  op: "<"
  value: 50
  source: test
  measured_on: any
"""

MISSES = """
def test_too_big(gate):
    gate.check("demo.size", 90.0)
"""

CRASHES = """
def test_broken(gate):
    raise RuntimeError("the gate could not run")
"""


def run(tmp_path: Path, body: str, *options: str) -> subprocess.CompletedProcess:
    specs = tmp_path / "specs"
    specs.mkdir(exist_ok=True)
    (specs / "demo.yaml").write_text(SPEC)
    (tmp_path / "test_demo.py").write_text(body)
    command = [
        sys.executable,
        "-m",
        "pytest",
        "-p",
        "harness.plugin",
        "-q",
        "-p",
        "no:cacheprovider",
        "--rootdir",
        str(tmp_path),
        "-c",
        "/dev/null",
        "--specs",
        str(specs),
        "--report",
        "demo",
        "--report-dir",
        str(tmp_path / "reports"),
        *options,
        str(tmp_path),
    ]
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize(
    ("body", "options", "status"),
    [
        (MISSES, (), 1),
        (MISSES, ("--spec-failures-ok",), 0),
        (MISSES + CRASHES, ("--spec-failures-ok",), 1),
        (CRASHES, ("--spec-failures-ok",), 1),
    ],
    ids=["missed-strict", "missed-ok", "missed-and-crashed", "crashed"],
)
def test_exit_status(tmp_path, body, options, status):
    result = run(tmp_path, body, *options)
    assert result.returncode == status, result.stdout[-2000:] + result.stderr[-2000:]
    report = (tmp_path / "reports" / "demo.md").read_text()
    assert "demo.size" in report
    if "test_too_big" in body:
        assert "1 gate test(s) missed a spec target" in result.stdout
