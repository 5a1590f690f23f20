"""Where a model's cgF1 goes: the diagnosis table of ``sam3spec eval compare`` and the main job.

cgF1 = 100 x pmF1 x IL_MCC hides which factor a student loses. :func:`diagnose` splits one SA-Co
evaluation (:func:`~sam3spec.eval.saco_files.evaluate_saco`: GT files, predictions, presence) into

* ``cgF1``, ``IL_MCC``, ``pmF1``, and pmF1 at each IoU threshold 0.50 ... 0.95 (a pmF1 that
  falls only at the high thresholds is a mask-quality loss, one low everywhere a detection loss);
* **false positives on negative pairs**: the share of pairs without a GT instance where the model
  predicts the concept present (a prediction scoring >= 0.5: the image-level FP that IL_MCC
  counts), split into hard negatives (a phrase that differs from a present object in one
  attribute, e.g. "blue circle" beside a red one) and other negatives when the pairs' query kinds
  are known (the concept world's manifest; SA-Co files do not carry them: hard negatives are then
  not measured);
* **misses by object size**: the share of GT instances not matched at IoU 0.5, per size bucket.
  Buckets are COCO's area thresholds (32^2 and 96^2 pixels) taken relative to COCO's typical
  640 x 480 image, so that they mean the same on images of any size (SA-Co's own ``area`` is
  relative too): small < 1/300 of the image, medium < 3/100, large above;
* **the mask-resolution ceiling**: the mean IoU of each GT mask with the best the model's mask
  grid can hold, an oracle that needs no model. The GT is area-averaged onto the grid of mask
  cells that cover the image (coverage in [0, 1]), resized back bilinearly as the evaluation
  resizes mask logits (:func:`~sam3spec.models.outputs.resize_mask_logits`) and thresholded at
  1/2 (logits proportional to coverage - 1/2). It is a reference, not a proven bound: logits
  fitted to the mask could keep a few more pixels (bilinear resizing rounds a cell's inner
  corners off). A student whose pmF1@0.9 lags while its ceiling is near 1 does not lose to its
  resolution; one whose small-object ceiling is low cannot segment them at that grid.

The instances that count (misses, ceiling) are the non-crowd GTs of the annotator the Gold oracle
kept for each evaluated pair, i.e. the GTs its cgF1 was scored against.
"""

from __future__ import annotations

import json
from collections.abc import Hashable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from pycocotools import mask as mask_utils

from sam3spec.eval.saco_files import SacoEvaluation, evaluate_saco, load_ground_truth, segmentation_rle
from sam3spec.models.outputs import resize_mask_logits

# COCO's small / medium thresholds (32^2, 96^2 px) over a 640 x 480 image.
SIZE_BUCKETS: tuple[tuple[str, float], ...] = (
    ("small", 32**2 / (640 * 480)),
    ("medium", 96**2 / (640 * 480)),
    ("large", float("inf")),
)
MISS_IOU = 0.5
HARD_NEGATIVE = "hard_negative"
NO_KINDS = "not measured: the pairs' query kinds are not known (SA-Co files do not mark hard negatives)"


def size_bucket(relative_area: float) -> str:
    """``small`` / ``medium`` / ``large`` for an area given as a fraction of the image."""
    return next(name for name, upper in SIZE_BUCKETS if relative_area < upper)


def mask_grid(height: int, width: int, mask_size: tuple[int, int], letterbox: bool) -> tuple[int, int]:
    """The mask cells that cover an ``height x width`` image.

    Args:
        mask_size: ``(h, w)`` of the model's mask output for its square input.
        letterbox: the input is the image letterboxed (longer side scaled to the input, the rest
            padding: the student), else stretched to the square (SAM 3).
    """
    if not letterbox:
        return int(mask_size[0]), int(mask_size[1])
    longer = max(height, width)
    return max(1, round(mask_size[0] * height / longer)), max(1, round(mask_size[1] * width / longer))


def resolution_ceiling(mask: np.ndarray, grid: tuple[int, int]) -> float:
    """IoU of ``mask`` with the best mask a ``grid`` of cells holds (module docstring).

    Args:
        mask: ``[H, W]`` bool GT mask.
        grid: ``(h, w)`` mask cells over the image (:func:`mask_grid`).

    Returns:
        IoU in [0, 1]; 1.0 for an empty GT mask (nothing to lose).
    """
    target = torch.from_numpy(np.ascontiguousarray(mask, dtype=np.float32))
    if not target.any():
        return 1.0
    coverage = F.interpolate(target[None, None], size=grid, mode="area")
    oracle = resize_mask_logits(coverage - 0.5, target.shape)[0, 0] > 0
    truth = target > 0
    union = int((oracle | truth).sum())
    return int((oracle & truth).sum()) / union


def _rate(count: int, total: int) -> float | None:
    return count / total if total else None


def diagnose(
    evaluation: SacoEvaluation,
    mask_size: tuple[int, int] | None,
    letterbox: bool = False,
    kinds: Mapping[Hashable, str] | None = None,
    mask_note: str | None = None,
) -> dict[str, Any]:
    """The diagnosis of one SA-Co evaluation (module docstring).

    Args:
        evaluation: a ``segm`` evaluation from :func:`~sam3spec.eval.saco_files.evaluate_saco`.
        mask_size: ``(h, w)`` of the model's mask output for its square input; None when it is not
            known (the ceiling is then not measured, ``mask_note`` says why).
        letterbox: the model letterboxes its input (:func:`mask_grid`).
        kinds: pair id -> ``positive`` / ``negative`` / ``hard_negative``, when known.
        mask_note: why ``mask_size`` is None.

    Returns:
        A JSON-ready dict: ``cgF1`` (x100), ``IL_MCC``, ``pmF1``, ``pmF1_at`` ({"0.50": ...}),
        ``negative`` / ``hard_negative`` ({pairs, false_positives, fp_rate} or a ``note``),
        ``misses`` ({bucket: {instances, missed, miss_rate}}), ``ceiling`` ({mean_iou, by_size,
        mask_size} or a ``note``), ``num_pairs``, ``size_buckets``. A rate over no pair or
        instance is None.
    """
    if evaluation.iou_type != "segm":
        raise ValueError(f"the diagnosis needs a segm evaluation, not {evaluation.iou_type!r}")
    summary = evaluation.metrics.summary()
    metrics = evaluation.metrics
    out: dict[str, Any] = {key: summary[key] for key in ("cgF1", "IL_MCC", "pmF1")}
    out["num_pairs"] = len(evaluation.outcomes)
    out["pmF1_at"] = (
        {f"{t:.2f}": float(v) for t, v in zip(metrics.thresholds, metrics.positive_micro_f1, strict=True)}
        if evaluation.outcomes
        else {}
    )
    negatives = {"negative": [0, 0], HARD_NEGATIVE: [0, 0]}  # [pairs, predicted present]
    misses = {name: [0, 0] for name, _ in SIZE_BUCKETS}  # [instances, missed]
    ceilings: dict[str, list[float]] = {name: [] for name, _ in SIZE_BUCKETS}
    for outcome in evaluation.outcomes:
        if outcome.num_gt == 0:
            group = HARD_NEGATIVE if kinds and kinds.get(outcome.pair_id) == HARD_NEGATIVE else "negative"
            negatives[group][0] += 1
            negatives[group][1] += int(outcome.num_dt > 0)
            continue
        truth = evaluation.truths[outcome.annotator]
        pair = truth.pairs[outcome.pair_id]
        height, width = int(pair["height"]), int(pair["width"])
        grid = None if mask_size is None else mask_grid(height, width, mask_size, letterbox)
        gt_ious = outcome.gt_ious if len(outcome.gt_ious) else np.zeros(outcome.num_gt)
        for annotation, iou in zip(truth.scored_annotations(outcome.pair_id), gt_ious, strict=True):
            rle = segmentation_rle(annotation["segmentation"], height, width)
            bucket = size_bucket(float(mask_utils.area(rle)) / (height * width))
            misses[bucket][0] += 1
            misses[bucket][1] += int(iou < MISS_IOU)
            if grid is not None:
                ceilings[bucket].append(resolution_ceiling(mask_utils.decode(rle).astype(bool), grid))
    for group, (pairs, present) in negatives.items():
        if group == HARD_NEGATIVE and not kinds:
            out[group] = {"note": NO_KINDS}
        else:
            out[group] = {"pairs": pairs, "false_positives": present, "fp_rate": _rate(present, pairs)}
    out["misses"] = {
        name: {"instances": total, "missed": missed, "miss_rate": _rate(missed, total)}
        for name, (total, missed) in misses.items()
    }
    every = [value for values in ceilings.values() for value in values]
    if mask_size is None:
        out["ceiling"] = {"note": mask_note or "not measured: the model's mask output size is not known"}
    else:
        out["ceiling"] = {
            "mask_size": [int(mask_size[0]), int(mask_size[1])],
            "letterbox": bool(letterbox),
            "mean_iou": float(np.mean(every)) if every else None,
            "by_size": {name: float(np.mean(v)) if v else None for name, v in ceilings.items()},
        }
    out["size_buckets"] = {name: upper for name, upper in SIZE_BUCKETS if upper != float("inf")}
    return out


MaskGeometry = tuple[tuple[int, int] | None, bool, str | None]
"""``(mask output size or None, letterbox, why the size is not known)`` of a model
(:func:`sam3spec.eval.model_eval.mask_geometry`)."""


def diagnose_files(
    gold_files: Sequence[str | Path],
    pred_path: str | Path,
    presence_path: str | Path,
    geometry: MaskGeometry,
    kinds: Mapping[Hashable, str] | None = None,
    limit: int | None = None,
) -> dict[str, Any]:
    """:func:`diagnose` of a model's SA-Co predictions and presence file on a split's annotator
    files (``limit``: score only the pairs that have a presence score, i.e. were predicted)."""
    presence = {int(k): v for k, v in json.loads(Path(presence_path).read_text()).items()}
    truths = [load_ground_truth(path) for path in gold_files]
    if limit:
        for truth in truths:
            truth.pairs = {k: v for k, v in truth.pairs.items() if k in presence}
    evaluation = evaluate_saco(truths, pred_path, "segm", presence=presence)
    mask_size, letterbox, note = geometry
    return diagnose(evaluation, mask_size, letterbox, kinds, note)


def table_rows(diagnosis: Mapping[str, Any]) -> list[tuple[str, str, Any, str]]:
    """``(key, label, value, how)`` of one diagnosis in table order: ``key`` names the row across
    models, ``label`` shows it (with this model's counts), ``how`` is ``metric`` (4 decimals),
    ``cg`` (cgF1, 2 decimals), ``text`` (shown as is, no ratio) or, when not measured, the reason."""
    rows: list[tuple[str, str, Any, str]] = [
        ("cgF1", "cgF1", diagnosis.get("cgF1"), "cg"),
        ("IL_MCC", "IL_MCC", diagnosis.get("IL_MCC"), "metric"),
        ("pmF1", "pmF1", diagnosis.get("pmF1"), "metric"),
    ]
    rows += [(f"pmF1@{t}", f"pmF1@{t}", v, "metric") for t, v in diagnosis.get("pmF1_at", {}).items()]
    for group, text in (("negative", "negative pairs"), (HARD_NEGATIVE, "hard-negative pairs")):
        entry = diagnosis.get(group, {})
        label = f"FP rate, {text}" + (f" ({entry['pairs']})" if "pairs" in entry else "")
        rows.append((f"fp.{group}", label, entry.get("fp_rate"), entry.get("note", "metric")))
    for bucket, entry in diagnosis.get("misses", {}).items():
        label = f"miss rate at IoU 0.5, {bucket} ({entry['instances']})"
        rows.append((f"miss.{bucket}", label, entry["miss_rate"], "metric"))
    ceiling = diagnosis.get("ceiling", {})
    size = "x".join(str(v) for v in ceiling.get("mask_size", []))
    rows.append(("mask_size", "mask output size", size or None, "text" if size else ceiling.get("note")))
    rows.append(
        ("ceiling", "mask-resolution ceiling", ceiling.get("mean_iou"), ceiling.get("note", "metric"))
    )
    for bucket, value in ceiling.get("by_size", {}).items():
        rows.append((f"ceiling.{bucket}", f"ceiling, {bucket}", value, "metric"))
    return rows


def _cell(value: float | str | None, how: str) -> str:
    if how == "text":
        return str(value)
    if how not in ("metric", "cg"):
        return "not measured"
    if value is None:
        return "not defined"
    return f"{value:.2f}" if how == "cg" else f"{value:.4f}"


def diagnosis_table(columns: Mapping[str, Mapping[str, Any]], reference: str = "teacher") -> str:
    """One markdown table: a row per diagnosis entry, a column per model (``columns``: name ->
    :func:`diagnose` output) and ``<model> / <reference>`` for every other model. Row labels
    carry the first model's counts (every model is scored on the same pairs). Entries that are
    not measured are listed under the table with their reason."""
    names = list(columns)
    others = [name for name in names if name != reference] if reference in columns else []
    header = ["quantity", *names, *[f"{name} / {reference}" for name in others]]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    per_model = {
        name: {key: (value, how) for key, _, value, how in table_rows(columns[name])} for name in names
    }
    labels: dict[str, str] = {}
    for name in names:
        for key, label, _, _ in table_rows(columns[name]):
            labels.setdefault(key, label)
    notes: list[str] = []
    for key, label in labels.items():
        cells = []
        for name in names:
            value, how = per_model[name].get(key, (None, "metric"))
            cells.append(_cell(value, how))
            if how not in ("metric", "cg", "text") and f"{label}: {how}" not in notes:
                notes.append(f"{label}: {how}")
        for name in others:
            (mine, how), theirs = (
                per_model[name].get(key, (None, "")),
                per_model[reference].get(key, (None,))[0],
            )
            numeric = how in ("metric", "cg") and mine is not None and theirs
            cells.append(f"{mine / theirs:.3f}" if numeric else "")
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines + ([""] + [f"- {note}" for note in notes] if notes else [])) + "\n"
