"""Is a file an ExecuTorch program? Checked before the runtime loads it (standard library only,
so a command can refuse a bad ``--pte`` before importing torch)."""

from __future__ import annotations

import re
from pathlib import Path

PTE_MAGIC = re.compile(rb"ET[0-9]{2}")  # flatbuffer file identifier of ExecuTorch's program schema


def check_pte_file(path: str | Path) -> Path:
    """Refuse a file that is not an ExecuTorch program before the runtime sees it.

    A ``.pte`` is a flatbuffer: 4 bytes of root offset, then the schema's file identifier
    (``ET12`` in ExecuTorch 1.x). The runtime itself aborts the whole process on some garbage
    (its C++ log of the bad bytes throws across pybind11), so the header is checked here.

    Raises:
        FileNotFoundError: no such file.
        ValueError: empty, or not an ExecuTorch flatbuffer.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file (expected an ExecuTorch program, .pte)")
    with path.open("rb") as handle:
        head = handle.read(8)
    if not head:
        raise ValueError(f"{path}: empty file (0 bytes); expected an ExecuTorch program (.pte)")
    if len(head) < 8 or not PTE_MAGIC.fullmatch(head[4:8]):
        raise ValueError(
            f"{path}: not an ExecuTorch program (.pte): bytes 4-8 are {head[4:8]!r}, expected b'ET12' "
            "(a file written by `sam3spec export` or ExecuTorch's to_executorch())"
        )
    return path
