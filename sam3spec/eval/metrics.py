"""Promptable concept segmentation metrics: pure functions on boolean masks.

Per (image, noun phrase) *pair*: predictions are the instances scoring >= 0.5; they are matched
one-to-one to the ground-truth instances by Hungarian matching on mask IoU. Then:

* **matched mIoU**: mean, over all ground-truth instances of positive pairs, of the IoU of the
  prediction matched to it (0 when it is unmatched: a missed instance counts as IoU 0; extra
  predictions do not enter mIoU, they cost precision in pmF1).
* **presence F1**: F1 of the "concept present" class over all pairs (prediction: the model's
  presence probability >= 0.5; truth: the pair has an instance).
* **SA-Co cgF1** (SAM 3's definition, simplest form: no crowd regions, one annotator):
  at each IoU threshold t in 0.50, 0.55, ..., 0.95, a match with IoU >= t is a TP, other
  predictions FPs, other ground truths FNs; pmF1 = mean over t of 2TP / (2TP + FP + FN) summed
  over positive pairs; IL_MCC = Matthews correlation of (pair has GT) vs (pair has a prediction)
  over all pairs; cgF1 = 100 x pmF1 x IL_MCC. The full SA-Co protocol (crowd regions, Gold's
  three annotators, SAM 3's smoothing, the box variant, files) is :mod:`sam3spec.eval.saco` /
  :mod:`sam3spec.eval.saco_files`; on the same pairs the two agree to ~1e-4 (SAM 3's smoothing).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import linear_sum_assignment

IOU_THRESHOLDS = tuple(round(0.5 + 0.05 * index, 2) for index in range(10))


def mask_iou_matrix(predictions: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """IoU between every prediction and every target.

    Args:
        predictions: ``[P, H, W]`` bool.
        targets: ``[G, H, W]`` bool.

    Returns:
        ``[P, G]`` float64; 0 where both masks are empty.
    """
    pixels = int(np.prod(targets.shape[1:])) if targets.ndim > 1 else int(np.prod(predictions.shape[1:]))
    pred = predictions.reshape(len(predictions), pixels).astype(np.float64)
    gt = targets.reshape(len(targets), pixels).astype(np.float64)
    intersection = pred @ gt.T
    union = pred.sum(1)[:, None] + gt.sum(1)[None, :] - intersection
    return np.divide(intersection, union, out=np.zeros_like(intersection), where=union > 0)


def match(iou: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One-to-one matching maximising total IoU (pairs with IoU 0 are not matches).

    Returns:
        ``(prediction_indices, target_indices)`` of the matched pairs.
    """
    if iou.size == 0:
        return np.zeros(0, dtype=int), np.zeros(0, dtype=int)
    rows, cols = linear_sum_assignment(-iou)
    keep = iou[rows, cols] > 0
    return rows[keep], cols[keep]


@dataclass
class PairResult:
    """What one (image, phrase) pair contributes.

    Attributes:
        num_targets: ground-truth instances.
        num_predictions: predictions with score >= 0.5.
        matched_ious: IoU of each matched (prediction, target) pair.
        presence_probability: the model's presence score for the pair.
    """

    num_targets: int
    num_predictions: int
    matched_ious: np.ndarray = field(default_factory=lambda: np.zeros(0))
    presence_probability: float = 0.0

    @property
    def positive(self) -> bool:
        return self.num_targets > 0


def evaluate_pair(
    predictions: np.ndarray,
    scores: np.ndarray,
    targets: np.ndarray,
    presence_probability: float,
    threshold: float = 0.5,
) -> PairResult:
    """Score one pair.

    Args:
        predictions: ``[Q, H, W]`` bool candidate masks (at the ground truth's resolution).
        scores: ``[Q]`` detection scores; only those >= ``threshold`` are predictions.
        targets: ``[G, H, W]`` bool ground-truth instances (G may be 0: a negative phrase).
        presence_probability: the model's presence score in [0, 1].
        threshold: score threshold (SA-Co: 0.5).
    """
    kept = predictions[np.asarray(scores) >= threshold]
    iou = mask_iou_matrix(kept, targets)
    rows, cols = match(iou)
    return PairResult(len(targets), len(kept), iou[rows, cols], float(presence_probability))


def binary_f1(predicted: np.ndarray, actual: np.ndarray) -> float:
    """F1 of the positive class (1.0 when there are no positives predicted or actual)."""
    predicted, actual = np.asarray(predicted, bool), np.asarray(actual, bool)
    tp = int(np.sum(predicted & actual))
    denominator = 2 * tp + int(np.sum(predicted & ~actual)) + int(np.sum(~predicted & actual))
    return 1.0 if denominator == 0 else 2 * tp / denominator


def matthews(tp: int, fp: int, fn: int, tn: int) -> float:
    """Matthews correlation coefficient (0 when a marginal is empty)."""
    denominator = math.sqrt((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn))
    return 0.0 if denominator == 0 else (tp * tn - fp * fn) / denominator


def not_defined_reason(num_pairs: int, num_instances: int) -> str | None:
    """Why localisation metrics are not defined on this input (None when they are)."""
    if num_pairs == 0:
        return "not defined: 0 pairs"
    if num_instances == 0:
        return "not defined: 0 ground-truth instances"
    return None


def format_metric(value: float | None, digits: int = 4) -> str:
    """A metric for a table or a log line: ``not defined`` for None / NaN."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "not defined"
    return f"{value:.{digits}f}"


def summarize(
    results: Iterable[PairResult], presence_threshold: float = 0.5
) -> dict[str, float | str | None]:
    """Aggregate pair results.

    A metric that the input does not define is None, never a perfect score: over 0 pairs every
    rate; with no ground-truth instance ``mIoU``, ``pmF1`` (no TP, FP or FN to count) and
    ``cgF1``; ``presence_f1`` when no pair is present in truth or in the presence prediction.
    ``note`` (present only then) says why, e.g. ``not defined: 0 pairs``.

    Returns:
        ``mIoU``, ``presence_f1``, ``pmF1``, ``IL_MCC``, ``cgF1`` (x100), ``pmF1@50``,
        ``pmF1@75``, ``num_pairs``, ``num_positive_pairs``, ``num_instances`` (+ ``note``).
    """
    results = list(results)
    positives = [result for result in results if result.positive]
    instances = sum(result.num_targets for result in positives)
    counts = {
        "num_pairs": float(len(results)),
        "num_positive_pairs": float(len(positives)),
        "num_instances": float(instances),
    }
    reason = not_defined_reason(len(results), instances)
    if not results:
        keys = ("mIoU", "presence_f1", "pmF1", "IL_MCC", "cgF1", "pmF1@50", "pmF1@75")
        return {**dict.fromkeys(keys), **counts, "note": reason}
    present_true = np.array([result.positive for result in results], bool)
    present_pred = np.array([result.presence_probability >= presence_threshold for result in results], bool)
    detected = np.array([result.num_predictions > 0 for result in results], bool)
    il_mcc = matthews(
        int(np.sum(detected & present_true)),
        int(np.sum(detected & ~present_true)),
        int(np.sum(~detected & present_true)),
        int(np.sum(~detected & ~present_true)),
    )
    presence_f1 = binary_f1(present_pred, present_true) if (present_pred | present_true).any() else None
    out: dict[str, float | str | None] = {"presence_f1": presence_f1, "IL_MCC": il_mcc}
    if reason is None:
        miou = sum(float(result.matched_ious.sum()) for result in positives) / instances
        f1_at = {}
        for threshold in IOU_THRESHOLDS:
            tp = sum(int(np.sum(result.matched_ious >= threshold)) for result in positives)
            fp = sum(result.num_predictions for result in positives) - tp
            f1_at[threshold] = 2 * tp / (2 * tp + fp + (instances - tp))
        pm_f1 = float(np.mean(list(f1_at.values())))
        out.update(
            {
                "mIoU": miou,
                "pmF1": pm_f1,
                "cgF1": 100.0 * pm_f1 * il_mcc,
                "pmF1@50": f1_at[0.5],
                "pmF1@75": f1_at[0.75],
            }
        )
    else:
        out.update(dict.fromkeys(("mIoU", "pmF1", "cgF1", "pmF1@50", "pmF1@75")))
    reasons = [reason] if reason else []
    if presence_f1 is None:
        reasons.append("presence_f1 not defined: no pair is present in truth or prediction")
    out = {key: out[key] for key in ("mIoU", "presence_f1", "pmF1", "IL_MCC", "cgF1", "pmF1@50", "pmF1@75")}
    out.update(counts)
    if reasons:
        out["note"] = "; ".join(reasons)
    return out
