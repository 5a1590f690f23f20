"""Overlays of predictions on images (PIL), for ``sam3spec segment`` and visual QA."""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw

PALETTE = (
    (230, 25, 75),
    (60, 180, 75),
    (0, 130, 200),
    (245, 130, 48),
    (145, 30, 180),
    (70, 240, 240),
    (240, 50, 230),
    (210, 245, 60),
)


def draw_overlay(
    image: np.ndarray, masks: np.ndarray, boxes_xyxy: np.ndarray, scores: np.ndarray, alpha: float = 0.5
) -> Image.Image:
    """Blend each mask in its own colour over ``image`` and outline its box with its score.

    Args:
        image: ``[H, W, 3]`` uint8 RGB.
        masks: ``[N, H, W]`` bool.
        boxes_xyxy: ``[N, 4]`` pixel boxes.
        scores: ``[N]``.
        alpha: mask opacity.
    """
    canvas = image.astype(np.float32).copy()
    for index, mask in enumerate(masks):
        colour = np.array(PALETTE[index % len(PALETTE)], dtype=np.float32)
        canvas[mask] = (1 - alpha) * canvas[mask] + alpha * colour
    result = Image.fromarray(canvas.clip(0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(result)
    for index, (box, score) in enumerate(zip(boxes_xyxy, scores, strict=True)):
        colour = PALETTE[index % len(PALETTE)]
        draw.rectangle([float(v) for v in box], outline=colour, width=2)
        draw.text((float(box[0]) + 2, float(box[1]) + 1), f"{score:.2f}", fill=colour)
    return result
