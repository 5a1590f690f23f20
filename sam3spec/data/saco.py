"""SA-Co Gold / Silver: COCO-like files where each ``images[]`` entry is one (image, phrase) pair.

Layout (one JSON per subset; Gold ships three annotator files ``gold_<subset>_merged_{a,b,c}_*.json``
with the same pairs, Silver one ``silver_<subset>_merged_*.json``)::

    {"images": [{"id", "file_name", "text_input", "width", "height", "queried_category",
                 "is_instance_exhaustive", "is_pixel_exhaustive"}, ...],
     "annotations": [{"id", "image_id" (= pair id), "segmentation": RLE, "bbox": normalised xywh,
                      "area" (normalised), "category_id": 1, "iscrowd"}, ...],
     "categories": [{"id": 1, ...}]}

A pair with no annotation is a *negative* phrase. ``file_name`` is relative to an image folder
given separately (``image_root``).
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from sam3spec.data.annotations import decode_instances
from sam3spec.data.base import FaultTolerantDataset, Sample, subsample, to_image_tensor
from sam3spec.data.faults import BAD_ANNOTATION, BAD_JSON, SIZE_MISMATCH, DataFault, FaultLog, Problem
from sam3spec.data.files import read_image, read_json

ANNOTATORS = ("a", "b", "c")
GOLD_PATTERN = re.compile(r"^gold_(?P<subset>.+)_merged_(?P<annotator>[abc])_(?P<rest>.+)\.json$")


# JSON files that are never SA-Co files: SA-1B records, SA-V masklets, a concept world's manifest.
NOT_SACO = re.compile(r"^(sa_\d+|sav_.+_(manual|auto))\.json$|^world\.json$")


def _group_gold(paths: Iterable[Path]) -> dict[str, list[Path]]:
    found: dict[tuple[Path, str, str], dict[str, Path]] = defaultdict(dict)
    for path in sorted(paths):
        match = GOLD_PATTERN.match(path.name)
        if match:
            found[(path.parent, match["subset"], match["rest"])][match["annotator"]] = path
    triples = {}
    for (parent, subset, rest), by_annotator in sorted(found.items()):
        triples[subset] = [
            by_annotator.get(a, parent / f"gold_{subset}_merged_{a}_{rest}.json") for a in ANNOTATORS
        ]
    return triples


def gold_triples(directory: str | Path) -> dict[str, list[Path]]:
    """Group Gold files under ``directory`` (recursive) by subset.

    Returns:
        ``{subset: [path_a, path_b, path_c]}``; a missing annotator's path is where it should be
        (derived from a present sibling), so a loader can report it by name.
    """
    return _group_gold(Path(directory).rglob("gold_*_merged_*.json"))


def saco_file_groups(
    paths: Iterable[Path], log: FaultLog | None = None, read: bool = True
) -> list[tuple[str, list[Path]]]:
    """The SA-Co files among ``paths`` (JSON files): Gold triples grouped (``"saco-gold"``, annotator
    files a, b, c), any other COCO-like file whose pairs carry ``text_input`` alone (``"saco"``).

    Args:
        paths: candidate ``.json`` files (e.g. ``root.rglob("*.json")``).
        log: where unreadable JSON files are recorded (``bad_json``); None ignores them.
        read: open each non-Gold file to check it is an SA-Co file; False takes every one as such
            (files of a data root's ``saco/<split>/``: a Silver file can be hundreds of MB).
    """
    paths = sorted(paths)
    groups: list[tuple[str, list[Path]]] = [("saco-gold", files) for files in _group_gold(paths).values()]
    claimed = {p for _, files in groups for p in files}
    for path in paths:
        if path in claimed or NOT_SACO.match(path.name):
            continue
        if not read:
            groups.append(("saco", [path]))
            continue
        try:
            data = read_json(path)
        except DataFault as fault:
            if log is not None:
                log.extend(Problem(p.path, BAD_JSON, p.where, p.detail) for p in fault.problems)
            continue
        images = data.get("images") if isinstance(data, dict) else None
        if isinstance(images, list) and isinstance(data.get("annotations"), list):
            if not images or (isinstance(images[0], dict) and "text_input" in images[0]):
                groups.append(("saco", [path]))
    return groups


def _index_file(path: Path) -> tuple[list[dict[str, Any]], dict[Any, list[dict[str, Any]]], list[Problem]]:
    """Read one SA-Co file: its pair entries, annotations grouped by pair id, and bad entries."""
    data = read_json(path)
    if (
        not isinstance(data, dict)
        or not isinstance(data.get("images"), list)
        or not isinstance(data.get("annotations"), list)
    ):
        raise DataFault(Problem(str(path), BAD_ANNOTATION, detail="needs 'images' and 'annotations' lists"))
    problems, entries = [], []
    for position, entry in enumerate(data["images"]):
        ok = isinstance(entry, dict) and all(
            k in entry for k in ("id", "file_name", "text_input", "width", "height")
        )
        if ok and isinstance(entry["text_input"], str):
            entries.append(entry)
        else:
            problems.append(
                Problem(
                    str(path),
                    BAD_ANNOTATION,
                    f"image {position}",
                    "pair entry lacks id/file_name/text_input/width/height",
                )
            )
    grouped: dict[Any, list[dict[str, Any]]] = defaultdict(list)
    for annotation in data["annotations"]:
        grouped[annotation.get("image_id") if isinstance(annotation, dict) else None].append(annotation)
    return entries, grouped, problems


class SACoDataset(FaultTolerantDataset):
    """(image, noun phrase) pairs with all matching instances; negatives have none.

    Sample keys (raw): ``image`` ``[3, H, W]`` uint8, ``masks`` ``[N, H, W]`` bool (N = 0 for a
    negative), ``boxes_xyxy`` ``[N, 4]`` normalised, ``iscrowd`` ``[N]`` bool, ``phrase`` str,
    ``positive`` bool, ``is_instance_exhaustive`` / ``is_pixel_exhaustive`` bool, ``image_id``
    (the pair id, str), ``file_name``, ``source`` ``"saco"``, ``original_size`` (H, W).

    Args:
        annotation_files: one Silver file, or a Gold triple (a, b, c). Missing or unreadable files
            are reported and left out; the pairs come from ``annotation_files[annotator]`` (or
            the first readable file).
        image_root: folder the entries' ``file_name`` are relative to.
        annotator: which file's masks to return.
        include_negatives: keep pairs without annotations.
        max_masks: keep at most this many masks per pair.
        transform, prompts, seed, fault_log: see :class:`FaultTolerantDataset`.
    """

    def __init__(
        self,
        annotation_files: Sequence[str | Path],
        image_root: str | Path,
        annotator: int = 0,
        include_negatives: bool = True,
        max_masks: int | None = None,
        transform: Callable[[Sample], Sample] | None = None,
        prompts: Callable[[Sample, np.random.Generator], Sample] | None = None,
        seed: int = 0,
        fault_log: FaultLog | None = None,
    ) -> None:
        super().__init__(transform, prompts, seed, fault_log)
        self.files = [Path(p) for p in annotation_files]
        if not 0 <= annotator < len(self.files):
            raise ValueError(f"annotator {annotator} out of range for {len(self.files)} annotation file(s)")
        self.image_root = Path(image_root)
        self.max_masks = max_masks
        self.annotations: dict[Path, dict[Any, list[dict[str, Any]]]] = {}
        entries_by_file: dict[Path, list[dict[str, Any]]] = {}
        for path in self.files:
            try:
                entries, grouped, problems = _index_file(path)
            except DataFault as fault:
                self.faults.extend(fault.problems)
                continue
            self.faults.extend(problems)
            entries_by_file[path], self.annotations[path] = entries, grouped
        readable = [p for p in self.files if p in self.annotations]
        self.source_file = (
            self.files[annotator] if self.files[annotator] in self.annotations else (readable or [None])[0]
        )
        entries = entries_by_file.get(self.source_file, [])
        reference = {entry["id"] for entry in entries}
        for path in readable:  # the annotator files of a Gold subset must ask the same pairs
            ids = {entry["id"] for entry in entries_by_file[path]}
            if ids != reference:
                lacks, extra = sorted(reference - ids, key=repr), sorted(ids - reference, key=repr)
                self.faults.record(
                    Problem(
                        str(path),
                        BAD_ANNOTATION,
                        detail=f"pairs differ from {self.source_file.name}: lacks pair ids {lacks[:10]}, "
                        f"has extra pair ids {extra[:10]}",
                    )
                )
        grouped = self.annotations.get(self.source_file, {})
        self.entries = [e for e in entries if include_negatives or grouped.get(e["id"])]
        self._cached: tuple[Path, np.ndarray | DataFault] | None = None

    @classmethod
    def gold(cls, directory: str | Path, subset: str, image_root: str | Path, **kwargs: Any) -> SACoDataset:
        """The Gold triple of ``subset`` under ``directory``; missing annotator files are reported."""
        triples = gold_triples(directory)
        if subset not in triples:
            raise FileNotFoundError(f"no gold_{subset}_merged_[abc]_*.json under {directory}")
        return cls(triples[subset], image_root, **kwargs)

    def __len__(self) -> int:
        return len(self.entries)

    def positive(self, index: int) -> bool:
        """Whether pair ``index`` has at least one instance (read from the index; nothing decoded)."""
        return bool(self.annotations.get(self.source_file, {}).get(self.entries[index]["id"]))

    def _image(self, path: Path) -> np.ndarray:
        # Pairs of one image are consecutive: decode it once, fault or not.
        if self._cached is None or self._cached[0] != path:
            try:
                self._cached = (path, read_image(path))
            except DataFault as fault:
                self._cached = (path, fault)
        result = self._cached[1]
        if isinstance(result, DataFault):
            raise result
        return result

    def load(self, index: int, rng: np.random.Generator) -> Sample:
        entry = self.entries[index]
        image_path = self.image_root / entry["file_name"]
        image = self._image(image_path)
        height, width = image.shape[:2]
        if (entry["height"], entry["width"]) != (height, width):
            raise DataFault(
                Problem(
                    str(image_path),
                    SIZE_MISMATCH,
                    detail=f"image is {height}x{width}, pair {entry['id']} says {entry['height']}x{entry['width']}",
                )
            )
        annotations = self.annotations[self.source_file].get(entry["id"], [])
        masks, boxes = decode_instances(
            annotations, height, width, str(self.source_file), normalized_boxes=True
        )
        keep = subsample(len(masks), self.max_masks, rng)
        return {
            "image": to_image_tensor(image),
            "masks": torch.from_numpy(masks[keep]),
            "boxes_xyxy": torch.from_numpy(boxes[keep]),
            "iscrowd": torch.tensor([bool(annotations[i].get("iscrowd", 0)) for i in keep], dtype=torch.bool),
            "phrase": entry["text_input"],
            "positive": bool(len(masks)),
            "is_instance_exhaustive": bool(entry.get("is_instance_exhaustive", 0)),
            "is_pixel_exhaustive": bool(entry.get("is_pixel_exhaustive", 0)),
            "image_id": str(entry["id"]),
            "file_name": entry["file_name"],
            "source": "saco",
            "original_size": (height, width),
        }


@dataclass
class GoldImage:
    """One image of an SA-Co file with every phrase asked about it and their instances.

    Attributes:
        file_name: the image's ``file_name`` in the SA-Co file.
        image: ``[H, W, 3]`` uint8 RGB.
        phrases: the phrases asked about it (one per pair, in file order).
        instances: per phrase, ``[G, H, W]`` bool masks (G = 0 for a negative phrase).
    """

    file_name: str
    image: np.ndarray
    phrases: list[str]
    instances: list[np.ndarray]


def gold_images(
    gold_path: str | Path, image_root: str | Path, limit: int | None = None
) -> Iterator[GoldImage]:
    """Yield the images of an SA-Co file (sorted by file name) with their phrases and instances,
    for scoring predictors with the two-call API (:mod:`sam3spec.eval.predictors`) and for
    export parity. Strict: a missing image or a bad file raises (a :class:`DataFault`).

    Args:
        gold_path: an SA-Co file (one annotator of a Gold triple).
        image_root: the folder its ``file_name`` entries are relative to.
        limit: only the first ``limit`` images.
    """
    from sam3spec.data.rle import decode

    gold_path = Path(gold_path)
    if not gold_path.is_file():
        raise FileNotFoundError(f"SA-Co file {gold_path} not found")
    gold = read_json(gold_path)
    by_pair: dict[Any, list[dict]] = {}
    for annotation in gold["annotations"]:
        by_pair.setdefault(annotation["image_id"], []).append(annotation)
    by_file: dict[str, list[dict]] = {}
    for entry in gold["images"]:
        by_file.setdefault(entry["file_name"], []).append(entry)
    for count, (file_name, entries) in enumerate(sorted(by_file.items())):
        if limit is not None and count >= limit:
            return
        image = read_image(Path(image_root) / file_name)
        height, width = image.shape[:2]
        phrases, instances = [], []
        for entry in entries:
            masks = [decode(annotation["segmentation"]) for annotation in by_pair.get(entry["id"], [])]
            phrases.append(entry["text_input"])
            instances.append(
                np.stack(masks).astype(bool) if masks else np.zeros((0, height, width), dtype=bool)
            )
        yield GoldImage(file_name, image, phrases, instances)
