"""Atomic writes: a temporary file (or folder) in the same folder, then ``os.replace`` over the
target, so a reader (or a run killed mid-write) never sees half a file. Standard library only: the
teacher, evaluation and distillation code all write their metadata through it, and checkpoints
their folders."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable
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


def atomic_write_folder(directory: Path, write: Callable[[Path], None]) -> Path:
    """Fill a temporary folder next to ``directory`` with ``write(folder)``, then put it in place
    of ``directory`` (an existing one is replaced); creates the parent folder. Returns ``directory``.

    A process killed while writing leaves ``directory`` as it was (plus a ``.*.tmp`` folder)."""
    directory = Path(directory)
    directory.parent.mkdir(parents=True, exist_ok=True)
    temporary = Path(tempfile.mkdtemp(dir=directory.parent, prefix=f".{directory.name}.", suffix=".tmp"))
    try:
        write(temporary)
        if directory.exists():
            old = directory.with_name(f".{directory.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            os.replace(directory, old)
            os.replace(temporary, directory)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(temporary, directory)
    except BaseException:
        shutil.rmtree(temporary, ignore_errors=True)
        raise
    return directory
