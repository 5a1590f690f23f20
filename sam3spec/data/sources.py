"""What a training ``--data`` root holds, and the weight it has in a mix of several roots.

A root is read as the first of these that fits:

1. a data root (:mod:`sam3spec.data.layout`) with SA-Co train files: ``saco/train/*.json``, one
   dataset per file (a Gold triple: one, annotator a), images in ``sa1b/train/``;
2. a data root without them: the SA-1B pairs of ``sa1b/train/`` (never ``sa1b/eval/``, the
   held-out images);
3. an SA-1B folder: ``sa_*.json`` (+ ``sa_*.jpg``) directly in it, or only SA-1B pairs under it;
4. an SA-Co folder: SA-Co files (COCO-like JSON whose pairs carry ``text_input``, Gold or Silver)
   anywhere under it, each reading its images relative to its own folder, as ``sam3spec data
   verify`` does.

Several roots mix by weight (``ROOT:WEIGHT`` on the command line, :meth:`DataSource.parse`): a
root's share of each epoch's samples is its weight over the sum of the weights.

A video stage reads SA-V train videos instead (:func:`video_training_folder`).

Importing this module imports no torch (the command line parses ``--data`` before loading it).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from sam3spec.data.layout import DataLayout

if TYPE_CHECKING:
    from sam3spec.data.faults import FaultLog

SA1B_JSON = re.compile(r"^sa_\d+\.json$")


class TrainingDataError(ValueError):
    """Data that cannot train a stage (nothing found, nothing usable); the message names the root."""


@dataclass(frozen=True)
class DataSource:
    """One training root and its weight in a mix.

    Attributes:
        root: a data root, an SA-1B folder or an SA-Co folder.
        weight: its share of each epoch relative to the other roots' weights (> 0).
    """

    root: Path
    weight: float = 1.0

    def __post_init__(self) -> None:
        if not (math.isfinite(self.weight) and self.weight > 0):
            raise ValueError(f"data weight of {self.root} must be > 0, got {self.weight}")

    @classmethod
    def parse(cls, text: str | Path) -> DataSource:
        """``ROOT`` or ``ROOT:WEIGHT`` (a tail after the last ``:`` that is not a number is part of
        the path)."""
        head, separator, tail = str(text).rpartition(":")
        if separator and head:
            try:
                weight = float(tail)
            except ValueError:
                return cls(Path(text))
            return cls(Path(head), weight)
        return cls(Path(text))


def data_sources(data: str | Path | DataSource | Sequence[str | Path | DataSource]) -> list[DataSource]:
    """``data`` as a list of sources (a path or a source alone is one source of weight 1)."""
    items = [data] if isinstance(data, (str, Path, DataSource)) else list(data)
    if not items:
        raise TrainingDataError("no training data given")
    return [item if isinstance(item, DataSource) else DataSource(Path(item)) for item in items]


@dataclass(frozen=True)
class TrainingFiles:
    """What one root gives training.

    Attributes:
        root: the root.
        saco: ``(annotation files, image folder)`` per SA-Co dataset (one Silver file, or a Gold
            triple a, b, c read as annotator a).
        sa1b: the SA-1B folder, when the root is SA-1B data (then ``saco`` is empty).
    """

    root: Path
    saco: tuple[tuple[tuple[Path, ...], Path], ...] = ()
    sa1b: Path | None = None

    @property
    def has_phrases(self) -> bool:
        return bool(self.saco)

    def annotation_files(self) -> list[Path]:
        return [path for files, _ in self.saco for path in files]


def training_files(root: str | Path, log: FaultLog | None = None) -> TrainingFiles:
    """What ``root`` holds for training (see the module docstring for the order).

    Args:
        root: the ``--data`` folder.
        log: where unreadable JSON files met while looking for SA-Co files are recorded.

    Raises:
        TrainingDataError: ``root`` is not a folder, or holds none of the layouts.
    """
    from sam3spec.data.saco import saco_file_groups  # (imports torch: this module does not)

    root = Path(root)
    if not root.is_dir():
        raise TrainingDataError(f"--data {root}: no such folder")
    layout = DataLayout.of(root)
    files = layout.saco_files("train")
    if files:
        groups = saco_file_groups(files, log, read=False)
        return TrainingFiles(root, tuple((tuple(paths), layout.sa1b_train) for _, paths in groups))
    if layout.is_data_root():
        if not layout.sa1b_train.is_dir():
            raise TrainingDataError(
                f"--data {root}: a data root without training images (no saco/train/*.json, no sa1b/train/)"
            )
        return TrainingFiles(root, sa1b=layout.sa1b_train)
    if next(root.glob("sa_*.json"), None) is not None:
        return TrainingFiles(root, sa1b=root)
    candidates = sorted(root.rglob("*.json"))
    groups = saco_file_groups(candidates, log)
    if groups:
        return TrainingFiles(root, tuple((tuple(paths), paths[0].parent) for _, paths in groups))
    if any(SA1B_JSON.match(path.name) for path in candidates):
        return TrainingFiles(root, sa1b=root)
    raise TrainingDataError(
        f"--data {root}: no training samples; expected a data root (saco/train/*.json or sa1b/train/), "
        "an SA-1B folder (sa_*.jpg + sa_*.json) or an SA-Co folder (*.json whose images[] carry text_input)"
    )


def video_training_folder(root: str | Path) -> Path:
    """The folder of SA-V train videos a video stage reads from ``--data`` (a quick look, no torch).

    ``root`` is a data root (its ``sav/train/``, e.g. a concept world) or a plain SA-V train folder
    as released: ``sav_*.mp4`` with ``sav_*_manual.json`` beside it, at any depth
    (``sav_train/sav_000/sav_000001.mp4``). The annotations are read later, by the stage.

    Raises:
        TrainingDataError: ``root`` is not a folder, or holds no SA-V train video (one line naming
            ``--data`` and the layout expected; SA-V's val / test layout is named as such).
    """
    root = Path(root)
    if not root.is_dir():
        raise TrainingDataError(f"--data {root}: no such folder")
    layout = DataLayout.of(root)
    folder = layout.sav_train if layout.is_data_root() else root
    if layout.is_data_root() and not folder.is_dir():
        raise TrainingDataError(f"--data {root}: a data root without SA-V train videos (no sav/train/)")
    if any(
        path.with_name(path.name[: -len("_manual.json")] + ".mp4").is_file()
        for path in folder.rglob("sav_*_manual.json")
    ):
        return folder
    if next(folder.rglob("JPEGImages_24fps"), None) is not None:
        raise TrainingDataError(
            f"--data {root}: SA-V's val / test layout (JPEGImages_24fps + Annotations_6fps); video "
            "training reads the train layout, sav_*.mp4 + sav_*_manual.json"
        )
    raise TrainingDataError(
        f"--data {root}: no SA-V train videos; expected sav_*.mp4 with sav_*_manual.json beside it "
        "(SA-V's sav_train/sav_NNN/ layout) or a data root with sav/train/"
    )
