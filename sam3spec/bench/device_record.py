"""The GPU readiness check's record: its figures, the spec results drawn from them, one JSON file.

``device_check.json``::

    {"results": [...],        # ResultStore format: `sam3spec report` and `pytest --ingest` read it
     "measurements": {...},   # every figure by name, or {"skipped": why} / {"failed": error}
     "check": {...}}          # what ran where, elapsed seconds

The file is rewritten after every figure (atomically), so a run stopped at its deadline keeps
what it measured, and a figure not reached says so. A spec entry is evaluated only when every
figure it needs was measured and the run can measure specs at all (the full check on CUDA);
otherwise it is *not measured* with the reason (``no GPU`` on a machine without one).
"""

from __future__ import annotations

import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

RESULTS_NAME = "device_check.json"
NO_GPU = "no GPU"
NOT_REACHED = "not reached: the check stopped before this figure"

# Spec id -> (figure, divisor figure or None), each "measurement.key[.key]" in ``measurements``.
SPEC_FIGURES: dict[str, tuple[str, str | None]] = {
    "runtime.student_teacher_throughput_ratio": (
        "student_inference.batch_8.images_per_second",
        "teacher_inference.batch_8.images_per_second",
    ),
    "runtime.student_teacher_throughput_ratio_batch1": (
        "student_inference.batch_1.images_per_second",
        "teacher_inference.batch_1.images_per_second",
    ),
    "runtime.gpu_train_step_ms": ("train_eager_cached.median_ms", None),
    "runtime.gpu_train_step_online_ms": ("train_eager_online.median_ms", None),
    "runtime.gpu_compile_speedup": ("train_eager_cached.median_ms", "train_compiled_cached.median_ms"),
    "runtime.gpu_ddp_overhead": ("train_ddp_cached.median_ms", "train_eager_cached.median_ms"),
}


class CheckRecord:
    """The figures of one run and the results JSON at ``path``, rewritten after each figure.

    Args:
        path: the JSON file.
        deadline_s: no figure starts later than this many seconds after construction.
        spec_reason: why this run cannot measure the spec entries (e.g. ``no GPU``), or None.
        context: the results' context (preset, resolution, device, weights, data).
    """

    def __init__(
        self, path: Path, deadline_s: float, spec_reason: str | None, context: dict[str, Any]
    ) -> None:
        from sam3spec.report import load_specs

        self.path, self.deadline_s = Path(path), deadline_s
        self.spec_reason, self.context = spec_reason, context
        self.specs = [spec for spec_id, spec in load_specs().items() if spec_id in SPEC_FIGURES]
        self.measurements: dict[str, Any] = {}
        self.check: dict[str, Any] = {}
        self.failures = 0
        self.start = time.monotonic()

    def elapsed(self) -> float:
        return time.monotonic() - self.start

    def measure(
        self, name: str, fn: Callable[[], dict], budget_s: float = 0.0, skip: str | None = None
    ) -> None:
        """Record ``fn()`` as figure ``name``, unless ``skip`` says why not or less than ``budget_s``
        is left before the deadline; an error is recorded (and printed) instead of stopping the run."""
        if skip:
            self.measurements[name] = {"skipped": skip}
        elif self.deadline_s - self.elapsed() < max(budget_s, 1e-9):
            self.measurements[name] = {"skipped": f"not reached within the {self.deadline_s:.0f} s deadline"}
        else:
            print(f"device check: {name} ({self.elapsed():.0f} s)", file=sys.stderr, flush=True)
            try:
                self.measurements[name] = fn()
            except Exception as error:  # one broken figure must not lose the others
                traceback.print_exc()
                self.measurements[name] = {"failed": f"{type(error).__name__}: {error}"}
                self.failures += 1
        self.write()

    def problem(self, name: str) -> str | None:
        """Why figure ``name`` has no value (None when it has one)."""
        entry = self.measurements.get(name)
        if entry is None:
            return f"{name}: {NOT_REACHED}"
        if "failed" in entry:
            return f"{name} failed: {entry['failed']}"
        return f"{name}: {entry['skipped']}" if "skipped" in entry else None

    def value(self, path: str) -> float:
        entry: Any = self.measurements
        for key in path.split("."):
            entry = entry[key]
        return float(entry)

    def results(self) -> list:
        """One :class:`~sam3spec.report.results.Result` per spec entry the check feeds."""
        from sam3spec.report import evaluate, not_measured

        results = []
        for spec in self.specs:
            figure, divisor = SPEC_FIGURES[spec.id]
            needs = dict.fromkeys(path.split(".")[0] for path in (figure, divisor) if path)
            problems = [problem for problem in map(self.problem, needs) if problem]
            if self.spec_reason or problems:
                results.append(not_measured(spec, self.spec_reason or "; ".join(problems), self.context))
                continue
            measured = self.value(figure) / (self.value(divisor) if divisor else 1.0)
            results.append(evaluate(spec, measured, self.context))
        return results

    def write(self) -> None:
        from sam3spec.atomic import atomic_write_json

        payload = {
            "results": [asdict(result) for result in self.results()],
            "measurements": self.measurements,
            "check": {**self.check, "elapsed_s": self.elapsed()},
        }
        atomic_write_json(payload, self.path, indent=2)
