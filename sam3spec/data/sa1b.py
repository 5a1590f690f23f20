"""SA-1B: ``sa_<id>.jpg`` + ``sa_<id>.json`` pairs, class-agnostic instance masks.

JSON layout (one file per image)::

    {"image": {"image_id", "width", "height", "file_name"},
     "annotations": [{"id", "segmentation": {"size": [H, W], "counts": str}, "bbox": [x, y, w, h],
                      "area", "predicted_iou", "point_coords": [[x, y]], "crop_box",
                      "stability_score"}, ...]}
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from sam3spec.data.annotations import decode_instances
from sam3spec.data.base import FaultTolerantDataset, Sample, subsample, to_image_tensor
from sam3spec.data.faults import BAD_ANNOTATION, MISSING_FILE, SIZE_MISMATCH, DataFault, FaultLog, Problem
from sam3spec.data.files import read_image, read_json


def find_pairs(root: str | Path) -> list[tuple[Path, Path]]:
    """``(image, json)`` paths of every ``sa_*`` stem under ``root`` (recursive, sorted).

    A stem with only one of the two files is still listed, so the loader reports the missing one.
    """
    root = Path(root)
    stems = sorted({p.with_suffix("") for pattern in ("sa_*.jpg", "sa_*.json") for p in root.rglob(pattern)})
    return [(stem.with_suffix(".jpg"), stem.with_suffix(".json")) for stem in stems]


def read_sa1b(image_path: Path, json_path: Path) -> dict[str, Any]:
    """Read and fully check one SA-1B pair.

    Returns:
        ``image [H, W, 3]`` uint8, ``masks [N, H, W]`` bool, ``boxes_xyxy [N, 4]`` normalised,
        ``point_coords_xy [N, 2]`` normalised (first ``point_coords`` of each annotation, -1 if none),
        ``annotation_ids`` list, ``image_id`` str.

    Raises:
        DataFault: missing / unparsable JSON, missing / truncated image, a record whose size
            disagrees with the image, or bad annotations (all listed).
    """
    record = read_json(json_path)
    image_info = record.get("image") if isinstance(record, dict) else None
    annotations = record.get("annotations") if isinstance(record, dict) else None
    if not isinstance(image_info, dict) or not isinstance(annotations, list):
        raise DataFault(
            Problem(str(json_path), BAD_ANNOTATION, detail="needs an 'image' dict and an 'annotations' list")
        )
    if not image_path.exists():
        raise DataFault(Problem(str(image_path), MISSING_FILE, detail=f"image of {json_path.name} not found"))
    image = read_image(image_path)
    height, width = image.shape[:2]
    declared = (image_info.get("height"), image_info.get("width"))
    if declared != (height, width):
        raise DataFault(
            Problem(
                str(image_path),
                SIZE_MISMATCH,
                detail=f"JPEG is {height}x{width}, {json_path.name} says {declared[0]}x{declared[1]}",
            )
        )
    masks, boxes = decode_instances(annotations, height, width, str(json_path), normalized_boxes=False)
    points = np.full((len(annotations), 2), -1.0, dtype=np.float32)
    for index, annotation in enumerate(annotations):
        coords = annotation.get("point_coords")
        if isinstance(coords, list) and coords and isinstance(coords[0], list) and len(coords[0]) == 2:
            points[index] = np.asarray(coords[0], dtype=np.float32) / np.array(
                [width, height], dtype=np.float32
            )
    return {
        "image": image,
        "masks": masks,
        "boxes_xyxy": boxes,
        "point_coords_xy": points,
        "annotation_ids": [annotation.get("id", index) for index, annotation in enumerate(annotations)],
        "image_id": json_path.stem,
    }


class SA1BDataset(FaultTolerantDataset):
    """SA-1B images with all their instance masks (no phrases).

    Sample keys (raw, before ``transform``): ``image`` ``[3, H, W]`` uint8, ``masks``
    ``[N, H, W]`` bool, ``boxes_xyxy`` ``[N, 4]`` float normalised, ``point_coords_xy`` ``[N, 2]``
    normalised (SA-1B's ``point_coords``), ``phrase`` None, ``positive`` (N > 0), ``image_id``,
    ``source`` ``"sa1b"``, ``original_size`` (H, W).

    Args:
        root: folder holding ``sa_*.jpg`` / ``sa_*.json`` (searched recursively).
        max_masks: keep at most this many masks per image (random subset; SA-1B has ~100).
        transform, prompts, seed, fault_log: see :class:`FaultTolerantDataset`.
    """

    def __init__(
        self,
        root: str | Path,
        max_masks: int | None = None,
        transform: Callable[[Sample], Sample] | None = None,
        prompts: Callable[[Sample, np.random.Generator], Sample] | None = None,
        seed: int = 0,
        fault_log: FaultLog | None = None,
    ) -> None:
        super().__init__(transform, prompts, seed, fault_log)
        self.root = Path(root)
        self.pairs = find_pairs(self.root)
        self.max_masks = max_masks

    def __len__(self) -> int:
        return len(self.pairs)

    def load(self, index: int, rng: np.random.Generator) -> Sample:
        image_path, json_path = self.pairs[index]
        record = read_sa1b(image_path, json_path)
        keep = subsample(len(record["masks"]), self.max_masks, rng)
        height, width = record["image"].shape[:2]
        return {
            "image": to_image_tensor(record["image"]),
            "masks": torch.from_numpy(record["masks"][keep]),
            "boxes_xyxy": torch.from_numpy(record["boxes_xyxy"][keep]),
            "point_coords_xy": torch.from_numpy(record["point_coords_xy"][keep]),
            "phrase": None,
            "positive": bool(len(keep)),
            "image_id": record["image_id"],
            "source": "sa1b",
            "original_size": (height, width),
        }
