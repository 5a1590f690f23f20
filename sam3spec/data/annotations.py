"""Decoding COCO-style instance annotations (SA-1B and SA-Co) with every problem named."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from sam3spec.data import rle
from sam3spec.data.faults import BAD_ANNOTATION, MALFORMED_RLE, SIZE_MISMATCH, DataFault, Problem

# A box may differ from its mask's tight box by rounding (SA-Co stores float32 fractions).
BOX_TOLERANCE_PX = 1.0


def _is_box(value: Any) -> bool:
    return (
        isinstance(value, Sequence)
        and len(value) == 4
        and all(isinstance(v, int | float) and not isinstance(v, bool) for v in value)
    )


def decode_instances(
    annotations: Sequence[Mapping[str, Any]],
    height: int,
    width: int,
    path: str,
    normalized_boxes: bool,
) -> tuple[np.ndarray, np.ndarray]:
    """Validate and decode the masks and boxes of one image's annotations.

    Checks each annotation's RLE (structure, size == image size), its ``bbox`` (xywh, pixels or
    normalised) against the tight box of its mask, and that the mask is not empty. All problems
    of the image are collected before raising, so ``verify`` lists every one.

    Args:
        annotations: the image's annotation dicts (``segmentation``, ``bbox``, optional ``id``).
        height: image height.
        width: image width.
        path: the annotation file, for problem reports.
        normalized_boxes: ``bbox`` is in [0, 1] (SA-Co) rather than pixels (SA-1B).

    Returns:
        ``masks [N, H, W]`` bool and ``boxes_xyxy [N, 4]`` float32 normalised to the image.

    Raises:
        DataFault: with one problem per bad annotation.
    """
    problems: list[Problem] = []
    masks = np.zeros((len(annotations), height, width), dtype=bool)
    boxes = np.zeros((len(annotations), 4), dtype=np.float32)
    scale = np.array([width, height, width, height], dtype=np.float64)
    for index, annotation in enumerate(annotations):
        where = f"annotation {annotation.get('id', index) if isinstance(annotation, Mapping) else index}"
        if not isinstance(annotation, Mapping) or not isinstance(annotation.get("segmentation"), Mapping):
            problems.append(Problem(path, BAD_ANNOTATION, where, "no RLE segmentation"))
            continue
        try:
            size = rle.validate(annotation["segmentation"])
        except rle.MalformedRLE as error:
            problems.append(Problem(path, MALFORMED_RLE, where, str(error)))
            continue
        if size != (height, width):
            problems.append(
                Problem(path, SIZE_MISMATCH, where, f"mask {size[0]}x{size[1]}, image {height}x{width}")
            )
            continue
        mask = rle.decode(annotation["segmentation"])
        if not mask.any():
            problems.append(Problem(path, BAD_ANNOTATION, where, "empty mask"))
            continue
        bbox = annotation.get("bbox")
        if not _is_box(bbox):
            problems.append(Problem(path, BAD_ANNOTATION, where, f"bbox must be [x, y, w, h], got {bbox!r}"))
            continue
        pixels = np.asarray(bbox, dtype=np.float64) * (scale if normalized_boxes else 1.0)
        tight = np.asarray(rle.bbox_xywh(mask))
        if np.abs(pixels - tight).max() > BOX_TOLERANCE_PX:
            problems.append(
                Problem(path, BAD_ANNOTATION, where, f"bbox {bbox} disagrees with its mask {tight.tolist()}")
            )
            continue
        masks[index] = mask
        x, y, w, h = pixels
        boxes[index] = np.array([x, y, x + w, y + h]) / scale
    if problems:
        raise DataFault(problems)
    return masks, boxes
