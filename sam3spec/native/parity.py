"""Reference code for checking the native runner (``native/``, ``sam3spec-run``) against Python.

:func:`run_cli` runs the binary; :func:`read_cli_result` reads what ``--out-dir`` wrote
(``mask_<i>.png`` / ``frame_<n>.png`` and ``detections.json``); :func:`compare` pairs instances of
two predictions and sums mask intersections / unions; :func:`python_track` is the video protocol
of docs/EXPORT.md (frame 0: ``encode_image`` + ``decode``, its level-3 map in the newest slot of a
zero buffer; then ``track`` per frame with the buffer it returned) through ``executorch.runtime``.
"""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from sam3spec.predictor import Prediction


def run_cli(binary: str | Path, *args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    """``sam3spec-run *args`` (text mode; never raises on a non-zero exit)."""
    return subprocess.run(
        [str(binary), *map(str, args)], capture_output=True, text=True, errors="replace", timeout=timeout
    )


def read_masks(paths: list[Path]) -> np.ndarray:
    """PNG masks (0/255) -> ``[N, H, W]`` bool."""
    from PIL import Image

    if not paths:
        return np.zeros((0, 0, 0), dtype=bool)
    return np.stack([np.asarray(Image.open(path)) > 0 for path in paths])


def read_cli_result(out_dir: str | Path) -> list[Prediction]:
    """The predictions ``--out-dir`` holds: one for an image (per-instance masks), one per frame for a video
    (per-frame union masks, so each such prediction has one mask: the union)."""
    out_dir = Path(out_dir)
    detections = json.loads((out_dir / "detections.json").read_text())
    frames = sorted(out_dir.glob("frame_*.png"))
    results = []
    for index, item in enumerate(detections):
        if frames:
            masks = read_masks([frames[index]])
        else:
            masks = read_masks(sorted(out_dir.glob("mask_*.png")))
            if masks.size == 0:
                masks = np.zeros((0, item["height"], item["width"]), dtype=bool)
        results.append(
            Prediction(
                masks,
                np.asarray(item["boxes_xyxy"], dtype=np.float64).reshape(-1, 4),
                np.asarray(item["scores"], dtype=np.float64),
                float(item["presence"]),
            )
        )
    return results


@dataclass
class Agreement:
    """Summed agreement of paired instances over several cases."""

    intersection: int = 0
    union: int = 0
    score_diff: float = 0.0
    presence_diff: float = 0.0
    box_diff: float = 0.0
    instances: int = 0
    count_mismatches: list[str] = field(default_factory=list)

    @property
    def mask_iou(self) -> float:
        return self.intersection / self.union if self.union else 1.0

    def add_masks(self, a: np.ndarray, b: np.ndarray) -> None:
        self.intersection += int(np.logical_and(a, b).sum())
        self.union += int(np.logical_or(a, b).sum())


def compare(reference: Prediction, native: Prediction, agreement: Agreement, case: str) -> None:
    """Pair instances (Hungarian on 1 - IoU + |score diff|: equal scores may sort either way) and add them up.

    A different instance count is recorded in ``agreement.count_mismatches`` and the unpaired
    masks count as union only (IoU 0 for them).
    """
    from scipy.optimize import linear_sum_assignment

    agreement.presence_diff = max(agreement.presence_diff, abs(reference.presence - native.presence))
    if len(reference.scores) != len(native.scores):
        agreement.count_mismatches.append(f"{case}: {len(reference.scores)} vs {len(native.scores)}")
    if len(reference.scores) and len(native.scores):
        ref = reference.masks.reshape(len(reference.masks), -1)
        nat = native.masks.reshape(len(native.masks), -1)
        inter = ref.astype(np.float64) @ nat.T.astype(np.float64)
        union = ref.sum(1)[:, None] + nat.sum(1)[None] - inter
        iou = np.where(union > 0, inter / np.maximum(union, 1), 1.0)
        cost = 1.0 - iou + np.abs(reference.scores[:, None] - native.scores[None])
        rows, cols = linear_sum_assignment(cost)
    else:
        rows = cols = np.zeros(0, dtype=int)
    for i, j in zip(rows, cols, strict=True):
        agreement.add_masks(reference.masks[i], native.masks[j])
        agreement.score_diff = max(agreement.score_diff, abs(float(reference.scores[i] - native.scores[j])))
        agreement.box_diff = max(
            agreement.box_diff, float(np.abs(reference.boxes_xyxy[i] - native.boxes_xyxy[j]).max())
        )
        agreement.instances += 1
    for i in set(range(len(reference.scores))) - set(rows.tolist()):
        agreement.union += int(reference.masks[i].sum())
    for j in set(range(len(native.scores))) - set(cols.tolist()):
        agreement.union += int(native.masks[j].sum())


def union_prediction(prediction: Prediction) -> Prediction:
    """The same prediction with its masks merged into one (what the CLI's video frames hold)."""
    height, width = prediction.masks.shape[1:] if prediction.masks.ndim == 3 else (0, 0)
    merged = (
        prediction.masks.any(axis=0, keepdims=True)
        if len(prediction.masks)
        else np.zeros((1, height, width), bool)
    )
    return Prediction(merged, prediction.boxes_xyxy, prediction.scores, prediction.presence)


def python_track(predictor: Any, frames: list[np.ndarray], phrase: str, threshold: float) -> list[Prediction]:
    """The video protocol through a :class:`~sam3spec.export.runtime.PtePredictor` (RGB uint8 frames)."""
    import torch

    from sam3spec.data.transforms import Normalization, ResizeNormalize, TransformConfig
    from sam3spec.export.shapes import OUTPUT_NAMES
    from sam3spec.models.outputs import Sam3Outputs
    from sam3spec.predictor import image_to_tensor

    program = predictor.model.program
    meta = program.metadata
    side, frames_t = meta["image_size"], meta["memory_frames"]
    predictor.set_image(frames[0])
    level = predictor._features[meta["memory_level"]].clone()
    results = [predictor.predict(text=phrase, threshold=threshold)]
    context = torch.zeros(1, frames_t, *level.shape[1:])
    context[0, -1] = level[0]
    valid = torch.zeros(1, frames_t, dtype=torch.bool)
    valid[0, -1] = True
    (tokens, mask), geometry = predictor.model.encode_prompt(input_ids=predictor.tokenizer([phrase]))
    transform = ResizeNormalize(TransformConfig(side, "letterbox", Normalization.IMAGENET))
    for frame in frames[1:]:
        tensor = image_to_tensor(frame)
        height, width = tensor.shape[1:]
        sample = transform({"image": tensor})
        outputs = program.run("track", sample["image"][None], tokens, mask, *geometry, context, valid)
        context, valid = outputs[6].clone(), outputs[7].clone()
        predictor._size, predictor._scale = (height, width), side / max(height, width)
        predictor._valid_size = sample["valid_size"]
        decoded = Sam3Outputs(**dict(zip(OUTPUT_NAMES, outputs[:6], strict=True)))
        results.append(predictor._postprocess(decoded, threshold))
    return results
