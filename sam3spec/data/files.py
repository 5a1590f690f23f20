"""Reading images, masks and JSON so that every failure becomes a named :class:`DataFault`.

Library errors (PIL's ``OSError``, ``json.JSONDecodeError``, ...) are translated here, once, into
the fault kinds of :mod:`sam3spec.data.faults`; loaders never catch bare exceptions.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from sam3spec.data.faults import (
    BAD_JSON,
    MISSING_FILE,
    MISSING_JSON,
    TRUNCATED_IMAGE,
    UNREADABLE_IMAGE,
    DataFault,
    Problem,
)
from sam3spec.data.image_io import load_image


def read_json(path: str | Path, missing_kind: str = MISSING_JSON) -> Any:
    """Parse a JSON file.

    Raises:
        DataFault: ``missing_kind`` if the file does not exist, ``bad_json`` if it does not parse.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as error:
        raise DataFault(Problem(str(path), missing_kind, detail="file not found")) from error
    except (OSError, UnicodeDecodeError) as error:
        raise DataFault(Problem(str(path), BAD_JSON, detail=str(error))) from error
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise DataFault(Problem(str(path), BAD_JSON, detail=f"line {error.lineno}: {error.msg}")) from error


def read_image(path: str | Path) -> np.ndarray:
    """Decode a dataset image fully (a truncated payload only shows when decoding).

    :func:`sam3spec.data.image_io.load_image` at the stored size and orientation (annotations are
    in that pixel grid, as SAM 3's loader reads it): 16-bit, palette, grayscale and alpha images
    become RGB the same way as for every command.

    Args:
        path: a JPEG or PNG file.

    Returns:
        ``[H, W, 3]`` uint8 RGB.

    Raises:
        DataFault: ``missing_file``, ``truncated_image`` or ``unreadable_image``
            (an :class:`~sam3spec.data.image_io.ImageReadError`).
    """
    return load_image(path, orient=False, max_side=None)


def read_binary_mask(path: str | Path) -> np.ndarray:
    """Read a binary mask PNG (any mode; non-zero is foreground) as ``[H, W]`` bool."""
    path = Path(path)
    try:
        with Image.open(path) as image:
            image.load()
            return np.asarray(image) > 0
    except FileNotFoundError as error:
        raise DataFault(Problem(str(path), MISSING_FILE, detail="mask not found")) from error
    except (OSError, ValueError, SyntaxError) as error:
        kind = TRUNCATED_IMAGE if "truncated" in str(error) else UNREADABLE_IMAGE
        raise DataFault(Problem(str(path), kind, detail=str(error))) from error


def write_jpeg(path: str | Path, image: np.ndarray, quality: int) -> None:
    """Write ``[H, W, 3]`` uint8 as a baseline JPEG (Pillow's encoder is deterministic)."""
    Image.fromarray(image).save(path, format="JPEG", quality=quality, optimize=False, progressive=False)


def write_binary_mask(path: str | Path, mask: np.ndarray) -> None:
    """Write ``[H, W]`` bool as an 8-bit PNG with values 0 / 255."""
    Image.fromarray(mask.astype(np.uint8) * 255).save(path, format="PNG", optimize=False)


def write_json(path: str | Path, data: Any) -> None:
    """Write compact JSON; key order is the dicts' insertion order, so output is reproducible."""
    Path(path).write_text(json.dumps(data, separators=(",", ":"), ensure_ascii=True), encoding="utf-8")
