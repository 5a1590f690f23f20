"""Running ``python -m sam3spec.cli`` as a user would: a fresh process whose working directory is a
temporary folder outside the repository, and checks of the error policy (exit status, one line
naming the culprit, no traceback)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

REPOSITORY = Path(__file__).resolve().parents[3]


@dataclass
class Finished:
    """A finished command: exit status and its output."""

    code: int
    stdout: str
    stderr: str

    @property
    def last_line(self) -> str:
        """stderr's last non-empty line (progress bars' carriage returns split lines too)."""
        lines = [line.strip() for line in self.stderr.replace("\r", "\n").splitlines() if line.strip()]
        return lines[-1] if lines else ""

    def failed(self, code: int, *names: str) -> str:
        """Assert exit ``code``, no traceback, and a last stderr line holding every one of ``names``."""
        assert self.code == code, (self.code, self.stderr[-3000:])
        assert "Traceback" not in self.stderr, self.stderr[-3000:]
        for name in names:
            assert name in self.last_line, (name, self.last_line)
        return self.last_line


def environment(**extra: str) -> dict[str, str]:
    """The caller's environment with this checkout first on the import path and one torch thread."""
    paths = [str(REPOSITORY), os.environ.get("PYTHONPATH", "")]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in paths if p), "OMP_NUM_THREADS": "1"}
    env.pop("SAM3SPEC_DEBUG", None)
    return {**env, **extra}


@pytest.fixture
def sam3spec(tmp_path: Path):
    """``sam3spec(*args, env=None)`` runs the command line in ``tmp_path`` (its working directory)."""

    def run(*args: object, env: dict[str, str] | None = None, timeout: float = 600) -> Finished:
        process = subprocess.run(
            [sys.executable, "-m", "sam3spec.cli", *map(str, args)],
            cwd=tmp_path,
            env=environment(**(env or {})),
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        return Finished(process.returncode, process.stdout, process.stderr)

    return run


@pytest.fixture
def sam3spec_started(tmp_path: Path):
    """``sam3spec_started(*args)``: the command line started in ``tmp_path`` (a ``Popen``, output piped)."""
    started: list[subprocess.Popen] = []

    def start(*args: object) -> subprocess.Popen:
        process = subprocess.Popen(
            [sys.executable, "-m", "sam3spec.cli", *map(str, args)],
            cwd=tmp_path,
            env=environment(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            # A shell without job control starts background jobs with SIGINT ignored, and Python
            # then never raises KeyboardInterrupt: give the child the default disposition.
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        )
        started.append(process)
        return process

    yield start
    for process in started:
        if process.poll() is None:
            process.kill()
            process.wait()


@pytest.fixture
def leftovers():
    """``leftovers(folder)``: temporary files or folders (``.*.tmp*``) an atomic writer left there."""

    def find(folder: Path) -> list[str]:
        return sorted(p.name for p in Path(folder).iterdir() if p.name.startswith(".") and ".tmp" in p.name)

    return find
