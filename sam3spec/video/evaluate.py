"""J&F of the video predictor on a concept world's SA-V val split, with and without memory.

Per val video and ground-truth object, the predictor is started with the object's phrase (size,
colour, shape from ``world.json``) and stepped over the annotated frames (every 4th frame of the
24 fps video; the memory is trained on annotated frames, so consecutive steps are as far apart as
in training). The object's predicted mask in a frame is the union of every instance found (the
concept-segmentation view: a phrase shared by two objects of a video scores the union against
each; ``select="top1"`` instead takes the best-scoring instance of every frame, whatever its
score: for a student whose query scores are not yet informative, this measures the masks and the
memory's effect on them). Predictions go to ``<out>/<mode>/<video>/<object:03d>/<frame:05d>.png`` and are scored by
:func:`j_and_f` (SA-V's evaluator semantics, ``sam3spec.eval.vos``).

``after_reappearance`` also scores only the frames right after an object becomes visible again
(the first annotated frame after an occlusion or exit), where memory should matter most.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from sam3spec.video.data import object_phrases
from sam3spec.video.outputs import write_mask_png
from sam3spec.video.predictor import VideoPredictor


def j_and_f(gt_root: Path, pred_root: Path) -> dict:
    """SA-V J&F (x100) of a prediction tree; delegates to ``sam3spec.eval.vos`` (kept as the one
    indirection so the metric implementation can move without touching this module)."""
    from sam3spec.eval.vos import evaluate_vos

    return evaluate_vos(gt_root, pred_root).summary()


@dataclass
class VideoEvalResult:
    """J&F with and without memory (x100) and the same on frames right after a re-appearance."""

    with_memory: dict
    without_memory: dict
    reappearance_with: float
    reappearance_without: float
    reappearance_frames: int

    @property
    def gain(self) -> float:
        return float(self.with_memory["J&F"] - self.without_memory["J&F"])

    def as_dict(self) -> dict:
        keep = ("J", "F", "J&F", "num_objects")
        return {"with_memory": {k: self.with_memory[k] for k in keep},
                "without_memory": {k: self.without_memory[k] for k in keep}, "jf_gain": self.gain,
                "reappearance_J_with": self.reappearance_with, "reappearance_J_without": self.reappearance_without,
                "reappearance_frames": self.reappearance_frames}  # fmt: skip


def predict_split(student, world: Path, out: Path, use_memory: bool, threshold: float = 0.5,
                  limit: int | None = None, select: str = "threshold") -> dict[tuple[str, str, str], np.ndarray]:  # fmt: skip
    """Write the prediction tree of one mode; returns ``{(video, object, frame): mask}``.

    ``select``: ``"threshold"`` (union of the instances scoring >= ``threshold``) or ``"top1"``.
    """
    if select not in ("threshold", "top1"):
        raise ValueError(f"select must be 'threshold' or 'top1', got {select!r}")
    val = Path(world) / "sav" / "val"
    phrases = object_phrases(world)
    predictions = {}
    videos = sorted(p.name for p in (val / "Annotations_6fps").iterdir() if p.is_dir())[:limit]
    for video in videos:
        for object_dir in sorted(p for p in (val / "Annotations_6fps" / video).iterdir() if p.is_dir()):
            names = sorted(p.stem for p in object_dir.glob("*.png"))
            predictor = VideoPredictor(student, threshold=0.0 if select == "top1" else threshold, use_memory=use_memory)
            predictor.start(text=phrases[video][int(object_dir.name)])
            for name in names:
                frame = np.asarray(Image.open(val / "JPEGImages_24fps" / video / f"{name}.jpg").convert("RGB"))
                result = predictor.step(frame)
                if not len(result.masks):
                    mask = np.zeros(frame.shape[:2], bool)
                else:
                    mask = result.masks[0] if select == "top1" else result.masks.any(0)
                write_mask_png(out / video / object_dir.name / f"{name}.png", mask)
                predictions[(video, object_dir.name, name)] = mask
    return predictions


def reappearance_frames(gt_root: Path) -> list[tuple[str, str, str]]:
    """``(video, object, frame)`` of annotated frames where an object is visible again after at
    least one annotated frame without it."""
    found = []
    for video_dir in sorted(p for p in gt_root.iterdir() if p.is_dir()):
        for object_dir in sorted(p for p in video_dir.iterdir() if p.is_dir()):
            seen, gone = False, False
            for path in sorted(object_dir.glob("*.png")):
                visible = bool((np.asarray(Image.open(path)) > 0).any())
                if visible and seen and gone:
                    found.append((video_dir.name, object_dir.name, path.stem))
                gone = gone or (seen and not visible)
                if visible:
                    seen, gone = True, False
    return found


def evaluate_memory(student, world: str | Path, out: str | Path, threshold: float = 0.5,
                    limit: int | None = None, select: str = "threshold") -> VideoEvalResult:  # fmt: skip
    """Run both modes on the val split and score them; writes ``out/video_eval.json``."""
    world, out = Path(world), Path(out)
    gt_root = world / "sav" / "val" / "Annotations_6fps"
    modes = {}
    for name, use in (("with_memory", True), ("without_memory", False)):
        modes[name] = predict_split(student, world, out / name, use, threshold, limit, select)
    if limit is not None:  # score only the videos predicted
        gt_root = _subset(gt_root, out / "gt_subset", sorted({v for v, _, _ in modes["with_memory"]}))
    scores = {name: j_and_f(gt_root, out / name) for name in modes}
    frames = reappearance_frames(gt_root)

    def mean_j(predictions) -> float:
        values = []
        for video, obj, frame in frames:
            target = np.asarray(Image.open(gt_root / video / obj / f"{frame}.png")) > 0
            prediction = predictions[(video, obj, frame)]
            union = (target | prediction).sum()
            values.append(1.0 if union == 0 else (target & prediction).sum() / union)
        return 100.0 * float(np.mean(values)) if values else float("nan")

    result = VideoEvalResult(scores["with_memory"], scores["without_memory"], mean_j(modes["with_memory"]),
                             mean_j(modes["without_memory"]), len(frames))  # fmt: skip
    (out / "video_eval.json").write_text(json.dumps(result.as_dict(), indent=1) + "\n", encoding="utf-8")
    return result


def _subset(gt_root: Path, target: Path, videos: list[str]) -> Path:
    import shutil

    if target.exists():
        shutil.rmtree(target)
    for video in videos:
        shutil.copytree(gt_root / video, target / video)
    return target
