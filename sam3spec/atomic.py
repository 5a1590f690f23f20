"""Atomic writes: a temporary file (or folder) in the same folder, then ``os.replace`` over the
target, so a reader (or a run killed mid-write) never sees half a file. Standard library only: the
teacher, evaluation and distillation code all write their metadata through it, and checkpoints
their folders."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
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
    with atomic_directory(directory) as temporary:
        write(temporary)
    return Path(directory)


@contextmanager
def atomic_directory(directory: Path, keep: Callable[[str], bool] | None = None) -> Iterator[Path]:
    """A temporary folder next to ``directory`` to write a whole tree into; put in place of
    ``directory`` when the block ends normally.

    On an exception (Ctrl-C included) the temporary folder is deleted and ``directory`` is left as
    it was: a reader sees nothing, or the previous complete tree, never half of one. A process
    killed outright can leave a ``.NAME.*.tmp`` folder beside it, never a partial ``directory``.

    Args:
        directory: the folder to write (its parent is created).
        keep: entry names of an existing ``directory`` to carry over into the new one (e.g. a
            user's notes next to generated trees); everything else of the old folder is replaced.

    Yields:
        The temporary folder (same file system, so the final rename is atomic).

    Raises:
        ValueError: ``directory`` is the working folder or one above it (it cannot be swapped).
    """
    directory = Path(os.path.abspath(directory))
    working = Path.cwd()
    if directory == working or directory in working.parents:
        raise ValueError(f"{directory}: is the working folder (or holds it); write into a new folder")
    directory.parent.mkdir(parents=True, exist_ok=True)
    temporary = Path(tempfile.mkdtemp(dir=directory.parent, prefix=f".{directory.name}.", suffix=".tmp"))
    mask = os.umask(0)
    os.umask(mask)
    os.chmod(temporary, 0o777 & ~mask)  # mkdtemp's folder is private (0700); the output is not
    try:
        yield temporary
    except BaseException:
        shutil.rmtree(temporary, ignore_errors=True)
        raise
    if not directory.exists():
        os.replace(temporary, directory)
        return
    old = temporary.with_name(f"{temporary.name}.old")
    os.replace(directory, old)
    os.replace(temporary, directory)
    # Kept entries move after the swap: until then they sit in the old folder, never in one
    # that an error would delete.
    for entry in old.iterdir() if keep is not None else ():
        if keep(entry.name) and not (directory / entry.name).exists():
            os.replace(entry, directory / entry.name)
    shutil.rmtree(old, ignore_errors=True)
