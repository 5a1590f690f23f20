"""Writing tracked results: an overlay MP4 (PyAV, via the data layer's encoder) and per-frame masks
in SA-V's PNG layout ``<root>/<video>/<object id:03d>/<frame:05d>.png`` (one binary PNG per object
and frame, as ``Annotations_6fps``; :mod:`sam3spec.eval.vos` reads it)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from sam3spec.data.video_io import encode_mp4
from sam3spec.visualize import PALETTE


def overlay(image: np.ndarray, masks: np.ndarray, ids: np.ndarray, alpha: float = 0.5) -> np.ndarray:
    """``[H, W, 3]`` uint8 with each mask blended in the colour of its object id (stable over frames)."""
    canvas = image.astype(np.float32).copy()
    for mask, object_id in zip(masks, ids, strict=True):
        colour = np.array(PALETTE[int(object_id) % len(PALETTE)], dtype=np.float32)
        canvas[mask] = (1 - alpha) * canvas[mask] + alpha * colour
    return canvas.clip(0, 255).astype(np.uint8)


def write_mask_png(path: Path, mask: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp")
    Image.fromarray(mask.astype(np.uint8) * 255).save(temporary, format="PNG")
    temporary.replace(path)


def write_sav_masks(root: Path, video: str, frame_name: str, masks: np.ndarray, ids: np.ndarray) -> None:
    """One PNG per object of one frame (objects absent from the frame get no file)."""
    for mask, object_id in zip(masks, ids, strict=True):
        write_mask_png(Path(root) / video / f"{int(object_id):03d}" / f"{frame_name}.png", mask)


def write_overlay_mp4(path: Path, frames: list[np.ndarray], fps: float) -> None:
    """Encode overlay frames (cropped to even sizes for yuv420p), written to a temporary name first."""
    if not frames:
        raise ValueError(f"{path}: no frames to write")
    height, width = (frames[0].shape[0] // 2) * 2, (frames[0].shape[1] // 2) * 2
    stack = np.stack([f[:height, :width] for f in frames])
    temporary = Path(path).with_name(f".{Path(path).name}.tmp.mp4")
    encode_mp4(temporary, stack, fps=max(1, round(fps)))
    temporary.replace(path)
