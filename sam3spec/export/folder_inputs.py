"""Export inputs from a folder of the user's own images and a vocabulary (``--calibration DIR``).

Static int8 recipes calibrate their activation ranges on images; the ranges should be those of
the images the app will see, so a user calibrates on a folder of them (photos, an SA-1B or
SA-Co image folder) rather than on the concept world's coloured shapes. The same images, paired
with phrases of the vocabulary, are the parity samples; the vocabulary is also the text table's.
:class:`ImageFolderInputs` is an :class:`~sam3spec.export.artifacts.InputSource`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
MAX_IMAGES = 64  # calibrating on more changes little and costs a forward per image and method


def folder_images(folder: str | Path, limit: int = MAX_IMAGES) -> list[Path]:
    """The first ``limit`` images under ``folder`` (recursive, sorted by path).

    Raises:
        FileNotFoundError: not a folder, or no ``.jpg`` / ``.jpeg`` / ``.png`` file in it.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"--calibration {folder}: no such folder")
    images = sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not images:
        raise FileNotFoundError(f"--calibration {folder}: no .jpg / .jpeg / .png images in it")
    return images[:limit]


@dataclass(frozen=True)
class ImageFolderInputs:
    """Calibration images from a folder, phrases from a vocabulary.

    Calibration: the folder's first ``max_images`` images (sorted by path), letterboxed as the
    predictor does; parity: ``PARITY_SAMPLES`` (image, phrase) samples, image ``i`` (cycled) with
    phrases spread over the vocabulary (:func:`parity_phrases`); phrases: ``phrases`` (calibration of ``encode_text`` / ``decode``, and the
    text table's vocabulary).

    Attributes:
        folder: the image folder.
        phrases: the vocabulary (at least one phrase).
        max_images: at most this many calibration images.
    """

    folder: Path
    phrases: tuple[str, ...]
    max_images: int = MAX_IMAGES

    def __post_init__(self) -> None:
        if not self.phrases:
            raise ValueError("export inputs: the vocabulary holds no phrase")

    @property
    def key(self) -> str:
        """The folder, its chosen files (names and sizes) and the phrases, hashed."""
        digest = hashlib.sha256("\n".join(self.phrases).encode())
        images = folder_images(self.folder, self.max_images)
        for path in images:
            digest.update(f"{path.relative_to(self.folder)}:{path.stat().st_size}".encode())
        return (
            f"image folder {Path(self.folder).resolve()} ({len(images)} images), "
            f"{len(self.phrases)} phrases ({digest.hexdigest()[:12]})"
        )

    def __call__(self, image_size: int):
        from sam3spec.export.pipeline import PARITY_SAMPLES, ExportInputs, letterboxed_images

        images = letterboxed_images(folder_images(self.folder, self.max_images), image_size)
        phrases = parity_phrases(self.phrases, PARITY_SAMPLES)
        parity = [(images[i % len(images)], phrase) for i, phrase in enumerate(phrases)]
        return ExportInputs(calibration=images, parity=parity, phrases=list(self.phrases), source=self.key)


def parity_phrases(phrases: Sequence[str], count: int) -> list[str]:
    """``count`` phrases spread over the vocabulary (the first, then evenly spaced)."""
    if not phrases:
        return []
    step = max(1, len(phrases) // max(1, count))
    return [phrases[(i * step) % len(phrases)] for i in range(count)]
