"""The one image loader: any file Pillow reads -> ``[H, W, 3]`` uint8 RGB, or a one-line error.

Every command that reads an image goes through :func:`load_image` (``segment``, ``teacher run``,
``eval visual-qa``, export calibration) or :func:`sam3spec.data.files.read_image` (the dataset
loaders), which calls it. What it does, and why:

* **EXIF orientation** (user images): a phone photo is stored sideways with an orientation tag;
  ``PIL.ImageOps.exif_transpose`` turns it the way every viewer shows it. Dataset loaders do
  *not* apply it (``orient=False``): SA-1B / SA-Co / SA-V annotations are in the stored pixel
  grid, which is what SAM 3's own data loader reads (``Image.open(...).convert("RGB")``).
* **16-bit** (PNG ``I;16`` / ``I``, TIFF): scaled from 0-65535 to 0-255. Pillow's
  ``convert("RGB")`` clips instead, which turns a 16-bit photo all white.
  Float images (``F``) are taken as 0-1 when they fit, else as 16-bit.
* **palette / grayscale / alpha**: palette (``P``, ``PA``), grayscale (``L``, ``LA``, ``1``),
  CMYK and the like become RGB; transparent pixels are composited over white (what a viewer
  shows; the colour stored under a transparent pixel is arbitrary, often black).
* **very large images** (``max_side``): downscaled so the longest side is at most
  :data:`MAX_SIDE` px before any model sees them. Every model here resizes its input to at most
  1008 px, so more resolution adds nothing the model can see, while full-size masks
  (``[queries, H, W]``) and overlays of a 50-megapixel photo cost gigabytes. JPEGs are decoded
  at a reduced scale directly (``Image.draft``). Dataset loaders keep the stored size
  (``max_side=None``): their masks are at that size.
* **errors**: a missing, empty, truncated, corrupt or non-image file raises
  :class:`ImageReadError` (a :class:`~sam3spec.data.faults.DataFault` for the loaders, and a
  ``ValueError`` for the commands) whose message names the file and what was expected.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from sam3spec.data.faults import MISSING_FILE, TRUNCATED_IMAGE, UNREADABLE_IMAGE, DataFault, Problem

MAX_SIDE = 4096
"""Longest side, in pixels, an image keeps when it is read for a model (``max_side``)."""
EXPECTED = "expected an image file Pillow can read (JPEG, PNG, WebP, TIFF, BMP, ...)"

# A JPEG ends with the EOI marker; libjpeg decodes a file cut just before it without complaint.
_JPEG_SOI = b"\xff\xd8"
_JPEG_EOI = b"\xff\xd9"
_SIXTEEN_BIT = ("I;16", "I;16B", "I;16L", "I;16N", "I")
_WITH_ALPHA = ("RGBA", "LA", "PA", "RGBa", "La")


class ImageReadError(DataFault, ValueError):
    """An image file that cannot be read: names the file, the fault kind and what was expected."""

    def __init__(self, path: str | Path, kind: str, detail: str) -> None:
        super().__init__(Problem(str(path), kind, detail=detail))
        self.path = str(path)

    def __str__(self) -> str:
        problem = self.problems[0]
        return f"cannot read image {problem.path}: {problem.detail}"


def _sixteen_bit_to_uint8(image: Image.Image) -> np.ndarray:
    values = np.asarray(image, dtype=np.float64)
    if image.mode == "F" and values.size and np.nanmax(values) <= 1.0:
        values = values * 255.0
    else:  # 0-65535 -> 0-255 (65535 / 257 = 255 exactly)
        values = values / 257.0
    return np.clip(np.rint(np.nan_to_num(values)), 0, 255).astype(np.uint8)


def to_rgb(image: Image.Image) -> np.ndarray:
    """A decoded Pillow image of any mode -> ``[H, W, 3]`` uint8 RGB (see the module docstring)."""
    if image.mode in _SIXTEEN_BIT or image.mode == "F":
        gray = _sixteen_bit_to_uint8(image)
        return np.repeat(gray[..., None], 3, axis=2)
    if image.mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")
    elif image.mode == "PA":
        image = image.convert("RGBA")
    if image.mode in _WITH_ALPHA:
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        image = Image.alpha_composite(background, rgba)
    return np.asarray(image.convert("RGB"))


def _downscaled(rgb: np.ndarray, max_side: int | None) -> np.ndarray:
    height, width = rgb.shape[:2]
    if max_side is None or max(height, width) <= max_side:
        return rgb
    scale = max_side / max(height, width)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return np.asarray(Image.fromarray(rgb).resize(size, Image.Resampling.LANCZOS, reducing_gap=2.0))


def _draft(image: Image.Image, max_side: int) -> None:
    """Let libjpeg decode a large JPEG at 1/2, 1/4 or 1/8 scale, never below the target size."""
    scale = max_side / max(image.size)
    if image.format == "JPEG" and scale < 1:
        image.draft(image.mode, (max(1, round(image.width * scale)), max(1, round(image.height * scale))))


def decode_image(
    data: bytes, path: str | Path, orient: bool = True, max_side: int | None = MAX_SIDE
) -> np.ndarray:
    """:func:`load_image` on bytes already read (``path`` names them in errors)."""
    if not data:
        raise ImageReadError(path, UNREADABLE_IMAGE, f"the file is empty; {EXPECTED}")
    if data[:2] == _JPEG_SOI and _JPEG_EOI not in data[-64:]:
        raise ImageReadError(path, TRUNCATED_IMAGE, "JPEG is truncated (no end-of-image marker)")
    try:
        with Image.open(io.BytesIO(data)) as image:
            if max_side is not None:
                _draft(image, max_side)
            image.load()
            if orient:
                image = ImageOps.exif_transpose(image)
            return _downscaled(to_rgb(image), max_side)
    except UnidentifiedImageError as error:
        raise ImageReadError(path, UNREADABLE_IMAGE, f"not an image; {EXPECTED}") from error
    except Image.DecompressionBombError as error:
        raise ImageReadError(path, UNREADABLE_IMAGE, f"too many pixels to decode safely ({error})") from error
    except OSError as error:
        kind = TRUNCATED_IMAGE if "truncated" in str(error) else UNREADABLE_IMAGE
        raise ImageReadError(path, kind, f"corrupt image data ({error})") from error
    except (ValueError, SyntaxError) as error:  # PIL raises these for some corrupt headers
        raise ImageReadError(path, UNREADABLE_IMAGE, f"corrupt image header ({error})") from error


def load_image(path: str | Path, orient: bool = True, max_side: int | None = MAX_SIDE) -> np.ndarray:
    """Read an image file for a model.

    Args:
        path: any image file Pillow reads.
        orient: apply the EXIF orientation tag (user images; datasets: False).
        max_side: downscale so the longest side is at most this (None: keep the stored size).

    Returns:
        ``[H, W, 3]`` uint8 RGB.

    Raises:
        ImageReadError: missing, empty, truncated, corrupt or not an image (the message names
            the file).
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError as error:
        raise ImageReadError(path, MISSING_FILE, "file not found") from error
    except IsADirectoryError as error:
        raise ImageReadError(path, UNREADABLE_IMAGE, f"is a directory; {EXPECTED}") from error
    except OSError as error:
        raise ImageReadError(path, UNREADABLE_IMAGE, f"{error.strerror or error}") from error
    return decode_image(data, path, orient, max_side)
