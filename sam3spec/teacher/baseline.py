"""The baseline step: run the teacher on one image and one prompt, save raw outputs and an overlay."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import save_file

from sam3spec.teacher.protocol import Teacher


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
        The summary (prompt, presence, instances with score and pixel box).
    """
    from sam3spec.visualize import draw_overlay

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
    boxes = (outputs.pred_boxes[0, keep].float().cpu() * torch.tensor([width, height, width, height])).numpy()
    draw_overlay(image, masks, boxes, scores[keep].numpy()).save(out / "overlay.png")
    summary = {
        "prompt": {"text": text, "box_xyxy": box_xyxy, "point_xy": point_xy},
        "presence": float(outputs.presence_logits.float().sigmoid()[0, 0]),
        "threshold": threshold,
        "instances": [
            {"query": int(q), "score": float(scores[q]), "box_xyxy_pixels": [round(float(v), 2) for v in box]}
            for q, box in zip(keep.tolist(), boxes, strict=True)
        ],
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    return summary
