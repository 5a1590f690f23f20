"""Shared transforms: resize / pad to the model resolution, normalisation, box formats.

Geometry is applied once to the image, its masks and its boxes together, so they stay consistent:
boxes are rescaled analytically (not re-measured from resized masks, which would lose thin
objects), and masks are resized with bilinear interpolation thresholded at 0.5.

Two resize modes:

* ``letterbox`` (student, SAM-style): scale the longer side to ``size``, pad bottom / right with
  zeros; ``valid_size`` records the unpadded region.
* ``stretch`` (transformers' ``Sam3Processor``): resize to ``size x size`` ignoring aspect ratio;
  normalised boxes do not change.

Normalisation constants: ImageNet for the RepViT student; CLIP (OpenAI) on request; and
``SAM3`` = mean 0.5 / std 0.5, which is what ``Sam3ImageProcessor`` in transformers actually uses
(``IMAGENET_STANDARD_MEAN/STD``), so the teacher must get ``SAM3``, not CLIP's constants.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Any

import torch
import torch.nn.functional as F

# One implementation of the box conversions, shared with the models (names kept for data code).
from sam3spec.boxes import boxes_cxcywh_to_xyxy as cxcywh_to_xyxy  # noqa: F401
from sam3spec.boxes import boxes_xyxy_to_cxcywh as xyxy_to_cxcywh  # noqa: F401


class Normalization(Enum):
    """Per-channel (mean, std) on [0, 1] RGB."""

    IMAGENET = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
    CLIP = ((0.48145466, 0.4578275, 0.40821073), (0.26862954, 0.26130258, 0.27577711))
    SAM3 = ((0.5, 0.5, 0.5), (0.5, 0.5, 0.5))

    @property
    def mean(self) -> tuple[float, float, float]:
        return self.value[0]

    @property
    def std(self) -> tuple[float, float, float]:
        return self.value[1]


def normalize(image: torch.Tensor, normalization: Normalization) -> torch.Tensor:
    """``[..., 3, H, W]`` float in [0, 1] -> normalised."""
    mean = torch.tensor(normalization.mean, dtype=image.dtype, device=image.device).view(3, 1, 1)
    std = torch.tensor(normalization.std, dtype=image.dtype, device=image.device).view(3, 1, 1)
    return (image - mean) / std


def denormalize(image: torch.Tensor, normalization: Normalization) -> torch.Tensor:
    """Inverse of :func:`normalize`."""
    mean = torch.tensor(normalization.mean, dtype=image.dtype, device=image.device).view(3, 1, 1)
    std = torch.tensor(normalization.std, dtype=image.dtype, device=image.device).view(3, 1, 1)
    return image * std + mean


def xywh_to_xyxy(boxes: torch.Tensor) -> torch.Tensor:
    """``[..., 4]`` COCO (x, y, w, h) -> (x0, y0, x1, y1)."""
    x, y, w, h = boxes.unbind(-1)
    return torch.stack([x, y, x + w, y + h], dim=-1)


def boxes_from_masks(masks: torch.Tensor) -> torch.Tensor:
    """Tight boxes of masks, normalised xyxy.

    Args:
        masks: ``[..., H, W]`` bool.

    Returns:
        ``[..., 4]`` in [0, 1]; pixel edges (a single pixel at column c spans c..c+1); zeros
        for empty masks.
    """
    height, width = masks.shape[-2:]
    flat = masks.reshape(-1, height, width)
    boxes = torch.zeros(flat.shape[0], 4)
    rows_any, cols_any = flat.any(dim=2), flat.any(dim=1)
    for index in range(flat.shape[0]):
        rows, cols = torch.nonzero(rows_any[index]).flatten(), torch.nonzero(cols_any[index]).flatten()
        if rows.numel():
            boxes[index] = torch.tensor(
                [cols[0] / width, rows[0] / height, (cols[-1] + 1) / width, (rows[-1] + 1) / height]
            )
    return boxes.reshape(*masks.shape[:-2], 4)


@dataclass(frozen=True)
class TransformConfig:
    """Model-facing geometry and normalisation.

    Attributes:
        size: output side in pixels (square).
        mode: ``letterbox`` or ``stretch``.
        normalization: which constants to normalise with.
    """

    size: int = 504
    mode: str = "letterbox"
    normalization: Normalization = Normalization.IMAGENET

    def __post_init__(self) -> None:
        if self.mode not in ("letterbox", "stretch"):
            raise ValueError(f"mode must be 'letterbox' or 'stretch', got {self.mode!r}")
        if self.size < 8:
            raise ValueError(f"size must be >= 8, got {self.size}")


STUDENT = TransformConfig(504, "letterbox", Normalization.IMAGENET)
TEACHER = TransformConfig(1008, "stretch", Normalization.SAM3)


def _resize_images(images: torch.Tensor, height: int, width: int) -> torch.Tensor:
    lead = images.shape[:-3]
    flat = images.reshape(-1, *images.shape[-3:])
    flat = flat.float() / 255.0 if flat.dtype == torch.uint8 else flat.float()  # uint8 or [0, 1] float
    if flat.shape[-2:] != (height, width):
        flat = F.interpolate(flat, size=(height, width), mode="bilinear", align_corners=False, antialias=True)
    return flat.clamp(0, 1).reshape(*lead, 3, height, width)


def _resize_masks(masks: torch.Tensor, height: int, width: int) -> torch.Tensor:
    lead = masks.shape[:-2]
    if masks.shape[-2:] == (height, width):
        return masks.bool()
    flat = masks.reshape(-1, 1, *masks.shape[-2:]).float()
    if flat.shape[0] == 0:
        return torch.zeros(*lead, height, width, dtype=torch.bool)
    resized = F.interpolate(flat, size=(height, width), mode="bilinear", align_corners=False) > 0.5
    return resized.reshape(*lead, height, width)


def _pad(tensor: torch.Tensor, size: int) -> torch.Tensor:
    pad_bottom, pad_right = size - tensor.shape[-2], size - tensor.shape[-1]
    return F.pad(tensor, (0, pad_right, 0, pad_bottom)) if pad_bottom or pad_right else tensor


class ResizeNormalize:
    """Resize / pad a raw sample to the model resolution and normalise it.

    Reads ``image`` (``[3, H, W]`` uint8, or float in [0, 1]) or ``frames`` (``[T, 3, H, W]``), ``masks``
    (``[..., H, W]`` bool) and ``boxes_xyxy`` (``[..., 4]`` normalised to the input image); writes
    them back at ``size x size`` (image float normalised), plus ``valid_size`` = (h, w) of the
    unpadded content. Other keys pass through.
    """

    def __init__(self, config: TransformConfig = STUDENT) -> None:
        self.config = config

    def __call__(self, sample: dict[str, Any]) -> dict[str, Any]:
        key = "image" if "image" in sample else "frames"
        pixels = sample[key]
        height, width = pixels.shape[-2:]
        size = self.config.size
        if self.config.mode == "stretch":
            new_h, new_w = size, size
        else:
            scale = size / max(height, width)
            new_h, new_w = max(1, round(height * scale)), max(1, round(width * scale))
        out = dict(sample)
        # Pad after normalising, so padding is 0 = the mean colour (as SAM pads).
        out[key] = _pad(normalize(_resize_images(pixels, new_h, new_w), self.config.normalization), size)
        if "masks" in sample:
            out["masks"] = _pad(_resize_masks(sample["masks"], new_h, new_w), size)
        if "boxes_xyxy" in sample:
            factor = torch.tensor([new_w / size, new_h / size, new_w / size, new_h / size])
            out["boxes_xyxy"] = sample["boxes_xyxy"] * factor
        out["valid_size"] = (new_h, new_w)
        return out
