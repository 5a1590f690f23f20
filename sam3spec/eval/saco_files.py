"""SA-Co files in, metrics out: ground-truth files, COCO-results predictions, IoUs, the Gold oracle.

Ground truth: SA-Co (COCO-like) JSON, one ``images[]`` entry per (image, phrase) pair with
``is_instance_exhaustive``; ``annotations[]`` with ``segmentation`` (RLE, compressed or not, or
polygons), ``bbox`` (``[x, y, w, h]``; SA-Co stores it normalised by the image size) and
``iscrowd`` (``is_crowd``, as SA-Co's README spells it, is read too).

Predictions: the COCO results list SAM 3's evaluator takes, ``[{image_id, segmentation (RLE),
bbox ([x, y, w, h] pixels), score}]``; ``image_id`` is the pair id. As in SAM 3's ``loadRes``, a
result without ``segmentation`` gets its box as a polygon and one without ``bbox`` gets its mask's
box. Mask IoU is pycocotools' ``maskUtils.iou`` on RLEs (C code, no dense decoding).
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from pycocotools import mask as mask_utils

from sam3spec.eval.saco import (
    IOU_THRESHOLDS,
    SCORE_THRESHOLD,
    PairOutcome,
    SacoMetrics,
    accumulate,
    score_pair,
    select_oracle,
)

IOU_TYPES = ("segm", "bbox")


class SacoFormatError(ValueError):
    """A ground-truth or prediction file does not have the SA-Co / COCO-results shape."""


@dataclass
class GroundTruth:
    """One annotator's SA-Co file.

    Attributes:
        path: where it was read from.
        pairs: ``images[]`` by id.
        annotations: ``annotations[]`` grouped by pair id.
        normalized_boxes: GT boxes are in [0, 1] units (scaled by the pair's width / height for
            the box variant).
    """

    path: Path
    pairs: dict[int, dict[str, Any]]
    annotations: dict[int, list[dict[str, Any]]]
    normalized_boxes: bool

    def exhaustive(self, pair_id: int) -> bool:
        return bool(self.pairs[pair_id].get("is_instance_exhaustive", False))


def _read_json(path: str | Path, what: str) -> Any:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{what} file {path} not found")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise SacoFormatError(f"{what} file {path} is not valid JSON: {error}") from error


def load_ground_truth(path: str | Path, box_units: str = "auto") -> GroundTruth:
    """Read an SA-Co ground-truth file.

    Args:
        path: the JSON file.
        box_units: ``normalized`` (SA-Co's README), ``pixels``, or ``auto`` (normalised when
            every coordinate is within [0, 1]; a file without annotations counts as normalised).
    """
    data = _read_json(path, "ground-truth")
    if not isinstance(data, dict) or "images" not in data:
        raise SacoFormatError(f"ground-truth file {path} has no 'images' list (is it an SA-Co file?)")
    pairs = {}
    for entry in data["images"]:
        missing = [key for key in ("id", "height", "width") if key not in entry]
        if missing:
            raise SacoFormatError(f"ground-truth file {path}: images entry {entry.get('id')} lacks {missing}")
        pairs[int(entry["id"])] = entry
    annotations: dict[int, list[dict[str, Any]]] = defaultdict(list)
    coords = []
    for ann in data.get("annotations", []):
        if "image_id" not in ann or ("segmentation" not in ann and "bbox" not in ann):
            raise SacoFormatError(
                f"ground-truth file {path}: annotation {ann.get('id')} lacks image_id/segmentation"
            )
        annotations[int(ann["image_id"])].append(ann)
        coords.extend(ann.get("bbox", []))
    if box_units not in ("auto", "normalized", "pixels"):
        raise ValueError(f"box_units must be auto, normalized or pixels, not {box_units!r}")
    normalized = box_units == "normalized" or (box_units == "auto" and all(0.0 <= c <= 1.0 for c in coords))
    return GroundTruth(Path(path), pairs, dict(annotations), normalized)


def load_predictions(path: str | Path) -> list[dict[str, Any]]:
    """Read a COCO results file (a list of ``{image_id, score, segmentation and/or bbox}``)."""
    data = _read_json(path, "prediction")
    if not isinstance(data, list):
        raise SacoFormatError(
            f"prediction file {path} must hold a JSON list of results, not {type(data).__name__}"
        )
    for index, result in enumerate(data):
        if "image_id" not in result or "score" not in result:
            raise SacoFormatError(f"prediction file {path}: result {index} lacks image_id or score")
        if "segmentation" not in result and "bbox" not in result:
            raise SacoFormatError(f"prediction file {path}: result {index} has neither segmentation nor bbox")
    return data


def predictions_normalized(results: Sequence[dict[str, Any]]) -> bool:
    """Every result has a ``bbox`` and all its coordinates lie in [0, 1] (normalised boxes, as in
    SAM 3's dumps; a pixel box inside [0, 1] would be under one pixel)."""
    return bool(results) and all(
        "bbox" in r and all(0.0 <= float(c) <= 1.0 for c in r["bbox"]) for r in results
    )


def is_crowd(annotation: dict[str, Any]) -> bool:
    return bool(annotation.get("iscrowd", annotation.get("is_crowd", 0)))


def _rle(segmentation: Any, height: int, width: int) -> dict[str, Any]:
    """Any COCO segmentation (polygons, uncompressed or compressed RLE) -> compressed RLE."""
    if isinstance(segmentation, list):
        return mask_utils.merge(mask_utils.frPyObjects(segmentation, height, width))
    if isinstance(segmentation.get("counts"), list):
        return mask_utils.frPyObjects(segmentation, height, width)
    return segmentation


def _box_polygon(box: Sequence[float]) -> list[list[float]]:
    x, y, w, h = box
    return [[x, y, x, y + h, x + w, y + h, x + w, y]]


def _geometry(item: dict[str, Any], iou_type: str, height: int, width: int, scale: float | None) -> Any:
    """What enters IoU for one GT annotation or prediction: an RLE or a pixel ``[x, y, w, h]``."""
    if iou_type == "segm":
        segmentation = item.get("segmentation") or _box_polygon(item["bbox"])
        return _rle(segmentation, height, width)
    if "bbox" in item:
        box = [float(v) for v in item["bbox"]]
        return [box[0] * width, box[1] * height, box[2] * width, box[3] * height] if scale else box
    return mask_utils.toBbox(_rle(item["segmentation"], height, width)).tolist()


def iou_matrix(
    predictions: list[dict[str, Any]],
    annotations: list[dict[str, Any]],
    pair: dict[str, Any],
    iou_type: str,
    normalized_boxes: bool,
) -> np.ndarray:
    """``[D, G]`` IoU of kept predictions and non-crowd GTs of one pair (pycocotools)."""
    height, width = int(pair["height"]), int(pair["width"])
    if not predictions or not annotations:
        return np.zeros((len(predictions), len(annotations)))
    dts = [_geometry(p, iou_type, height, width, None) for p in predictions]
    gts = [_geometry(a, iou_type, height, width, 1.0 if normalized_boxes else None) for a in annotations]
    if iou_type == "segm":
        for rle in dts:
            if list(rle["size"]) != [height, width]:
                raise SacoFormatError(
                    f"prediction for pair {pair['id']} has mask size {rle['size']}, the pair is {[height, width]}"
                )
    return np.asarray(mask_utils.iou(dts, gts, [0] * len(gts)), dtype=np.float64).reshape(len(dts), len(gts))


def evaluation_pair_ids(truths: Sequence[GroundTruth]) -> list[int]:
    """Pairs SAM 3 evaluates: exhaustive in the first file, not non-exhaustive in any other."""
    excluded = {pid for truth in truths[1:] for pid in truth.pairs if not truth.exhaustive(pid)}
    return [pid for pid in truths[0].pairs if truths[0].exhaustive(pid) and pid not in excluded]


@dataclass
class SacoEvaluation:
    """Result of :func:`evaluate_saco`.

    Attributes:
        metrics: aggregated metrics of the oracle-selected outcomes.
        outcomes: the selected outcome per evaluated pair.
        ignored_predictions: results whose pair is not evaluated (unknown id or non-exhaustive);
            SAM 3 ignores them silently.
        presence_f1: F1 of the model's presence probability (>= 0.5) vs "pair has a non-crowd GT"
            in the selected annotator, when presence scores were given; else None.
    """

    metrics: SacoMetrics
    outcomes: list[PairOutcome]
    ignored_predictions: int = 0
    presence_f1: float | None = None
    iou_type: str = "segm"
    annotators: list[str] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        """Headline metrics plus ``presence_f1`` (the model's presence when given, else IL_F1:
        ``presence_source`` says which)."""
        out: dict[str, Any] = self.metrics.summary()
        out["presence_f1"] = self.presence_f1 if self.presence_f1 is not None else out["IL_F1"]
        out["presence_source"] = (
            "presence scores" if self.presence_f1 is not None else "IL_F1 (no presence file)"
        )
        out["iou_type"] = self.iou_type
        out["ignored_predictions"] = self.ignored_predictions
        return out


def evaluate_saco(
    ground_truths: Sequence[str | Path | GroundTruth],
    predictions: str | Path | list[dict[str, Any]],
    iou_type: str = "segm",
    score_threshold: float = SCORE_THRESHOLD,
    presence: dict[int, float] | None = None,
    thresholds: Sequence[float] = IOU_THRESHOLDS,
    box_units: str = "auto",
) -> SacoEvaluation:
    """SA-Co evaluation of ``predictions`` against one (Silver) or three (Gold oracle) GT files.

    Args:
        ground_truths: annotator files (paths or loaded), the first one defining the pairs.
        predictions: COCO results (path or loaded list).
        iou_type: ``segm`` (mask IoU) or ``bbox`` (box variant).
        score_threshold: predictions below it are dropped (SA-Co: 0.5).
        presence: optional ``{pair_id: presence probability}`` for ``presence_f1``.
        thresholds: IoU thresholds.
        box_units: GT box units for the box variant (see :func:`load_ground_truth`). With
            ``auto``, predictions whose boxes all lie in [0, 1] (SAM 3's dumps, and
            ``sam3spec eval model``'s) are normalised too, and both are compared as stored, as
            SAM 3 does.
    """
    if iou_type not in IOU_TYPES:
        raise ValueError(f"iou_type must be one of {IOU_TYPES}, not {iou_type!r}")
    if not ground_truths:
        raise ValueError("at least one ground-truth file is needed")
    truths = [g if isinstance(g, GroundTruth) else load_ground_truth(g, box_units) for g in ground_truths]
    results = predictions if isinstance(predictions, list) else load_predictions(predictions)
    by_pair: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for result in results:
        by_pair[int(result["image_id"])].append(result)
    # SAM 3's dumps hold normalised boxes (as its GT does): then nothing is rescaled.
    normalized_predictions = box_units == "auto" and predictions_normalized(results)
    pair_ids = evaluation_pair_ids(truths)
    evaluated = set(pair_ids)
    ignored = sum(len(items) for pid, items in by_pair.items() if pid not in evaluated)
    selected = []
    for pid in pair_ids:
        kept = [r for r in by_pair.get(pid, []) if float(r["score"]) >= score_threshold]
        candidates = []
        for index, truth in enumerate(truths):
            # A pair missing from a later annotator's file has no GT there (as in SAM 3).
            pair = truth.pairs.get(pid, truths[0].pairs[pid])
            gts = [a for a in truth.annotations.get(pid, []) if not is_crowd(a)]
            ious = iou_matrix(
                kept, gts, pair, iou_type, truth.normalized_boxes and not normalized_predictions
            )
            candidates.append(score_pair(pid, ious, thresholds, index))
        selected.append(select_oracle(candidates))
    presence_f1 = None
    if presence is not None:
        missing = [pid for pid in pair_ids if pid not in presence]
        if missing:
            raise SacoFormatError(f"presence scores lack {len(missing)} evaluated pairs, e.g. {missing[:3]}")
        predicted = np.array([presence[o.pair_id] >= 0.5 for o in selected], bool)
        actual = np.array([o.num_gt > 0 for o in selected], bool)
        tp = int(np.sum(predicted & actual))
        wrong = int(np.sum(predicted ^ actual))
        presence_f1 = 1.0 if 2 * tp + wrong == 0 else 2 * tp / (2 * tp + wrong)
    return SacoEvaluation(
        accumulate(selected, thresholds),
        selected,
        ignored,
        presence_f1,
        iou_type,
        [str(t.path) for t in truths],
    )
