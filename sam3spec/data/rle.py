"""COCO run-length encoding (RLE), the mask format of SA-1B, SA-Co and SA-V.

Thin wrappers over ``pycocotools.mask`` plus a strict validator. The validator exists because
pycocotools trusts its input: an empty ``counts`` string decodes to uninitialised memory, and
older releases decode a corrupt string into a wrong mask without complaint. Every loader
validates before decoding, so a malformed annotation becomes a reported problem, not a silently
wrong training target.

Masks are ``[H, W]`` (or ``[N, H, W]``) boolean numpy arrays; an RLE is the JSON form
``{"size": [H, W], "counts": str}`` (compressed) or ``{"size": [H, W], "counts": [int, ...]}``
(uncompressed, COCO ``iscrowd`` style).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from pycocotools import mask as mask_utils


class MalformedRLE(ValueError):
    """An RLE that does not describe a mask of its declared size."""


class SizeMismatch(ValueError):
    """An annotation whose size disagrees with its image or video."""


def encode(mask: np.ndarray) -> dict[str, Any]:
    """Encode one mask as JSON-ready compressed RLE.

    Args:
        mask: ``[H, W]`` bool or {0, 1} array.

    Returns:
        ``{"size": [H, W], "counts": str}``.
    """
    if mask.ndim != 2:
        raise ValueError(f"encode expects an [H, W] mask, got shape {mask.shape}")
    rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    return {"size": [int(rle["size"][0]), int(rle["size"][1])], "counts": rle["counts"].decode("ascii")}


def encode_many(masks: np.ndarray) -> list[dict[str, Any]]:
    """Encode ``[N, H, W]`` masks; returns N RLE dicts."""
    return [encode(mask) for mask in masks]


def _counts_from_string(counts: str) -> list[int]:
    """Parse pycocotools' compressed counts string (a 6-bit LEB128 variant with deltas).

    Mirrors ``rleFrString`` in pycocotools' ``maskApi.c`` but raises on anything it cannot parse.
    """
    values: list[int] = []
    position = 0
    length = len(counts)
    while position < length:
        value = 0
        shift = 0
        more = True
        while more:
            if position >= length:
                raise MalformedRLE("counts string ends inside a number")
            code = ord(counts[position]) - 48
            if not 0 <= code < 64:
                raise MalformedRLE(f"character {counts[position]!r} is outside the RLE alphabet")
            value |= (code & 0x1F) << (5 * shift)
            more = bool(code & 0x20)
            position += 1
            shift += 1
            if not more and code & 0x10:
                value |= -1 << (5 * shift)
        # From the third run on, each value is stored as a delta to the run two places back.
        if len(values) > 2:
            value += values[-2]
        values.append(value)
    return values


def run_lengths(rle: Mapping[str, Any]) -> tuple[tuple[int, int], list[int]]:
    """Validate an RLE and return its size and run lengths.

    Args:
        rle: ``{"size": [H, W], "counts": str | bytes | list[int]}``.

    Returns:
        ``((H, W), runs)`` where runs alternate background / foreground, starting with background.

    Raises:
        MalformedRLE: wrong structure, unparsable counts, negative runs, or runs that do not
            cover exactly ``H * W`` pixels.
    """
    if not isinstance(rle, Mapping):
        raise MalformedRLE(f"RLE must be a mapping, got {type(rle).__name__}")
    size = rle.get("size")
    if (
        not isinstance(size, Sequence)
        or len(size) != 2
        or not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in size)
    ):
        raise MalformedRLE(f"RLE size must be two non-negative integers [H, W], got {size!r}")
    counts = rle.get("counts")
    if isinstance(counts, bytes):
        try:
            counts = counts.decode("ascii")
        except UnicodeDecodeError as error:
            raise MalformedRLE("RLE counts bytes are not ASCII") from error
    if isinstance(counts, str):
        if not counts:
            raise MalformedRLE("RLE counts string is empty")
        runs = _counts_from_string(counts)
    elif isinstance(counts, list) and all(isinstance(v, int) and not isinstance(v, bool) for v in counts):
        runs = list(counts)
    else:
        raise MalformedRLE(f"RLE counts must be a string or a list of integers, got {type(counts).__name__}")
    if any(run < 0 for run in runs):
        raise MalformedRLE("RLE has a negative run length")
    height, width = int(size[0]), int(size[1])
    if sum(runs) != height * width:
        raise MalformedRLE(f"RLE runs cover {sum(runs)} pixels, size {height}x{width} needs {height * width}")
    return (height, width), runs


def validate(rle: Mapping[str, Any]) -> tuple[int, int]:
    """Validate an RLE (see :func:`run_lengths`); returns its ``(H, W)``."""
    return run_lengths(rle)[0]


def _to_coco(rle: Mapping[str, Any], height: int, width: int) -> dict[str, Any]:
    counts = rle["counts"]
    if isinstance(counts, list):
        # Uncompressed RLE: pycocotools converts it to its compressed form first.
        return mask_utils.frPyObjects({"size": [height, width], "counts": counts}, height, width)
    if isinstance(counts, str):
        counts = counts.encode("ascii")
    return {"size": [height, width], "counts": counts}


def decode(rle: Mapping[str, Any]) -> np.ndarray:
    """Validate and decode one RLE.

    Args:
        rle: an RLE dict.

    Returns:
        ``[H, W]`` bool mask.

    Raises:
        MalformedRLE: see :func:`run_lengths`.
    """
    height, width = validate(rle)
    return mask_utils.decode(_to_coco(rle, height, width)).astype(bool)


def decode_many(rles: Sequence[Mapping[str, Any]], height: int, width: int) -> np.ndarray:
    """Decode RLEs that must all be ``height x width``.

    Args:
        rles: N RLE dicts.
        height: expected mask height.
        width: expected mask width.

    Returns:
        ``[N, H, W]`` bool masks (``[0, H, W]`` for no RLEs).

    Raises:
        MalformedRLE: an RLE is malformed.
        SizeMismatch: an RLE's size is not ``(height, width)``.
    """
    masks = np.zeros((len(rles), height, width), dtype=bool)
    for index, rle in enumerate(rles):
        size = validate(rle)
        if size != (height, width):
            raise SizeMismatch(f"RLE {index} is {size[0]}x{size[1]}, expected {height}x{width}")
        masks[index] = mask_utils.decode(_to_coco(rle, height, width)).astype(bool)
    return masks


def area(rle: Mapping[str, Any]) -> int:
    """Foreground pixel count of a valid RLE (odd runs), without decoding."""
    _, runs = run_lengths(rle)
    return int(sum(runs[1::2]))


def bbox_xywh(mask: np.ndarray) -> list[float]:
    """COCO box of a mask: ``[x, y, w, h]`` in pixels, ``w = x_max - x_min + 1``; zeros if empty."""
    rows = np.flatnonzero(mask.any(axis=1))
    cols = np.flatnonzero(mask.any(axis=0))
    if rows.size == 0:
        return [0.0, 0.0, 0.0, 0.0]
    return [float(cols[0]), float(rows[0]), float(cols[-1] - cols[0] + 1), float(rows[-1] - rows[0] + 1)]
