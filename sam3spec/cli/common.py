"""Small helpers every command shares: errors, checked argument types, ``--set`` overrides,
JSON output, output folders, threads."""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import Any

from sam3spec.cli.errors import UsageError


def fail(message: object, status: int = 2) -> int:
    """Print ``error: message`` to stderr; returns ``status`` (2: bad input, the usual)."""
    print(f"error: {message}", file=sys.stderr)
    return status


def note(message: str) -> None:
    print(f"note: {message}", file=sys.stderr)


def warn(message: str) -> None:
    print(f"warning: {message}", file=sys.stderr)


def _integer_at_least(text: str, minimum: int) -> int:
    try:
        value = int(text)
    except ValueError:
        value = minimum - 1
    if value < minimum:
        raise argparse.ArgumentTypeError(f"expected an integer >= {minimum}, got {text!r}")
    return value


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1."""
    return _integer_at_least(text, 1)


def non_negative_int(text: str) -> int:
    """argparse type: an integer >= 0."""
    return _integer_at_least(text, 0)


def probability(text: str) -> float:
    """argparse type: a number in [0, 1] (NaN and infinities refused)."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not 0.0 <= value <= 1.0:  # also false for NaN
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1], got {text!r}")
    return value


def _numbers(text: str, count: tuple[int, ...], what: str) -> list[float]:
    try:
        values = [float(part) for part in text.split(",")]
    except ValueError:
        values = []
    if len(values) not in count or not all(math.isfinite(v) for v in values):
        raise argparse.ArgumentTypeError(f"expected {what} (finite numbers), got {text!r}")
    return values


def box_xyxy(text: str) -> tuple[float, float, float, float]:
    """argparse type: ``x0,y0,x1,y1`` in pixels with x0 < x1 and y0 < y1 (checked against the
    image's size by the command)."""
    x0, y0, x1, y1 = _numbers(text, (4,), "x0,y0,x1,y1 pixels")
    if not (x0 < x1 and y0 < y1):
        raise argparse.ArgumentTypeError(f"expected x0 < x1 and y0 < y1, got {text!r}")
    return x0, y0, x1, y1


def point_xy(text: str) -> tuple[float, float, int]:
    """argparse type: ``x,y`` or ``x,y,label`` (label 1 positive, the default, or 0 negative)."""
    values = _numbers(text, (2, 3), "x,y or x,y,label pixels")
    label = 1 if len(values) == 2 else values[2]
    if label not in (0, 1):
        raise argparse.ArgumentTypeError(f"expected label 1 (positive) or 0 (negative), got {text!r}")
    return values[0], values[1], int(label)


def replaceable_output(path: Path, marker: str, option: str = "--out") -> Path:
    """``path`` as an output folder a command replaces as a whole (written atomically): it must not
    exist, be empty, or hold ``marker`` (a previous output of the same command).

    Raises:
        UsageError: ``path`` is a file, or a folder holding something else.
    """
    if path.exists() and not path.is_dir():
        raise UsageError(f"{option} {path}: is a file; expected a folder (it is created)")
    if path.is_dir() and any(path.iterdir()) and not (path / marker).exists():
        raise UsageError(
            f"{option} {path}: folder holds other files (no {marker}); expected a new or empty folder, "
            "or an earlier output of this command (replaced)"
        )
    return path


def parse_value(text: str) -> Any:
    """A ``--set`` value: JSON when it parses as JSON (numbers, true, null, lists), else the string."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def parse_overrides(changes: list[str]) -> dict[str, Any]:
    """``["a.b=1", ...]`` (``--set``) -> ``{"a.b": 1}``, values parsed as JSON when they are JSON."""
    parsed = {}
    for item in changes:
        key, separator, value = item.partition("=")
        if not separator:
            raise ValueError(f"--set expects key=value, got {item!r}")
        parsed[key] = parse_value(value)
    return parsed


def add_set_option(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help=what)


def write_json(data: Any, path: Path | None) -> None:
    """Write ``data`` as JSON to ``path`` atomically (nothing when ``path`` is None)."""
    if path is None:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text(json.dumps(data, indent=2, allow_nan=True, default=str) + "\n", encoding="utf-8")
    temporary.replace(path)


def set_threads(threads: int | None) -> None:
    if threads:
        import torch

        torch.set_num_threads(threads)


def shipped_teacher() -> Path:
    """The concept-world teacher shipped with the package (the default ``--teacher``)."""
    from sam3spec.world.teacher import shipped_teacher_path

    return shipped_teacher_path()


def teacher_or_shipped(value: str | Path | None) -> str:
    """``--teacher``: a folder or hub id as given; None / ``default`` -> the shipped world teacher."""
    return str(shipped_teacher()) if value in (None, "", "default") else str(value)
