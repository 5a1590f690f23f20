"""SA-Co files in, metrics out: COCO-results predictions, IoUs, the Gold oracle.

Ground truth (:mod:`sam3spec.eval.saco_truth`): SA-Co (COCO-like) JSON, one ``images[]`` entry
per (image, phrase) pair with ``is_instance_exhaustive``; ``annotations[]`` with ``segmentation``
(RLE, compressed or not, or polygons), ``bbox`` (``[x, y, w, h]``; SA-Co stores it normalised by
the image size) and ``iscrowd`` (``is_crowd``, as SA-Co's README spells it, is read too).

Predictions: the COCO results list SAM 3's evaluator takes, ``[{image_id, category_id,
segmentation (RLE), bbox ([x, y, w, h] pixels), score}]``; ``image_id`` is the pair id. As in SAM
3's ``loadRes``, a result without ``segmentation`` gets its box as a polygon and one without
``bbox`` gets its mask's box. Mask IoU is pycocotools' ``maskUtils.iou`` on RLEs (C code, no dense
decoding).

Conformance: on every input SAM 3's evaluator accepts, the numbers are its numbers. Inputs it
scores in ways a user may not expect are scored the same way and reported in
:attr:`SacoEvaluation.notes`: results for unknown or non-evaluated pair ids (ignored), results
whose ``category_id`` the GT file does not list (left out), masks whose RLE size is not the pair's
``height x width`` (pycocotools gives such a mask IoU -1 with every GT it overlaps by box: it
never matches, and the assignment avoids it), an empty results list.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Hashable, Sequence
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
from sam3spec.eval.saco_truth import (
    GroundTruth,
    SacoFormatError,
    check_same_pairs,
    evaluation_pair_ids,
    load_ground_truth,
    read_json,
)

__all__ = [
    "IOU_TYPES",
    "GroundTruth",
    "SacoEvaluation",
    "SacoFormatError",
    "evaluate_saco",
    "iou_matrix",
    "load_ground_truth",
    "load_predictions",
]

IOU_TYPES = ("segm", "bbox")
NOT_DEFINED = "not defined: 0 pairs"


def check_predictions(data: Any, where: str) -> list[dict[str, Any]]:
    """The checks SAM 3's evaluator needs to read a results list, as one-line errors."""
    if not isinstance(data, list):
        raise SacoFormatError(f"{where} must hold a JSON list of results, not {type(data).__name__}")
    for index, result in enumerate(data):
        if not isinstance(result, dict) or "image_id" not in result or "score" not in result:
            raise SacoFormatError(f"{where}: result {index} lacks image_id or score")
        if "segmentation" not in result and "bbox" not in result:
            raise SacoFormatError(f"{where}: result {index} has neither segmentation nor bbox")
        score = result["score"]
        if isinstance(score, bool) or not isinstance(score, (int, float)):
            raise SacoFormatError(f"{where}: result {index} has score {score!r}; expected a number")
        for key in ("image_id", "category_id"):
            if isinstance(result.get(key), (list, dict)):
                raise SacoFormatError(f"{where}: result {index} has {key} {result[key]!r}; expected a number")
    return data


def load_predictions(path: str | Path) -> list[dict[str, Any]]:
    """Read a COCO results file (a list of ``{image_id, score, segmentation and/or bbox}``)."""
    return check_predictions(read_json(path, "prediction"), f"prediction file {path}")


def predictions_normalized(results: Sequence[dict[str, Any]]) -> bool:
    """Every result has a ``bbox`` and all its coordinates lie in [0, 1] (normalised boxes, as in
    SAM 3's dumps; a pixel box inside [0, 1] would be under one pixel)."""
    return bool(results) and all(
        "bbox" in r and all(0.0 <= float(c) <= 1.0 for c in r["bbox"]) for r in results
    )


def segmentation_rle(segmentation: Any, height: int, width: int) -> dict[str, Any]:
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
        segmentation = item["segmentation"] if "segmentation" in item else _box_polygon(item["bbox"])
        return segmentation_rle(segmentation, height, width)
    if "bbox" in item:
        box = [float(v) for v in item["bbox"]]
        return [box[0] * width, box[1] * height, box[2] * width, box[3] * height] if scale else box
    return mask_utils.toBbox(segmentation_rle(item["segmentation"], height, width)).tolist()


def iou_matrix(
    predictions: list[dict[str, Any]],
    annotations: list[dict[str, Any]],
    pair: dict[str, Any],
    iou_type: str,
    normalized_boxes: bool,
) -> np.ndarray:
    """``[D, G]`` IoU of kept predictions and non-crowd GTs of one pair (pycocotools).

    A mask whose RLE size differs from the GT's gets IoU -1 where the boxes overlap (pycocotools'
    ``rleIou``), 0 elsewhere: kept, as SAM 3's evaluator keeps it (it never reaches a threshold,
    and the assignment avoids it)."""
    height, width = int(pair["height"]), int(pair["width"])
    if not predictions or not annotations:
        return np.zeros((len(predictions), len(annotations)))
    dts = [_geometry(p, iou_type, height, width, None) for p in predictions]
    gts = [_geometry(a, iou_type, height, width, 1.0 if normalized_boxes else None) for a in annotations]
    return np.asarray(mask_utils.iou(dts, gts, [0] * len(gts)), dtype=np.float64).reshape(len(dts), len(gts))


def _mask_size(result: dict[str, Any]) -> list[int] | None:
    segmentation = result.get("segmentation")
    if isinstance(segmentation, dict) and isinstance(segmentation.get("size"), list):
        return [int(v) for v in segmentation["size"]]
    return None


def _sample(values: Sequence[Any], limit: int = 5) -> str:
    return ", ".join(repr(v) for v in values[:limit]) + (", ..." if len(values) > limit else "")


def input_notes(
    truths: Sequence[GroundTruth], results: list[dict[str, Any]], pair_ids: list[Hashable], iou_type: str
) -> tuple[list[str], int]:
    """What a user should know about ``results`` before trusting the numbers, and how many results
    are ignored (unknown or non-evaluated pairs). Nothing here changes a count."""
    first = truths[0]
    notes = [note for truth in truths for note in truth.notes]
    if not results:
        notes.append(
            "the prediction list is empty: every evaluated pair counts as predicted empty "
            "(only negative pairs can score)"
        )
    evaluated = set(pair_ids)
    unknown = [r["image_id"] for r in results if r["image_id"] not in first.pairs]
    skipped = [
        r["image_id"] for r in results if r["image_id"] in first.pairs and r["image_id"] not in evaluated
    ]
    if unknown:
        notes.append(
            f"{len(unknown)} result(s) name pair ids that {first.path.name} does not have "
            f"(e.g. {_sample(sorted(set(unknown), key=repr))}); ignored, as SAM 3's evaluator ignores them"
        )
    if skipped:
        notes.append(
            f"{len(skipped)} result(s) are for pairs that are not evaluated (not instance-exhaustive); ignored"
        )
    scored = [r for r in results if r["image_id"] in evaluated]
    foreign: dict[tuple[int, str, str], list[str]] = defaultdict(list)
    for truth in truths:
        outside = [r["category_id"] for r in scored if not truth.listed(r)]
        if outside:
            key = (len(outside), _sample(sorted(set(outside), key=repr)), _sample(truth.category_ids or []))
            foreign[key].append(truth.path.name)
    for (count, ids, listed), names in foreign.items():
        notes.append(
            f"{count} result(s) carry category_id {ids}, which {', '.join(names)} does not list "
            f"(it lists {listed}); left out, as SAM 3's evaluator leaves them out"
        )
    missing_category = sum("category_id" not in r for r in scored)
    if missing_category and first.category_ids is not None:
        notes.append(
            f"{missing_category} result(s) have no category_id (SAM 3's evaluator needs one); "
            "scored as the pair's category"
        )
    if iou_type == "segm":
        wrong = []
        for result in scored:
            pair, size = first.pairs[result["image_id"]], _mask_size(result)
            if size is not None and size != [int(pair["height"]), int(pair["width"])]:
                wrong.append(
                    f"pair {result['image_id']!r}: {size} vs {[int(pair['height']), int(pair['width'])]}"
                )
        if wrong:
            notes.append(
                f"{len(wrong)} result(s) have a mask whose RLE size is not the pair's height x width "
                f"(e.g. {wrong[0]}); scored as matching nothing, as SAM 3's evaluator scores them"
            )
    nan_scores = sum(isinstance(r["score"], float) and math.isnan(r["score"]) for r in scored)
    if nan_scores:
        notes.append(f"{nan_scores} result(s) have score NaN; never kept (NaN >= threshold is false)")
    return notes, len(unknown) + len(skipped)


@dataclass
class SacoEvaluation:
    """Result of :func:`evaluate_saco`.

    Attributes:
        metrics: aggregated metrics of the oracle-selected outcomes.
        outcomes: the selected outcome per evaluated pair.
        ignored_predictions: results whose pair is not evaluated (unknown id or non-exhaustive);
            SAM 3 ignores them silently.
        presence_f1: F1 of the model's presence probability (>= 0.5) vs "pair has a non-crowd GT"
            in the selected annotator, when presence scores were given; None when they were not,
            or when no pair is present in truth or prediction (F1 is not defined there).
        notes: what was unusual about the inputs (see the module docstring), one line each.
        truths: the annotator files scored against (an outcome's ``annotator`` indexes them).
        presence: the presence scores given, if any.
    """

    metrics: SacoMetrics
    outcomes: list[PairOutcome]
    ignored_predictions: int = 0
    presence_f1: float | None = None
    iou_type: str = "segm"
    annotators: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    presence_given: bool = False
    truths: list[GroundTruth] = field(default_factory=list, repr=False)
    presence: dict[Hashable, float] | None = field(default=None, repr=False)

    def summary(self) -> dict[str, Any]:
        """Headline metrics plus ``presence_f1`` (the model's presence when given, else IL_F1:
        ``presence_source`` says which). With no evaluated pair every metric is None and
        ``note`` says ``not defined: 0 pairs``."""
        out: dict[str, Any] = self.metrics.summary()
        out["presence_f1"] = self.presence_f1 if self.presence_given else out["IL_F1"]
        out["presence_source"] = "presence scores" if self.presence_given else "IL_F1 (no presence file)"
        out["iou_type"] = self.iou_type
        out["ignored_predictions"] = self.ignored_predictions
        out["notes"] = list(self.notes)
        if not self.outcomes:
            out["note"] = NOT_DEFINED
        return out


def _presence_f1(presence: dict[Hashable, float], selected: list[PairOutcome]) -> float | None:
    missing = [o.pair_id for o in selected if o.pair_id not in presence]
    if missing:
        raise SacoFormatError(f"presence scores lack {len(missing)} evaluated pairs, e.g. {missing[:3]}")
    predicted = np.array([presence[o.pair_id] >= 0.5 for o in selected], bool)
    actual = np.array([o.num_gt > 0 for o in selected], bool)
    tp = int(np.sum(predicted & actual))
    wrong = int(np.sum(predicted ^ actual))
    # No pair present in truth or prediction: the F1 of "present" is not defined (not 1.0).
    return None if 2 * tp + wrong == 0 else 2 * tp / (2 * tp + wrong)


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
        ground_truths: annotator files (paths or loaded), the first one defining the pairs; with
            several, they must describe the same pairs (:func:`check_same_pairs`).
        predictions: COCO results (path or loaded list).
        iou_type: ``segm`` (mask IoU) or ``bbox`` (box variant).
        score_threshold: predictions below it are dropped (SA-Co: 0.5).
        presence: optional ``{pair_id: presence probability}`` for ``presence_f1``.
        thresholds: IoU thresholds.
        box_units: GT box units for the box variant (see :func:`load_ground_truth`). With
            ``auto``, predictions whose boxes all lie in [0, 1] (SAM 3's dumps, and
            ``sam3spec eval model``'s) are normalised too, and both are compared as stored, as
            SAM 3 does.

    Raises:
        SacoFormatError: a file that is not SA-Co / COCO results, or annotator files that do not
            describe the same pairs.
    """
    if iou_type not in IOU_TYPES:
        raise ValueError(f"iou_type must be one of {IOU_TYPES}, not {iou_type!r}")
    if not ground_truths:
        raise ValueError("at least one ground-truth file is needed")
    truths = [g if isinstance(g, GroundTruth) else load_ground_truth(g, box_units) for g in ground_truths]
    check_same_pairs(truths)
    if isinstance(predictions, list):
        results = check_predictions(predictions, "predictions")
    else:
        results = load_predictions(predictions)
    by_pair: dict[Hashable, list[dict[str, Any]]] = defaultdict(list)
    for result in results:
        by_pair[result["image_id"]].append(result)
    # SAM 3's dumps hold normalised boxes (as its GT does): then nothing is rescaled.
    normalized_predictions = box_units == "auto" and predictions_normalized(results)
    pair_ids = evaluation_pair_ids(truths)
    notes, ignored = input_notes(truths, results, pair_ids, iou_type)
    selected = []
    for pid in pair_ids:
        candidates = []
        for index, truth in enumerate(truths):
            # What SAM 3's evaluator sees of this pair in this file: listed categories, its order.
            kept = [r for r in truth.in_categories(by_pair.get(pid, [])) if r["score"] >= score_threshold]
            gts = truth.scored_annotations(pid)
            ious = iou_matrix(
                kept, gts, truth.pairs[pid], iou_type, truth.normalized_boxes and not normalized_predictions
            )
            candidates.append(score_pair(pid, ious, thresholds, index))
        selected.append(select_oracle(candidates))
    if not selected:
        notes.append(
            f"no pair is evaluated (none is instance-exhaustive in every file): metrics {NOT_DEFINED}"
        )
    return SacoEvaluation(
        accumulate(selected, thresholds),
        selected,
        ignored,
        None if presence is None or not selected else _presence_f1(presence, selected),
        iou_type,
        [str(t.path) for t in truths],
        notes,
        presence is not None,
        truths,
        presence,
    )
