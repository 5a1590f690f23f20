"""The baseline step: run the teacher on one image and one prompt, save raw outputs and an overlay.

Prompts are checked before the model sees them (:func:`check_prompt`): a NaN, inverted, empty or
out-of-image box or point is an error naming the prompt and what was expected, never a
``presence nan`` result. Out-of-image coordinates are rejected rather than clipped, as
:class:`sam3spec.predictor.ImagePredictor` rejects them: a box or click outside the picture is
almost always a units mistake (pixels given where [0, 1] is expected), and clipping would hide it.
An instance whose mask is empty at the image's size is not an instance: it is dropped.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import save_file

from sam3spec.teacher.protocol import Teacher


def _coordinates(values: Sequence[float], name: str, count: int, expected: str) -> list[float]:
    try:
        numbers = [float(v) for v in values]
    except (TypeError, ValueError):
        numbers = []
    if len(numbers) != count or not all(math.isfinite(v) for v in numbers):
        raise ValueError(f"{name} prompt {list(values)!r}: expected {count} finite numbers, {expected}")
    return numbers


def check_prompt(
    text: str | None, box_xyxy: Sequence[float] | None, point_xy: Sequence[float] | None
) -> tuple[list[float] | None, list[float] | None]:
    """Validate a prompt; returns the box and point as float lists.

    Raises:
        ValueError: no prompt, an empty text, or a box / point that is not finite, not inside
            the image in normalised [0, 1] units, or (a box) inverted or empty.
    """
    if text is not None and not text.strip():
        raise ValueError("text prompt is empty: expected a noun phrase such as 'red circle'")
    if text is None and box_xyxy is None and point_xy is None:
        raise ValueError("empty prompt: give a text, a box or a point")
    box = point = None
    if box_xyxy is not None:
        expected = "x0 y0 x1 y1 normalised to the image, with 0 <= x0 < x1 <= 1 and 0 <= y0 < y1 <= 1"
        box = _coordinates(box_xyxy, "box", 4, expected)
        x0, y0, x1, y1 = box
        if not (0.0 <= x0 < x1 <= 1.0 and 0.0 <= y0 < y1 <= 1.0):
            problem = "inverted or empty" if x1 <= x0 or y1 <= y0 else "outside the image"
            raise ValueError(f"box prompt {box}: {problem}; expected {expected}")
    if point_xy is not None:
        expected = "x y normalised to the image, with 0 <= x <= 1 and 0 <= y <= 1"
        point = _coordinates(point_xy, "point", 2, expected)
        if not all(0.0 <= v <= 1.0 for v in point):
            raise ValueError(f"point prompt {point}: outside the image; expected {expected}")
    return box, point


def check_threshold(threshold: float) -> None:
    """Raises ValueError unless ``threshold`` is a score in [0, 1] (NaN is not)."""
    if not 0.0 <= threshold <= 1.0:
        raise ValueError(f"threshold {threshold}: expected a score in [0, 1]")


def run_baseline(
    teacher: Teacher,
    image: np.ndarray,
    out: str | Path,
    text: str | None = None,
    box_xyxy: list[float] | None = None,
    point_xy: list[float] | None = None,
    threshold: float = 0.5,
) -> dict[str, Any]:
    """Predict, then write ``outputs.safetensors`` (raw teacher outputs, batch 1), ``overlay.png``
    (instances scoring >= ``threshold``) and ``summary.json`` into ``out``.

    Args:
        teacher: the teacher.
        image: ``[H, W, 3]`` uint8 RGB.
        out: output folder.
        text: noun phrase prompt.
        box_xyxy: an exemplar box, normalised xyxy.
        point_xy: a click, normalised ``(x, y)``.
        threshold: score threshold for the overlay.

    Returns:
        The summary (prompt, presence, instances with score and pixel box; ``dropped_empty``:
        queries over the threshold whose mask is empty at the image's size, left out).

    Raises:
        ValueError: a bad prompt (:func:`check_prompt`).
    """
    from sam3spec.visualize import draw_overlay

    box_xyxy, point_xy = check_prompt(text, box_xyxy, point_xy)
    check_threshold(threshold)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    height, width = image.shape[:2]
    embeddings = teacher.encode_image(
        teacher.preprocess(torch.from_numpy(np.array(image, copy=True)).permute(2, 0, 1)[None])
    )
    outputs = teacher.predict(
        embeddings,
        text=text,
        boxes=None if box_xyxy is None else torch.tensor([[box_xyxy]], dtype=torch.float32),
        points=None if point_xy is None else torch.tensor([[point_xy]], dtype=torch.float32),
    )
    raw = {
        "pred_logits": outputs.pred_logits,
        "pred_boxes": outputs.pred_boxes,
        "pred_masks": outputs.pred_masks,
        "presence_logits": outputs.presence_logits,
        "semantic_seg": outputs.semantic_seg,
        "scores": outputs.scores(),
    }
    save_file(
        {name: value.float().cpu().contiguous() for name, value in raw.items()},
        str(out / "outputs.safetensors"),
    )
    scores = outputs.scores()[0].float().cpu()
    keep = torch.nonzero(scores >= threshold).flatten()
    keep = keep[torch.argsort(scores[keep], descending=True)]
    if len(keep):
        logits = F.interpolate(
            outputs.pred_masks[:, keep].float().cpu(),
            size=(height, width),
            mode="bilinear",
            align_corners=False,
        )
        masks = (logits[0] > 0).numpy()
    else:
        masks = np.zeros((0, height, width), dtype=bool)
    non_empty = masks.any(axis=(1, 2))
    dropped = int((~non_empty).sum())
    keep, masks = keep[torch.from_numpy(non_empty)], masks[non_empty]
    boxes = (outputs.pred_boxes[0, keep].float().cpu() * torch.tensor([width, height, width, height])).numpy()
    draw_overlay(image, masks, boxes, scores[keep].numpy()).save(out / "overlay.png")
    summary = {
        "prompt": {"text": text, "box_xyxy": box_xyxy, "point_xy": point_xy},
        "presence": float(outputs.presence_logits.float().sigmoid()[0, 0]),
        "threshold": threshold,
        "dropped_empty": dropped,
        "instances": [
            {"query": int(q), "score": float(scores[q]), "box_xyxy_pixels": [round(float(v), 2) for v in box]}
            for q, box in zip(keep.tolist(), boxes, strict=True)
        ],
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    return summary
