"""The data-root layout: one folder holding SA-1B, SA-Co and SA-V trees side by side.

Training, caching, evaluation and verification accept either a single dataset folder (an SA-1B
folder of ``sa_*.jpg`` + ``sa_*.json`` pairs, an SA-V folder) or a *data root* laid out as::

    root/
        sa1b/train/   sa_*.jpg + sa_*.json   SA-1B pairs; also the images of saco/train
        sa1b/eval/    sa_*.jpg + sa_*.json   the images of saco/eval (held out)
        saco/train/   *.json                 SA-Co files with phrases (Silver style, one annotator)
        saco/eval/    gold_*_{a,b,c}_*.json  an SA-Co Gold triple (three annotators, same pairs)
        sav/train/    sav_*.mp4 + sav_*_manual.json        SA-V train layout
        sav/val/      sav_val.txt, JPEGImages_24fps/, Annotations_6fps/   SA-V val layout

The embedded concept world is written in this layout (``sam3spec data generate``); real data can
be arranged in it with symbolic links. An SA-Co file under ``saco/<split>/`` reads its images from
``sa1b/<split>/``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

SPLIT_IMAGES = {"train": "train", "eval": "eval"}


@dataclass(frozen=True)
class DataLayout:
    """Where each tree of a data root is (the folders need not exist).

    Attributes:
        root: the data root.
    """

    root: Path

    @classmethod
    def of(cls, root: str | Path) -> DataLayout:
        return cls(Path(root))

    @property
    def sa1b_train(self) -> Path:
        return self.root / "sa1b" / "train"

    @property
    def sa1b_eval(self) -> Path:
        return self.root / "sa1b" / "eval"

    @property
    def sav_train(self) -> Path:
        return self.root / "sav" / "train"

    @property
    def sav_val(self) -> Path:
        return self.root / "sav" / "val"

    def saco_files(self, split: str) -> list[Path]:
        """The SA-Co files of ``split`` (``train`` / ``eval``), sorted by name (a Gold triple
        ``*_a_*``, ``*_b_*``, ``*_c_*`` in annotator order)."""
        if split not in SPLIT_IMAGES:
            raise ValueError(f"split must be one of {sorted(SPLIT_IMAGES)}, got {split!r}")
        folder = self.root / "saco" / split
        return sorted(folder.glob("*.json")) if folder.is_dir() else []

    def image_folder(self, saco_file: str | Path) -> Path | None:
        """The image folder of an SA-Co file inside this root (``saco/<split>/x.json`` ->
        ``sa1b/<split>/``), or None when the file is not in one of the root's SA-Co folders."""
        parent = Path(saco_file).parent
        for split, images in SPLIT_IMAGES.items():
            if parent == self.root / "saco" / split:
                return self.root / "sa1b" / images
        return None

    def is_data_root(self) -> bool:
        """True when the folder holds at least one of the layout's trees."""
        return any((self.root / tree).is_dir() for tree in ("sa1b", "saco", "sav"))


def check_training_data(data: str | Path) -> None:
    """Refuse ``data`` when it cannot hold anything to train on, before a run folder is written (a
    quick look, no torch; :func:`sam3spec.data.sources.training_files` reads what it holds).

    Raises:
        FileNotFoundError: naming ``--data`` and what a data folder must hold.
    """
    root = Path(data)
    expected = (
        "a data root (saco/train/*.json or sa1b/train/), an SA-1B folder (sa_*.jpg + sa_*.json) or an "
        "SA-Co folder (*.json)"
    )
    if not root.is_dir():
        raise FileNotFoundError(f"--data {root}: no such folder; expected {expected}")
    if not DataLayout.of(root).is_data_root() and next(root.rglob("*.json"), None) is None:
        raise FileNotFoundError(f"--data {root}: no training samples; expected {expected}")
