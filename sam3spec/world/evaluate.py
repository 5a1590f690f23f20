"""Evaluation on a concept world: teacher and students on its held-out split, side by side.

:func:`score_pairs` runs any :class:`~sam3spec.teacher.protocol.Teacher` (a student through
:class:`~sam3spec.eval.student_view.StudentTeacherView`) over images with their phrases and
ground-truth instances, upsamples the mask logits to the image size and scores each pair with
:mod:`sam3spec.eval.metrics` (matched mIoU, presence F1, cgF1). :func:`evaluate_world` does it on
the held-out eval split of a generated world (the SA-Co Gold files ``sam3spec data generate``
writes); :func:`evaluate_model_on_world` runs the product's SA-Co evaluator
(:func:`sam3spec.eval.model_eval.evaluate_model`) with what only the world knows (video phrases,
query kinds).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from scipy.special import expit

from sam3spec.eval.metrics import PairResult, evaluate_pair, summarize
from sam3spec.models.outputs import resize_mask_logits
from sam3spec.teacher.protocol import Teacher
from sam3spec.world.generate import WorldPaths

if TYPE_CHECKING:
    from sam3spec.eval.video import VideoSplit


@torch.no_grad()
def image_outputs(
    teacher: Teacher, image: np.ndarray, texts: Sequence[str]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Raw per-phrase outputs of one image: what :func:`predict_image` scores and what the score
    calibration (:mod:`sam3spec.world.teacher.calibration`) refits.

    Args:
        teacher: the teacher.
        image: ``[H, W, 3]`` uint8 RGB.
        texts: ``P`` phrases (at least one).

    Returns:
        ``(masks [P, Q, H, W] bool`` (logits upsampled bilinearly to the image size, > 0),
        ``query logits [P, Q]``, ``presence probabilities [P])``.
    """
    height, width = image.shape[:2]
    pixels = teacher.preprocess(torch.from_numpy(np.array(image, copy=True)).permute(2, 0, 1)[None])
    embeddings = teacher.encode_image(pixels)
    embeddings = embeddings.select(torch.zeros(len(texts), dtype=torch.long))
    outputs = teacher.predict(embeddings, text=list(texts))
    logits = resize_mask_logits(outputs.pred_masks.float(), (height, width))
    presence = outputs.presence_logits.float().sigmoid()[:, 0]
    return (logits > 0).cpu().numpy(), outputs.pred_logits.float().cpu().numpy(), presence.cpu().numpy()


def predict_image(
    teacher: Teacher, image: np.ndarray, texts: Sequence[str]
) -> list[tuple[np.ndarray, np.ndarray, float]]:
    """Masks, scores and presence for each phrase of one image.

    Args:
        teacher: the teacher.
        image: ``[H, W, 3]`` uint8 RGB.
        texts: phrases.

    Returns:
        Per phrase: ``masks`` ``[Q, H, W]`` bool (logits upsampled bilinearly to the image size,
        > 0), ``scores`` ``[Q]`` (sigmoid(logit) x sigmoid(presence)), presence probability.
    """
    if not texts:
        return []
    masks, logits, presence = image_outputs(teacher, image, texts)
    scores = detection_scores(logits, presence)
    return [(masks[index], scores[index], float(presence[index])) for index in range(len(texts))]


def detection_scores(logits: np.ndarray, presence: np.ndarray | float) -> np.ndarray:
    """``sigmoid(query logit) x presence probability`` (:meth:`Sam3Outputs.scores`): logits
    ``[..., Q]`` with presence ``[...]`` (e.g. ``[P, Q]`` and ``[P]``, or ``[Q]`` and a float);
    scipy's ``expit``: no overflow for very negative logits."""
    return np.expand_dims(presence, -1) * expit(logits)


def score_pairs(
    teacher: Teacher, samples: Iterable[tuple[np.ndarray, Sequence[str], Sequence[np.ndarray]]]
) -> tuple[dict[str, float], list[PairResult]]:
    """Evaluate ``(image, phrases, instance masks per phrase)`` samples.

    Returns:
        ``(summary, pair results)``; summary keys as :func:`sam3spec.eval.metrics.summarize`.
    """
    results = []
    for image, texts, instances in samples:
        for (masks, scores, presence), targets in zip(
            predict_image(teacher, image, texts), instances, strict=True
        ):
            results.append(evaluate_pair(masks, scores, targets, presence))
    return summarize(results), results


def world_eval_samples(world_dir: str | Path, limit: int | None = None, split: str = "eval"):
    """Yield ``(image, phrases, instances)`` per image of a split of a generated concept world.

    ``split="eval"`` (the held-out split every figure is reported on) reads the SA-Co Gold file of
    annotator ``a`` (the world writes three identical copies); ``split="train"`` the training
    split's SA-Co Silver file (used to fit, never to report). Read with the data layer's
    :class:`~sam3spec.data.saco.SACoDataset`; pairs of one image are consecutive.
    """
    from sam3spec.data.faults import Skipped
    from sam3spec.data.saco import SACoDataset

    if split not in ("eval", "train"):
        raise ValueError(f"split must be 'eval' or 'train', got {split!r}")
    paths = WorldPaths.of(world_dir)
    annotations = list(paths.saco_eval) if split == "eval" else [paths.saco_train]
    if not annotations[0].is_file():
        raise FileNotFoundError(
            f"{annotations[0]} not found: generate a world first (sam3spec data generate --out {world_dir} ...)"
        )
    dataset = SACoDataset(annotations, paths.sa1b_eval if split == "eval" else paths.sa1b_train)
    current, image, texts, instances, count = None, None, [], [], 0
    for index in range(len(dataset)):
        sample = dataset[index]
        if isinstance(sample, Skipped):
            continue
        if sample["file_name"] != current:
            if current is not None:
                yield image, texts, instances
                count += 1
                if limit is not None and count >= limit:
                    return
            current, texts, instances = sample["file_name"], [], []
            image = sample["image"].permute(1, 2, 0).numpy()
        texts.append(sample["phrase"])
        instances.append(sample["masks"].numpy())
    if current is not None:
        yield image, texts, instances


def evaluate_world(teacher: Teacher, world_dir: str | Path, limit: int | None = None) -> dict[str, float]:
    """Teacher metrics on the held-out eval split of the concept world in ``world_dir``
    (:func:`~sam3spec.eval.metrics.summarize`: on an empty split every metric is None and
    ``note`` is ``not defined: 0 pairs``)."""
    summary, _ = score_pairs(teacher, world_eval_samples(world_dir, limit))
    return summary


METRIC_KEYS = ("mIoU", "presence_f1", "cgF1", "pmF1", "IL_MCC")


def evaluate_models(
    models: dict[str, object], world: str | Path, limit: int | None = None
) -> dict[str, dict[str, float]]:
    """Metrics of each model (a :class:`~sam3spec.teacher.protocol.Teacher`) on the concept
    world's held-out eval split: ``{name: {mIoU, presence_f1, cgF1, ...}}``."""
    return {name: evaluate_world(model, world, limit) for name, model in models.items()}


def ratios(metrics: dict[str, dict[str, float]]) -> dict[str, float | None]:
    """Student / teacher for each headline metric (None where the teacher's is 0 or either is
    not defined)."""
    teacher, student = metrics["teacher"], metrics["student"]
    return {
        key: student[key] / teacher[key] if teacher[key] and student[key] is not None else None
        for key in METRIC_KEYS
    }


def write_metrics(metrics: dict[str, dict[str, float]], path: str | Path) -> Path:
    """``metrics.json`` = ``{"teacher": {...}, "student": {...}}`` (+ ``stage3`` and ``by_kind``
    when the pipeline ran Stage 3, ``diagnosis`` when measured; atomic)."""
    from sam3spec.atomic import atomic_write_json

    path = Path(path)
    keys = ("teacher", "student", "stage3", "by_kind", "diagnosis")
    atomic_write_json({name: metrics[name] for name in keys if name in metrics}, path)
    return path


def diagnose_models(
    models: dict[str, object], world: str | Path, out: str | Path, limit: int | None = None
) -> dict[str, dict]:
    """The diagnosis (:mod:`sam3spec.eval.diagnosis`) of each loaded model on the world's held-out
    split: its predictions written as SAM 3 writes them under ``out/<name>``, scored on the Gold
    files a/b/c, hard negatives from the world's manifest. ``limit``: the first N images."""
    from sam3spec.eval.diagnosis import diagnose_files
    from sam3spec.eval.model_eval import mask_geometry, predict_split
    from sam3spec.world.manifest import pair_kinds

    paths = WorldPaths.of(world)
    if not paths.saco_eval[0].is_file():
        raise FileNotFoundError(f"{paths.saco_eval[0]} not found: --world must be a generated concept world")
    kinds = pair_kinds(world)
    out_dir = Path(out)
    result = {}
    for name, model in models.items():
        pred, presence = predict_split(
            model, paths.saco_eval[0], paths.sa1b_eval, out_dir / name, limit=limit
        )
        result[name] = diagnose_files(paths.saco_eval, pred, presence, mask_geometry(model), kinds, limit)
    return result


def read_metrics(path: str | Path) -> dict[str, dict[str, float]]:
    return json.loads(Path(path).read_text())


def world_video_split(world: str | Path) -> VideoSplit:
    """The world's SA-V val videos with their objects' phrases (from its manifest)."""
    from sam3spec.eval.video import VideoSplit
    from sam3spec.world.manifest import object_phrases

    return VideoSplit(WorldPaths.of(world).sav_val, object_phrases(world))


def evaluate_model_on_world(
    model_spec: str | Path,
    world: str | Path,
    out: str | Path,
    device: str = "cpu",
    min_score: float = 0.05,
    limit: int | None = None,
    progress: bool = False,
) -> dict:
    """:func:`sam3spec.eval.model_eval.evaluate_model` on the world's held-out split (Gold files
    a/b/c, images in ``sa1b/eval``), with the students' video J&F on its SA-V val videos and the
    breakdown by query kind. ``model_spec`` ``"teacher"`` is the shipped concept-world teacher."""
    from sam3spec.eval.model_eval import evaluate_model
    from sam3spec.world.manifest import pair_kinds
    from sam3spec.world.teacher import shipped_teacher_path

    paths = WorldPaths.of(world)
    if not paths.saco_eval[0].is_file():
        raise FileNotFoundError(
            f"{paths.saco_eval[0]} not found: --data must be a world (sam3spec data generate --out {world})"
        )
    spec = shipped_teacher_path() if str(model_spec) == "teacher" else model_spec
    return evaluate_model(
        spec,
        paths.saco_eval,
        paths.sa1b_eval,
        out,
        device,
        min_score,
        limit,
        progress,
        videos=world_video_split(world),
        pair_kinds=pair_kinds(world),
    )
