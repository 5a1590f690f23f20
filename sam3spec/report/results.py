"""Measured results with their context, and the JSON store behind every report.

A :class:`Result` is one figure for one spec id: the measured value (or why it was not
measured), pass/fail against the spec, and the context it was measured in (machine, preset,
weights trained/random, data concept-world/real, commit). A :class:`ResultStore` keeps the newest
result per id; results measured elsewhere (a phone run of the native runner) are merged in with
:meth:`ResultStore.ingest`.
"""

from __future__ import annotations

import functools
import json
import os
import platform
import subprocess
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from sam3spec.report.specs import Spec

PASS, FAIL, NOT_MEASURED = "pass", "fail", "not measured"
STATUSES = (PASS, FAIL, NOT_MEASURED)


@dataclass
class Result:
    """One recorded figure.

    Attributes:
        id: the spec id.
        status: ``pass`` / ``fail`` / ``not measured``.
        measured: the figure (None when not measured).
        reason: why it was not measured (required then), or a note.
        context: machine, preset, weights, data, commit, and anything the gate adds.
        recorded_at: UNIX time.
    """

    id: str
    status: str
    measured: float | None = None
    reason: str | None = None
    context: dict[str, Any] = field(default_factory=dict)
    recorded_at: float = field(default_factory=time.time)

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"result {self.id!r}: status {self.status!r} not in {STATUSES}")
        if self.status == NOT_MEASURED and not self.reason:
            raise ValueError(f"result {self.id!r}: a not-measured result needs a reason")
        if self.status != NOT_MEASURED and self.measured is None:
            raise ValueError(f"result {self.id!r}: status {self.status!r} needs a measured value")


@functools.lru_cache(maxsize=1)
def _commit() -> str:
    root = Path(__file__).resolve().parents[2]  # the repository holding this package
    try:
        rev = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True, text=True, timeout=10
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=root,
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return (rev or "uncommitted") + ("-dirty" if dirty else "")


@functools.lru_cache(maxsize=1)
def machine_context() -> dict[str, Any]:
    """Where this process runs: machine, commit, torch version (cached)."""
    try:
        import torch

        torch_version = torch.__version__
        gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    except ImportError:  # the report itself does not need torch
        torch_version, gpu = None, None
    machine = f"{platform.system()} {platform.machine()}, {os.cpu_count()} cores"
    if gpu:
        machine += f", {gpu}"
    return {"machine": machine, "commit": _commit(), "torch": torch_version}


def evaluate(spec: Spec, measured: float, context: dict[str, Any] | None = None) -> Result:
    """A pass/fail :class:`Result` for ``measured`` against ``spec``, with the machine context."""
    full = {**machine_context(), **(context or {})}
    return Result(spec.id, PASS if spec.passes(measured) else FAIL, float(measured), None, full)


def not_measured(spec: Spec, reason: str, context: dict[str, Any] | None = None) -> Result:
    """A :class:`Result` saying ``spec`` could not be measured here, and why."""
    return Result(spec.id, NOT_MEASURED, None, reason, {**machine_context(), **(context or {})})


def atomic_write_text(path: str | Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file + rename (never half-written)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class ResultStore:
    """The newest result per spec id; a measured result is never replaced by a not-measured one.

    ``tables`` holds markdown tables a gate attaches to explain its figures (title -> table;
    the report shows them after the spec tables)."""

    def __init__(self) -> None:
        self.results: dict[str, Result] = {}
        self.tables: dict[str, str] = {}

    def add_table(self, title: str, markdown: str) -> None:
        """Attach ``markdown`` to the report under ``title`` (a newer one replaces it)."""
        self.tables[title] = markdown

    def add(self, result: Result) -> None:
        old = self.results.get(result.id)
        if old is not None and result.status == NOT_MEASURED and old.status != NOT_MEASURED:
            return
        self.results[result.id] = result

    def ingest(self, path: str | Path) -> int:
        """Merge a results JSON written elsewhere (e.g. by a phone run); returns how many."""
        path = Path(path)
        try:
            data = json.loads(path.read_text())
            items = data["results"]
            results = [Result(**item) for item in items]
            tables = {str(title): str(text) for title, text in data.get("tables", {}).items()}
        except (OSError, json.JSONDecodeError, KeyError, TypeError, ValueError) as error:
            raise ValueError(
                f"{path}: not a sam3spec results file ({{'results': [{{id, status, measured, ...}}]}}): {error}"
            ) from error
        for result in results:
            result.context.setdefault("ingested_from", str(path))
            self.add(result)
        self.tables.update(tables)
        return len(results)

    def to_json(self, path: str | Path) -> None:
        payload: dict[str, Any] = {
            "results": [asdict(result) for result in sorted(self.results.values(), key=lambda r: r.id)]
        }
        if self.tables:
            payload["tables"] = dict(self.tables)
        atomic_write_text(path, json.dumps(payload, indent=2, sort_keys=True) + "\n")

    @classmethod
    def from_json(cls, path: str | Path) -> ResultStore:
        store = cls()
        store.ingest(path)
        for result in store.results.values():
            if result.context.get("ingested_from") == str(path):
                del result.context["ingested_from"]
        return store
