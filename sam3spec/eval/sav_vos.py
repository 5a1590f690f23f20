"""J&F of a student on an SA-V val / test folder: each masklet prompted by its first mask.

SA-V has no phrases; it is a semi-supervised video object segmentation benchmark: an object is
given by its mask in the first frame where it appears, and the model segments it in every later
annotated frame. The student takes boxes and points, not masks, so the prompt is the box of that
first mask (a box prompt encoded on the first frame: the exemplar's appearance is the concept,
:class:`~sam3spec.video.predictor.VideoPredictor`). The streaming predictor finds every instance
of that concept and gives them ids that persist across frames; the object's prediction is the
instance that overlaps the first mask most on the prompt frame, followed by its id (a frame
without that id: an empty mask). Frames before the prompt frame are empty. The predictor steps
over the annotated frames (every 4th of the 24 fps video, the spacing the memory was trained on),
with memory.

Layout read (SA-V's ``sav_val`` / ``sav_test`` as released, or a data root's ``sav/val``)::

    JPEGImages_24fps/<video>/<frame:05d>.jpg
    Annotations_6fps/<video>/<object:03d>/<frame:05d>.png

Predictions are written in the same layout under ``out`` and scored by
:func:`~sam3spec.eval.vos.evaluate_vos` (SA-V's evaluator semantics: what ``sam3spec eval vos`` runs).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

ANNOTATIONS, FRAMES = "Annotations_6fps", "JPEGImages_24fps"


def sav_split(directory: str | Path) -> Path:
    """The folder holding ``JPEGImages_24fps/`` and ``Annotations_6fps/``: ``directory`` or its ``sav/val``.

    Raises:
        FileNotFoundError: neither has both folders.
    """
    directory = Path(directory)
    for candidate in (directory, directory / "sav" / "val"):
        if (candidate / ANNOTATIONS).is_dir() and (candidate / FRAMES).is_dir():
            return candidate
    raise FileNotFoundError(
        f"--sav {directory}: expected SA-V's val / test layout ({FRAMES}/<video>/*.jpg and "
        f"{ANNOTATIONS}/<video>/<object>/*.png)"
    )


def _read_mask(path: Path) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.open(path)) > 0


def _box(mask: np.ndarray) -> list[float]:
    """Pixel xyxy box of a non-empty mask (pixel edges: a single pixel at column c spans c..c+1)."""
    rows, cols = np.nonzero(mask.any(1))[0], np.nonzero(mask.any(0))[0]
    return [float(cols[0]), float(rows[0]), float(cols[-1] + 1), float(rows[-1] + 1)]


def _overlap(masks: np.ndarray, target: np.ndarray) -> np.ndarray:
    """IoU of each ``[N, H, W]`` mask with ``target``."""
    inter = (masks & target).reshape(len(masks), -1).sum(1)
    union = (masks | target).reshape(len(masks), -1).sum(1)
    return inter / np.maximum(union, 1)


def track_object(student: Any, frames: Path, masks: list[Path], threshold: float = 0.5) -> list[np.ndarray]:
    """The predicted masks of one object for its annotated frames ``masks`` (PNG paths, in order).

    Args:
        student: the student.
        frames: the video's frame folder (``<stem>.jpg`` for each mask's ``<stem>.png``).
        masks: the object's ground-truth PNGs; only the first non-empty one is read as the prompt.
        threshold: instance score threshold of the predictor.
    """
    from sam3spec.data.files import read_image
    from sam3spec.video.predictor import VideoPredictor

    first, prompt = None, None
    for index, path in enumerate(masks):
        mask = _read_mask(path)
        if mask.any():
            first, prompt = index, mask
            break
    if first is None:  # never visible: SA-V's evaluator does not score it
        return [np.zeros_like(_read_mask(path)) for path in masks]
    predictor = VideoPredictor(student, threshold=threshold, use_memory=True)
    predictor.start(boxes=[_box(prompt)])
    out = [np.zeros_like(prompt) for _ in masks[:first]]
    target = None  # the id followed; None when nothing was found on the prompt frame (object lost)
    for step, path in enumerate(masks[first:]):
        frame = read_image(frames / f"{path.stem}.jpg")
        result = predictor.step(frame)
        if step == 0 and len(result.masks):  # the prompt frame: the instance on the object
            target = int(result.object_ids[int(np.argmax(_overlap(result.masks, prompt)))])
        hits = [i for i, object_id in enumerate(result.object_ids) if object_id == target]
        out.append(result.masks[hits[0]] if hits else np.zeros(frame.shape[:2], bool))
    return out


def evaluate_sav(
    student: Any, directory: str | Path, out: str | Path, limit: int | None = None, threshold: float = 0.5
) -> dict[str, Any]:
    """Predict every object of every video (the first ``limit`` videos) and score them.

    Returns:
        :func:`~sam3spec.eval.vos.evaluate_vos`'s summary (``J``, ``F``, ``J&F`` x100,
        ``num_objects``, per-video scores) plus ``root``, ``predictions`` and ``note``.
    """
    from sam3spec.eval.vos import evaluate_vos
    from sam3spec.video.outputs import write_mask_png

    root, out = sav_split(directory), Path(out)
    videos = sorted(p.name for p in (root / ANNOTATIONS).iterdir() if p.is_dir())[:limit]
    if not videos:
        raise FileNotFoundError(f"--sav {directory}: no video folders in {root / ANNOTATIONS}")
    for video in videos:
        for object_dir in sorted(p for p in (root / ANNOTATIONS / video).iterdir() if p.is_dir()):
            pngs = sorted(object_dir.glob("*.png"))
            predicted = track_object(student, root / FRAMES / video, pngs, threshold)
            for path, mask in zip(pngs, predicted, strict=True):
                write_mask_png(out / video / object_dir.name / path.name, mask)
    summary = evaluate_vos(root / ANNOTATIONS, out, strict=limit is None).summary()
    summary.update(
        {
            "root": str(root),
            "predictions": str(out),
            "note": f"{summary['num_objects']} object(s) in {len(videos)} video(s); prompt: the box of "
            "each object's first mask; streaming predictor with memory",
        }
    )
    return summary
