"""Video object segmentation J&F with the semantics of SA-V's evaluator (facebookresearch/sam2,
``sav_dataset/utils/sav_benchmark.py``, itself DAVIS 2017's J and F).

* **J** (region similarity): IoU of predicted and ground-truth masks; 1 when both are empty.
* **F** (boundary accuracy): F-measure of 1-pixel boundary maps (DAVIS ``seg2bmap``) matched
  within a disk of radius ``ceil(0.008 x image diagonal)``; both boundaries empty gives 1, one
  empty gives 0.
* Per object, J and F are means over frames, counted from the first frame in which the object
  is present in the ground truth *or* the prediction (earlier frames are not scored: both
  evaluators add an object to their bookkeeping only when it first appears); objects never
  present in the ground truth are not reported. The first and last annotated frames are skipped
  (SA-V val/test and DAVIS semi-supervised protocol).
* Global J, F = means over all objects of all videos (x100); J&F = (J + F) / 2.

Layouts (the ground-truth and prediction roots share one):

* SA-V: ``ROOT/<video>/<object:03d>/<frame>.png``, one binary mask per PNG (value > 0);
* DAVIS: ``ROOT/<video>/<frame>.png``, one indexed PNG holding every object id (0 = background).

Dilation is scipy's ``binary_dilation`` (SA-V uses OpenCV's ``cv2.dilate``; the same operation
with a zero border) so that no OpenCV/scikit-image dependency is needed.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image
from scipy.ndimage import binary_dilation

BOUND_TH = 0.008


def boundary_map(mask: np.ndarray) -> np.ndarray:
    """DAVIS ``seg2bmap``: a pixel is a boundary pixel when it differs from its right, lower or
    lower-right neighbour (outside the image counts as background); in the last row only the right
    neighbour counts, in the last column only the lower one, and the corner is never a boundary.

    Args:
        mask: ``[H, W]`` bool.

    Returns:
        ``[H, W]`` bool.
    """
    seg = np.asarray(mask, dtype=bool)
    right, down, diag = (np.zeros_like(seg) for _ in range(3))
    right[:, :-1] = seg[:, 1:]
    down[:-1, :] = seg[1:, :]
    diag[:-1, :-1] = seg[1:, 1:]
    edges = (seg ^ right) | (seg ^ down) | (seg ^ diag)
    edges[-1, :] = seg[-1, :] ^ right[-1, :]
    edges[:, -1] = seg[:, -1] ^ down[:, -1]
    edges[-1, -1] = False
    return edges


def disk(radius: int) -> np.ndarray:
    """``[2r+1, 2r+1]`` bool footprint with x^2 + y^2 <= r^2 (scikit-image's ``disk``)."""
    offsets = np.arange(-radius, radius + 1)
    return (offsets[:, None] ** 2 + offsets[None, :] ** 2) <= radius**2


def boundary_radius(shape: tuple[int, ...], bound_th: float = BOUND_TH) -> int:
    """Matching tolerance in pixels: ``ceil(bound_th x diagonal)`` (bound_th < 1 is a fraction)."""
    return int(math.ceil(bound_th * float(np.linalg.norm(shape[:2])))) if bound_th < 1 else int(bound_th)


def region_similarity(prediction: np.ndarray, target: np.ndarray) -> float:
    """J of one frame: IoU, 1.0 when both masks are empty."""
    union = int(np.sum(prediction | target))
    return 1.0 if union == 0 else int(np.sum(prediction & target)) / union


def boundary_f(prediction: np.ndarray, target: np.ndarray, bound_th: float = BOUND_TH) -> float:
    """F of one frame (DAVIS ``f_measure``).

    Args:
        prediction, target: ``[H, W]`` bool.
    """
    footprint = disk(boundary_radius(prediction.shape, bound_th))
    pred_edges, gt_edges = boundary_map(prediction), boundary_map(target)
    n_pred, n_gt = int(pred_edges.sum()), int(gt_edges.sum())
    if n_pred == 0 or n_gt == 0:
        return 1.0 if n_pred == n_gt else 0.0
    precision = np.sum(pred_edges & binary_dilation(gt_edges, footprint)) / n_pred
    recall = np.sum(gt_edges & binary_dilation(pred_edges, footprint)) / n_gt
    return 0.0 if precision + recall == 0 else float(2 * precision * recall / (precision + recall))


@dataclass
class ObjectScore:
    """J and F of one object (in [0, 1]; the report multiplies by 100)."""

    video: str
    object_id: str
    j: float
    f: float
    frames: int


def score_frames(
    frames: Iterable[tuple[np.ndarray, np.ndarray]], bound_th: float = BOUND_TH
) -> tuple[float, float, int] | None:
    """Mean J and F of one object over ``(prediction, target)`` bool frames.

    Frames before the object first appears (in either mask) are not scored. Returns None when the
    target is empty in every frame (the object is not reported).
    """
    js, fs, started, in_gt = [], [], False, False
    for prediction, target in frames:
        prediction, target = np.asarray(prediction, bool), np.asarray(target, bool)
        if prediction.shape != target.shape:
            raise ValueError(f"prediction shape {prediction.shape} != ground truth {target.shape}")
        in_gt = in_gt or bool(target.any())
        started = started or bool(target.any() or prediction.any())
        if started:
            js.append(region_similarity(prediction, target))
            fs.append(boundary_f(prediction, target, bound_th))
    if not in_gt:
        return None
    return float(np.mean(js)), float(np.mean(fs)), len(js)


def _read_png(path: Path) -> np.ndarray:
    if not path.is_file():
        raise FileNotFoundError(
            f"prediction mask {path} not found (the prediction root must mirror the ground truth)"
        )
    return np.asarray(Image.open(path))


def _frames(gt_dir: Path, skip_first_and_last: bool) -> list[str]:
    names = sorted(p.name for p in gt_dir.iterdir() if p.suffix == ".png")
    return names[1:-1] if skip_first_and_last else names


def evaluate_video(
    gt_dir: Path, pred_dir: Path, skip_first_and_last: bool = True, bound_th: float = BOUND_TH
) -> list[ObjectScore]:
    """Scores of every object of one video (SA-V or DAVIS layout, detected from ``gt_dir``)."""
    video = gt_dir.name
    entries = sorted(gt_dir.iterdir())
    scores = []
    if entries and all(p.is_file() and p.suffix == ".png" for p in entries):  # DAVIS: indexed PNGs
        names = _frames(gt_dir, skip_first_and_last)
        pairs = [(_read_png(pred_dir / n), np.asarray(Image.open(gt_dir / n))) for n in names]
        ids: list[int] = []
        for prediction, target in pairs:  # order of first appearance does not matter; ids do
            ids.extend(int(v) for v in np.unique(np.concatenate([prediction.ravel(), target.ravel()])) if v)
        for object_id in sorted(set(ids)):
            result = score_frames(((p == object_id, t == object_id) for p, t in pairs), bound_th)
            if result is not None:
                scores.append(ObjectScore(video, str(object_id), *result))
        return scores
    for object_dir in (p for p in entries if p.is_dir()):  # SA-V: one folder of binary PNGs per object
        names = _frames(object_dir, skip_first_and_last)
        frames = (
            (_read_png(pred_dir / object_dir.name / n) > 0, np.asarray(Image.open(object_dir / n)) > 0)
            for n in names
        )
        result = score_frames(frames, bound_th)
        if result is not None:
            scores.append(ObjectScore(video, object_dir.name, *result))
    return scores


@dataclass
class VosEvaluation:
    """Per-object scores and the global means (x100, as SA-V reports them)."""

    objects: list[ObjectScore]
    skipped_videos: list[str] = field(default_factory=list)

    def summary(self) -> dict[str, object]:
        j = 100.0 * float(np.mean([o.j for o in self.objects])) if self.objects else float("nan")
        f = 100.0 * float(np.mean([o.f for o in self.objects])) if self.objects else float("nan")
        per_video: dict[str, dict[str, dict[str, float]]] = {}
        for o in self.objects:
            per_video.setdefault(o.video, {})[o.object_id] = {
                "J": 100 * o.j,
                "F": 100 * o.f,
                "J&F": 50 * (o.j + o.f),
                "frames": o.frames,
            }
        return {"J": j, "F": f, "J&F": (j + f) / 2, "num_objects": len(self.objects), "videos": per_video}


def evaluate_vos(
    gt_root: str | Path,
    pred_root: str | Path,
    strict: bool = True,
    skip_first_and_last: bool = True,
    bound_th: float = BOUND_TH,
) -> VosEvaluation:
    """J&F of every video folder of ``gt_root`` against the same folder under ``pred_root``.

    Args:
        strict: every ground-truth video needs a prediction folder (else only shared videos count).
    """
    gt_root, pred_root = Path(gt_root), Path(pred_root)
    for root, what in ((gt_root, "ground-truth"), (pred_root, "prediction")):
        if not root.is_dir():
            raise FileNotFoundError(f"{what} root {root} is not a folder")
    videos = sorted(p.name for p in gt_root.iterdir() if p.is_dir())
    if not videos:
        raise FileNotFoundError(f"ground-truth root {gt_root} has no video folders")
    missing = [v for v in videos if not (pred_root / v).is_dir()]
    if missing and strict:
        raise FileNotFoundError(
            f"prediction root {pred_root} lacks videos {missing[:5]} (use strict=False to skip)"
        )
    objects = []
    for video in videos:
        if video not in missing:
            objects.extend(evaluate_video(gt_root / video, pred_root / video, skip_first_and_last, bound_th))
    return VosEvaluation(objects, missing)
