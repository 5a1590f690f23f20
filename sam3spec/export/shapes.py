"""The fixed shapes of an exported program and the padding of prompts into them.

Light on purpose (torch only): the runtime, the benchmark worker and apps' reference code use it
without the model code.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch

OUTPUT_NAMES = ("pred_logits", "pred_boxes", "pred_masks", "presence_logits", "semantic_seg", "iou_scores")


@dataclass(frozen=True)
class ExportShapes:
    """The fixed shapes of the exported program.

    Attributes:
        image_size: square input side S (the student's ``image_size``).
        context_length: text tokens L.
        max_points: point slots Np.
        max_boxes: box slots Nb.
        memory_frames: context frames T of the ``track`` buffer.
    """

    image_size: int
    context_length: int
    max_points: int = 4
    max_boxes: int = 4
    memory_frames: int = 8

    @classmethod
    def of(cls, student: Any, **overrides: int) -> ExportShapes:
        """The shapes of ``student`` (its image size and text context), with ``overrides``."""
        config = student.config
        return cls(config.image_size, config.text.context_length, **overrides)


def level_side(image_size: int, level: int) -> int:
    """Side of FPN level ``level`` (stride 4 * 2^level): each stride-2 stage maps n to ceil(n / 2)."""
    side = image_size
    for _ in range(level + 2):
        side = math.ceil(side / 2)
    return side


def padded_prompt(
    shapes: ExportShapes,
    points: list | torch.Tensor | None = None,
    point_labels: list | torch.Tensor | None = None,
    boxes: list | torch.Tensor | None = None,
    box_labels: list | torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Pad normalised points ``[N, 2]`` / boxes ``[M, 4]`` (xyxy) to the program's fixed slots.

    Returns:
        ``(points [1, Np, 2], point_labels [1, Np], boxes [1, Nb, 4], box_labels [1, Nb])``;
        unused slots hold 0.5 and label -1.

    Raises:
        ValueError: more prompts than slots.
    """

    def pad(values, labels, slots: int, width: int, name: str) -> tuple[torch.Tensor, torch.Tensor]:
        coords = torch.full((1, slots, width), 0.5)
        padded_labels = torch.full((1, slots), -1, dtype=torch.long)
        if values is None:
            return coords, padded_labels
        values = torch.as_tensor(values, dtype=torch.float32).reshape(-1, width)
        count = values.shape[0]
        if count > slots:
            raise ValueError(f"{name}: {count} given but the program has {slots} slots (export with more)")
        coords[0, :count] = values
        padded_labels[0, :count] = (
            1 if labels is None else torch.as_tensor(labels, dtype=torch.long).reshape(-1)
        )
        return coords, padded_labels

    point_coords, point_flags = pad(points, point_labels, shapes.max_points, 2, "points")
    box_coords, box_flags = pad(boxes, box_labels, shapes.max_boxes, 4, "boxes")
    return point_coords, point_flags, box_coords, box_flags
