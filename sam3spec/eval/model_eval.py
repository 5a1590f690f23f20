"""Run a model (student or teacher, one code path) over an SA-Co eval split, write COCO results, score.

Both kinds of model go through the teacher protocol (``preprocess`` / ``encode_image`` /
``predict``): a student checkpoint is wrapped in :class:`~sam3spec.eval.student_view.StudentTeacherView`,
so the two are scored by the same code on the same pairs. The split is an SA-Co Gold triple (or
any SA-Co files with the same pairs, one per annotator) and the folder of its images; for a data
root (:mod:`sam3spec.data.layout`) its ``saco/eval`` files and ``sa1b/eval`` images.

Files written under ``out``::

    predictions_segm.json   COCO results: [{image_id (pair id), category_id, segmentation (RLE),
                            bbox [x, y, w, h] pixels, score}], what SAM 3's evaluator reads
    presence.json           {pair id: presence probability} (for presence_f1; not part of COCO)
    vos/<video>/<obj>/*.png SA-V val masks of the streaming video predictor (students)
    metrics.json            cgF1, pmF1, IL_MCC, mIoU, presence_f1, J, F, J&F (+ details)
"""

from __future__ import annotations

import copy
import json
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from pycocotools import mask as mask_utils

from sam3spec.atomic import atomic_write_json
from sam3spec.data.files import read_image
from sam3spec.eval.saco_files import evaluate_saco, load_ground_truth
from sam3spec.models.outputs import resize_mask_logits

if TYPE_CHECKING:
    from sam3spec.eval.video import VideoSplit


@dataclass
class PhrasePrediction:
    """Predictions of one (image, phrase) pair at the image's resolution.

    Attributes:
        masks: ``[Q, H, W]`` bool (mask logits upsampled bilinearly, > 0).
        boxes_xywh: ``[Q, 4]`` pixel boxes.
        scores: ``[Q]`` sigmoid(query logit) x sigmoid(presence logit).
        presence: presence probability.
    """

    masks: np.ndarray
    boxes_xywh: np.ndarray
    scores: np.ndarray
    presence: float


def load_model(spec: str | Path, device: str = "cpu"):
    """A teacher folder or a student checkpoint.

    Returns:
        ``(model, kind)``: a teacher-protocol object and ``"teacher"`` / ``"student"``.
    """
    from sam3spec.teacher.loading import load_teacher

    path = Path(spec)
    if not path.is_dir():
        raise FileNotFoundError(
            f"--model {spec}: not a folder (give a student checkpoint or a teacher folder)"
        )
    if (path / "teacher.json").is_file() or (path / "detector").is_dir():
        return load_teacher(path, device=device), "teacher"
    from sam3spec.checkpoint import load_student
    from sam3spec.eval.student_view import StudentTeacherView

    return StudentTeacherView(load_student(path, verbose=False).to(device)), "student"


@torch.no_grad()
def predict_phrases(model, image: np.ndarray, texts: list[str]) -> list[PhrasePrediction]:
    """One image, several phrases (the image is encoded once).

    Args:
        model: a teacher-protocol model.
        image: ``[H, W, 3]`` uint8 RGB. Assumes the model's input covers the whole image (square
            images, as in the concept world; the student letterboxes, which is exact for squares).
        texts: phrases.
    """
    height, width = image.shape[:2]
    pixels = model.preprocess(torch.from_numpy(np.array(image, copy=True)).permute(2, 0, 1)[None])
    embeddings = model.encode_image(pixels).select(torch.zeros(len(texts), dtype=torch.long))
    outputs = model.predict(embeddings, text=list(texts))
    logits = resize_mask_logits(outputs.pred_masks.float(), (height, width))
    masks = (logits > 0).cpu().numpy()
    boxes = outputs.pred_boxes.float().clamp(0, 1).cpu().numpy() * np.array([width, height, width, height])
    boxes_xywh = np.concatenate([boxes[..., :2], boxes[..., 2:] - boxes[..., :2]], axis=-1).clip(min=0)
    scores = outputs.scores().float().cpu().numpy()
    presence = outputs.presence_logits.float().sigmoid()[:, 0].cpu().numpy()
    return [
        PhrasePrediction(masks[i], boxes_xywh[i], scores[i], float(presence[i])) for i in range(len(texts))
    ]


def coco_results(pair_id: int, prediction: PhrasePrediction, min_score: float) -> list[dict[str, Any]]:
    """COCO result entries of one pair (queries scoring below ``min_score`` are not written)."""
    out = []
    for mask, box, score in zip(prediction.masks, prediction.boxes_xywh, prediction.scores, strict=True):
        if score < min_score:
            continue
        encoded = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
        encoded["counts"] = encoded["counts"].decode("ascii")
        out.append(
            {
                "image_id": int(pair_id),
                "category_id": 1,
                "segmentation": encoded,
                "bbox": [round(float(v), 3) for v in box],
                "score": round(float(score), 5),
            }
        )
    return out


def predict_split(
    model,
    gt_path: Path,
    image_root: Path,
    out: Path,
    min_score: float = 0.05,
    limit: int | None = None,
    progress: bool = False,
) -> tuple[Path, Path]:
    """Predict every pair of an SA-Co file; writes ``predictions_segm.json`` and ``presence.json``.

    Args:
        gt_path: SA-Co file defining the pairs (``images[]`` with ``file_name`` and ``text_input``).
        image_root: folder holding the ``file_name`` images.
        limit: only the first ``limit`` images (for smoke tests).
    """
    from tqdm import tqdm

    data = json.loads(Path(gt_path).read_text())
    by_file: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for pair in data["images"]:
        by_file[pair["file_name"]].append(pair)
    files = sorted(by_file)[:limit] if limit else sorted(by_file)
    results, presence = [], {}
    for name in tqdm(files, desc="eval", disable=not progress):
        path = Path(image_root) / name
        if not path.is_file():
            raise FileNotFoundError(f"image {path} of {gt_path} not found (is the image folder right?)")
        image = read_image(path)  # the GT's pixel grid: no EXIF turn, no downscale
        pairs = by_file[name]
        for pair, prediction in zip(
            pairs, predict_phrases(model, image, [p["text_input"] for p in pairs]), strict=True
        ):
            results.extend(coco_results(pair["id"], prediction, min_score))
            presence[str(pair["id"])] = prediction.presence
    pred_path, presence_path = out / "predictions_segm.json", out / "presence.json"
    atomic_write_json(results, pred_path, indent=None, sort_keys=False)
    atomic_write_json(presence, presence_path, indent=None, sort_keys=False)
    return pred_path, presence_path


def video_metrics(
    model, kind: str, videos: VideoSplit | None, out: Path, limit: int | None = None
) -> dict[str, Any]:
    """J, F, J&F of a student on SA-V val videos (the streaming video predictor of
    :mod:`sam3spec.eval.video`, with memory; masks written under ``out/vos``), scored by
    :func:`sam3spec.eval.vos.evaluate_vos`. The teacher has no text-prompted video path here: None."""
    if kind != "student":
        return {"J": None, "F": None, "J&F": None, "vos_note": "video J&F is measured for students only"}
    if videos is None:
        return {"J": None, "F": None, "J&F": None, "vos_note": "no SA-V val videos given"}
    annotations = videos.annotations
    if not annotations.is_dir() or not any(annotations.iterdir()):
        return {"J": None, "F": None, "J&F": None, "vos_note": f"no SA-V val videos in {annotations}"}
    from sam3spec.eval.video import predict_split as predict_videos
    from sam3spec.eval.vos import evaluate_vos

    predict_videos(model.student, videos, out / "vos", use_memory=True, limit=limit)
    names = sorted(p.name for p in (out / "vos").iterdir() if p.is_dir())
    summary = evaluate_vos(annotations, out / "vos", strict=limit is None).summary()
    note = f"{summary['num_objects']} object(s) in {len(names)} val video(s), streaming predictor with memory"
    return {"J": summary["J"], "F": summary["F"], "J&F": summary["J&F"], "vos_note": note}


BREAKDOWN = {
    "positive+hard_negative": ("positive", "hard_negative"),
    "positive+negative": ("positive", "negative"),
}


def kind_breakdown(
    truths: list, pred_path: Path, presence: dict[int, float], kinds: Mapping[int, str]
) -> dict[str, Any]:
    """SA-Co metrics on pair subsets by query kind (``kinds``: pair id -> positive,
    hard_negative, e.g. "blue circle" when only a red one is present, negative): IL_MCC of
    positives vs hard negatives is what Stage 3 must improve. Empty when no kinds are known."""
    if not kinds:
        return {}
    out = {}
    for name, wanted in BREAKDOWN.items():
        subset = []
        for truth in truths:
            picked = copy.copy(truth)
            picked.pairs = {k: v for k, v in truth.pairs.items() if kinds.get(k) in wanted}
            subset.append(picked)
        summary = evaluate_saco(subset, pred_path, "segm", presence=presence).summary()
        out[name] = {
            key: summary[key] for key in ("cgF1", "pmF1", "IL_MCC", "IL_FPR", "presence_f1", "num_pairs")
        }
    return out


def evaluate_model(
    model_spec: str | Path,
    gold_files: Sequence[str | Path],
    image_root: str | Path,
    out: str | Path,
    device: str = "cpu",
    min_score: float = 0.05,
    limit: int | None = None,
    progress: bool = False,
    videos: VideoSplit | None = None,
    pair_kinds: Mapping[int, str] | None = None,
) -> dict[str, Any]:
    """``sam3spec eval model``: predictions on an SA-Co split, scored; writes ``out/metrics.json``.

    Args:
        model_spec: a student checkpoint or a teacher folder.
        gold_files: the split's SA-Co files, one per annotator (the first defines the pairs).
        image_root: the folder their ``file_name`` entries are relative to.
        out: output folder.
        videos: SA-V val videos with their object phrases, for the students' video J&F
            (:func:`video_metrics`; ``vos_note`` says what was measured).
        pair_kinds: pair id -> query kind, for :func:`kind_breakdown`.
    """
    gold_files = [Path(path) for path in gold_files]
    if not gold_files or not gold_files[0].is_file():
        raise FileNotFoundError(
            f"SA-Co eval file {gold_files[0] if gold_files else '(none given)'} not found"
        )
    model, kind = load_model(model_spec, device)
    out = Path(out)
    pred_path, presence_path = predict_split(
        model, gold_files[0], Path(image_root), out, min_score, limit, progress
    )
    presence = {int(k): v for k, v in json.loads(presence_path.read_text()).items()}
    gts = [load_ground_truth(p) for p in gold_files if p.is_file()]
    if limit:  # score only the pairs that were predicted
        for truth in gts:
            truth.pairs = {k: v for k, v in truth.pairs.items() if k in presence}
    segm = evaluate_saco(gts, pred_path, "segm", presence=presence).summary()
    bbox = evaluate_saco(gts, pred_path, "bbox", presence=presence).summary()
    metrics = {key: segm[key] for key in ("cgF1", "pmF1", "IL_MCC", "mIoU", "presence_f1")}
    metrics.update(video_metrics(model, kind, videos, out, limit))
    metrics.update(
        {
            "model": str(model_spec),
            "kind": kind,
            "data": str(gold_files[0]),
            "predictions": str(pred_path),
            "segm": segm,
            "bbox": bbox,
        }
    )
    metrics["by_kind"] = kind_breakdown(gts, pred_path, presence, pair_kinds or {})
    atomic_write_json(metrics, out / "metrics.json", indent=None, sort_keys=False)
    return metrics
