"""J&F of the video predictor on an SA-V val split, with and without memory.

Per val video and ground-truth object, the predictor is started with the object's phrase (SA-V
has no phrases: they are given, :class:`VideoSplit`; the concept world's name size, colour and
shape) and stepped over the annotated frames (every 4th frame of the
24 fps video; the memory is trained on annotated frames, so consecutive steps are as far apart as
in training). The object's predicted mask in a frame is the union of every instance found (the
concept-segmentation view: a phrase shared by two objects of a video scores the union against
each; ``select="top1"`` instead takes the best-scoring instance of every frame, whatever its
score: for a student whose query scores are not yet informative, this measures the masks and the
memory's effect on them). Predictions go to ``<out>/<mode>/<video>/<object:03d>/<frame:05d>.png`` and are scored by
:func:`j_and_f` (SA-V's evaluator semantics, ``sam3spec.eval.vos``).

J is also reported per kind of frame (:func:`frame_categories`): the first annotated frame where an
object is visible again after an occlusion or exit (``reappearance``; often a sliver of the object
re-emerging), the ``REENTRY_WINDOW`` annotated frames after it (``after_reappearance``), the
other frames showing the object (``visible``) and the frames without it (``absent``). Memory
should help most after occlusion / re-entry: :attr:`VideoEvalResult.reentry_margin` is the J gain
on the re-entry frames (the first two kinds) minus the J gain on ``visible`` frames.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from sam3spec.data.files import read_image
from sam3spec.video.outputs import write_mask_png
from sam3spec.video.predictor import VideoPredictor

REENTRY_WINDOW = 3  # annotated frames after a re-appearance counted as "after re-entry" (0.5 s at 6 fps)
CATEGORIES = ("reappearance", "after_reappearance", "visible", "absent")
REENTRY = ("reappearance", "after_reappearance")


@dataclass(frozen=True)
class VideoSplit:
    """SA-V val videos (``sav_val.txt``, ``JPEGImages_24fps/``, ``Annotations_6fps/``) with the
    phrase of every annotated object.

    Attributes:
        root: the val folder (a data root's ``sav/val``).
        phrases: ``{video_id: [phrase of object 0, object 1, ...]}``.
    """

    root: Path
    phrases: Mapping[str, Sequence[str]] = field(default_factory=dict)

    @property
    def annotations(self) -> Path:
        return Path(self.root) / "Annotations_6fps"

    @property
    def frames(self) -> Path:
        return Path(self.root) / "JPEGImages_24fps"


def j_and_f(gt_root: Path, pred_root: Path) -> dict:
    """SA-V J&F (x100) of a prediction tree; delegates to ``sam3spec.eval.vos`` (kept as the one
    indirection so the metric implementation can move without touching this module)."""
    from sam3spec.eval.vos import evaluate_vos

    return evaluate_vos(gt_root, pred_root).summary()


@dataclass
class VideoEvalResult:
    """J&F with and without memory (x100), and J per kind of frame.

    Attributes:
        with_memory / without_memory: :func:`j_and_f` summaries.
        by_category: ``{category: {"frames": n, "J_with": x, "J_without": y}}`` (J x100, mean
            over the frames of that kind; categories of :func:`frame_categories`, absent kinds
            left out).
    """

    with_memory: dict
    without_memory: dict
    by_category: dict

    @property
    def gain(self) -> float:
        return float(self.with_memory["J&F"] - self.without_memory["J&F"])

    def _gain(self, categories: tuple[str, ...]) -> float:
        rows = [self.by_category[c] for c in categories if c in self.by_category]
        frames = sum(r["frames"] for r in rows)
        if not frames:
            return float("nan")
        return sum(r["frames"] * (r["J_with"] - r["J_without"]) for r in rows) / frames

    @property
    def reentry_gain(self) -> float:
        """J gain (x100) on the re-appearance frames and the ``REENTRY_WINDOW`` frames after them."""
        return self._gain(REENTRY)

    @property
    def visible_gain(self) -> float:
        """J gain (x100) on the other frames showing the object."""
        return self._gain(("visible",))

    @property
    def reentry_margin(self) -> float:
        """How much more memory helps after re-entry than elsewhere (> 0: most after re-entry)."""
        return self.reentry_gain - self.visible_gain

    def as_dict(self) -> dict:
        keep = ("J", "F", "J&F", "num_objects")
        return {
            "with_memory": {k: self.with_memory[k] for k in keep},
            "without_memory": {k: self.without_memory[k] for k in keep},
            "jf_gain": self.gain,
            "J_by_frame": self.by_category,
            "reentry_window": REENTRY_WINDOW,
            "reentry_J_gain": self.reentry_gain,
            "visible_J_gain": self.visible_gain,
            "reentry_margin": self.reentry_margin,
        }

    def describe(self) -> str:
        """One line per kind of frame, for gate notes and logs."""
        return "; ".join(
            f"{c} {r['J_with']:.1f} vs {r['J_without']:.1f} ({r['frames']} frames)"
            for c, r in self.by_category.items()
        )


def predict_split(
    student,
    videos: VideoSplit,
    out: Path,
    use_memory: bool,
    threshold: float = 0.5,
    limit: int | None = None,
    select: str = "threshold",
) -> dict[tuple[str, str, str], np.ndarray]:
    """Write the prediction tree of one mode; returns ``{(video, object, frame): mask}``.

    ``select``: ``"threshold"`` (union of the instances scoring >= ``threshold``) or ``"top1"``.
    """
    if select not in ("threshold", "top1"):
        raise ValueError(f"select must be 'threshold' or 'top1', got {select!r}")
    predictions = {}
    names = sorted(p.name for p in videos.annotations.iterdir() if p.is_dir())[:limit]
    missing = [name for name in names if name not in videos.phrases]
    if missing:
        raise KeyError(f"no object phrases for val video(s) {', '.join(missing[:5])}")
    for video in names:
        for object_dir in sorted(p for p in (videos.annotations / video).iterdir() if p.is_dir()):
            names = sorted(p.stem for p in object_dir.glob("*.png"))
            predictor = VideoPredictor(
                student, threshold=0.0 if select == "top1" else threshold, use_memory=use_memory
            )
            predictor.start(text=videos.phrases[video][int(object_dir.name)])
            for name in names:
                frame = read_image(videos.frames / video / f"{name}.jpg")
                result = predictor.step(frame)
                if not len(result.masks):
                    mask = np.zeros(frame.shape[:2], bool)
                else:
                    mask = result.masks[0] if select == "top1" else result.masks.any(0)
                write_mask_png(out / video / object_dir.name / f"{name}.png", mask)
                predictions[(video, object_dir.name, name)] = mask
    return predictions


def frame_categories(gt_root: Path, window: int = REENTRY_WINDOW) -> dict[tuple[str, str, str], str]:
    """Kind of every annotated ``(video, object, frame)`` (see the module docstring): the first
    frame where an object is visible again after at least one annotated frame without it is
    ``reappearance``; the next ``window`` frames, while it stays visible, ``after_reappearance``."""
    found = {}
    for video_dir in sorted(p for p in gt_root.iterdir() if p.is_dir()):
        for object_dir in sorted(p for p in video_dir.iterdir() if p.is_dir()):
            seen, gone, since = False, False, None  # since: frames after the last re-appearance
            for path in sorted(object_dir.glob("*.png")):
                visible = bool((np.asarray(Image.open(path)) > 0).any())
                if not visible:
                    kind, since = "absent", None
                    gone = gone or seen
                elif seen and gone:
                    kind, since = "reappearance", 0
                elif since is not None and since < window:
                    kind, since = "after_reappearance", since + 1
                else:
                    kind, since = "visible", None
                if visible:
                    seen, gone = True, False
                found[(video_dir.name, object_dir.name, path.stem)] = kind
    return found


def reappearance_frames(gt_root: Path) -> list[tuple[str, str, str]]:
    """``(video, object, frame)`` of annotated frames where an object is visible again after at
    least one annotated frame without it."""
    return [key for key, kind in frame_categories(gt_root).items() if kind == "reappearance"]


def evaluate_memory(
    student,
    videos: VideoSplit,
    out: str | Path,
    threshold: float = 0.5,
    limit: int | None = None,
    select: str = "threshold",
) -> VideoEvalResult:
    """Run both modes on the val split and score them; writes ``out/video_eval.json``."""
    out = Path(out)
    gt_root = videos.annotations
    modes = {}
    for name, use in (("with_memory", True), ("without_memory", False)):
        modes[name] = predict_split(student, videos, out / name, use, threshold, limit, select)
    if limit is not None:  # score only the videos predicted
        gt_root = _subset(gt_root, out / "gt_subset", sorted({v for v, _, _ in modes["with_memory"]}))
    scores = {name: j_and_f(gt_root, out / name) for name in modes}
    from sam3spec.eval.vos import region_similarity  # J of one frame, as j_and_f computes it

    kinds = frame_categories(gt_root)
    per_kind: dict[str, list[list[float]]] = {}  # kind -> per frame [J with, J without]
    for key in modes["with_memory"]:
        video, obj, frame = key
        target = np.asarray(Image.open(gt_root / video / obj / f"{frame}.png")) > 0
        per_kind.setdefault(kinds[key], []).append([region_similarity(modes[m][key], target) for m in modes])
    by_category = {}
    for category in CATEGORIES:
        if category in per_kind:
            j_with, j_without = 100.0 * np.mean(per_kind[category], axis=0)
            by_category[category] = {
                "frames": len(per_kind[category]),
                "J_with": float(j_with),
                "J_without": float(j_without),
            }
    result = VideoEvalResult(scores["with_memory"], scores["without_memory"], by_category)
    (out / "video_eval.json").write_text(json.dumps(result.as_dict(), indent=1) + "\n", encoding="utf-8")
    return result


def _subset(gt_root: Path, target: Path, videos: list[str]) -> Path:
    import shutil

    if target.exists():
        shutil.rmtree(target)
    for video in videos:
        shutil.copytree(gt_root / video, target / video)
    return target
