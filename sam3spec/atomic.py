"""Atomic JSON writes: a temporary file in the same folder, then ``os.replace`` over the target,
so a reader (or a run killed mid-write) never sees half a file. Standard library only: the
teacher, evaluation and distillation code all write their metadata through it."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any


def atomic_write_json(data: Any, path: Path, indent: int | None = 1, sort_keys: bool = True) -> None:
    """Write JSON to a temporary file, then rename it over ``path`` (``indent`` / ``sort_keys`` as
    ``json.dumps``); creates the parent folder."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temporary.write_text(json.dumps(data, indent=indent, sort_keys=sort_keys) + "\n", encoding="utf-8")
    os.replace(temporary, path)
