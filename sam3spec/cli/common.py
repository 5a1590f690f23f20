"""Small helpers every command shares: errors, ``--set`` overrides, JSON output, threads."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any


def fail(message: object, status: int = 2) -> int:
    """Print ``error: message`` to stderr; returns ``status`` (2: bad input, the usual)."""
    print(f"error: {message}", file=sys.stderr)
    return status


def note(message: str) -> None:
    print(f"note: {message}", file=sys.stderr)


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
