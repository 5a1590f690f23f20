"""SA-Co image metrics (cgF1, pmF1, IL_MCC) with the semantics of SAM 3's ``sam3/eval/cgf1_eval.py``.

Vocabulary: a *pair* is one SA-Co ``images[]`` entry, i.e. one (image, noun phrase) combination.
For each pair and each annotator file:

1. predictions are the results with ``score >= 0.5``; crowd ground truths (``iscrowd`` 1) are
   dropped (SAM 3 marks them ``ignore`` and removes them before matching, so a prediction on a
   crowd region is an unmatched prediction, i.e. a false positive; a pair with only crowd
   regions is a negative pair);
2. predictions and ground truths are matched one-to-one by Hungarian matching maximising the
   summed IoU (mask IoU, or box IoU for the box variant);
3. at each IoU threshold t in 0.50, 0.55, ..., 0.95: TP = matches with IoU >= t, FP = predictions
   - TP, FN = ground truths - TP;
4. the pair's image-level outcome: TP (GT and predictions), FP (predictions only), FN (GT only),
   TN (neither).

Gold oracle: with several annotator files, each pair keeps the annotator with the best mean local
F1 (a TN outcome counts as perfect and always wins; on equal F1 the earlier file wins). Only pairs
that are instance-exhaustive in the first file and not marked non-exhaustive in any other file
are evaluated.

Aggregation over the kept outcomes, per threshold: precision/recall/F1 over every pair with a
prediction or a GT; **pmF1** (``positive_micro_F1``) counts FPs only on pairs that have both GT
and predictions and all FNs; **IL_MCC** is the Matthews correlation of the image-level counts;
**cgF1** = pmF1 x IL_MCC, averaged over the thresholds and reported x100. SAM 3 adds 1e-4 (F1
terms) and 1e-6 (IL terms) to denominators; they are kept (:data:`F1_EPS`, :data:`IL_EPS`) so
that numbers match its evaluator to the printed digit.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import linear_sum_assignment

IOU_THRESHOLDS = np.round(np.arange(0.5, 0.951, 0.05), 2)
"""SAM 3's (and COCO's) ``iouThrs``: 0.50:0.05:0.95, 10 values."""
SCORE_THRESHOLD = 0.5
F1_EPS = 1e-4
IL_EPS = 1e-6
OUTCOMES = ("TP", "FP", "FN", "TN")


def _f1_terms(tp: np.ndarray, fp: np.ndarray, fn: np.ndarray) -> np.ndarray:
    """SAM 3's smoothed F1 (precision and recall first, then their harmonic mean)."""
    precision = tp / (tp + fp + F1_EPS)
    recall = tp / (tp + fn + F1_EPS)
    return 2 * precision * recall / (precision + recall + F1_EPS)


@dataclass
class PairOutcome:
    """One pair scored against one annotator.

    Attributes:
        pair_id: the SA-Co ``images[].id``.
        num_gt: non-crowd ground-truth instances.
        num_dt: predictions with score >= the threshold.
        tps: ``[T]`` true positives per IoU threshold.
        matched_ious: IoU of each Hungarian-assigned (prediction, GT) pair (for matched mIoU).
        annotator: index of the annotator file this outcome was scored against.
        gt_ious: ``[G]`` IoU of the prediction assigned to each GT, in the GT order the IoU matrix
            had (0 for a GT left unassigned): which instances were missed
            (:mod:`sam3spec.eval.diagnosis`).
    """

    pair_id: int
    num_gt: int
    num_dt: int
    tps: np.ndarray
    matched_ious: np.ndarray = field(default_factory=lambda: np.zeros(0))
    annotator: int = 0
    gt_ious: np.ndarray = field(default_factory=lambda: np.zeros(0))

    @property
    def fps(self) -> np.ndarray:
        return self.num_dt - self.tps

    @property
    def fns(self) -> np.ndarray:
        return self.num_gt - self.tps

    @property
    def outcome(self) -> str:
        """Image-level outcome: ``TP``, ``FP``, ``FN`` or ``TN``."""
        if self.num_gt > 0:
            return "TP" if self.num_dt > 0 else "FN"
        return "FP" if self.num_dt > 0 else "TN"

    @property
    def local_f1s(self) -> np.ndarray | None:
        """``[T]`` F1 of this pair alone; None for a TN (SAM 3 leaves box metrics undefined)."""
        if self.outcome == "TN":
            return None
        if self.outcome == "FN":
            return np.zeros(len(self.tps))
        return _f1_terms(
            self.tps.astype(np.float64), self.fps.astype(np.float64), self.fns.astype(np.float64)
        )


def score_pair(
    pair_id: int, ious: np.ndarray, thresholds: Sequence[float] = IOU_THRESHOLDS, annotator: int = 0
) -> PairOutcome:
    """Score one pair from the IoU matrix of its kept predictions and non-crowd ground truths.

    Args:
        pair_id: pair id.
        ious: ``[D, G]`` (D predictions with score >= threshold, G non-crowd GTs; either may be 0).
        thresholds: IoU thresholds.
        annotator: annotator index recorded in the outcome.
    """
    num_dt, num_gt = ious.shape
    gt_ious = np.zeros(num_gt)
    if num_dt and num_gt:
        rows, cols = linear_sum_assignment(-ious)
        matched = ious[rows, cols]
        gt_ious[cols] = matched
    else:
        matched = np.zeros(0)
    tps = np.array([int(np.sum(matched >= t)) for t in thresholds], dtype=np.int64)
    return PairOutcome(pair_id, int(num_gt), int(num_dt), tps, matched, annotator, gt_ious)


def select_oracle(candidates: Sequence[PairOutcome]) -> PairOutcome:
    """SAM 3's Gold oracle: the candidate (one per annotator) most favourable to the model.

    The first candidate is the starting best; a later one replaces it when both have local F1s
    and its mean local F1 is strictly higher, or when it is a TN (no GT, no prediction).
    """
    best = candidates[0]
    for current in candidates[1:]:
        best_f1, current_f1 = best.local_f1s, current.local_f1s
        if best_f1 is not None and current_f1 is not None:
            if current_f1.mean() > best_f1.mean():
                best = current
        elif current_f1 is None:
            best = current
    return best


def matthews(tp: float, fp: float, fn: float, tn: float, eps: float = IL_EPS) -> float:
    """Matthews correlation coefficient as SAM 3 computes it (``+ eps`` in the denominator)."""
    denominator = math.sqrt(float(tp + fp) * float(tp + fn) * float(tn + fp) * float(tn + fn))
    return float(tp * tn - fp * fn) / (denominator + eps)


@dataclass
class SacoMetrics:
    """Aggregated SA-Co metrics (arrays are per IoU threshold, ``[T]``).

    ``summary()`` gives the headline numbers as SAM 3 reports them.
    """

    thresholds: np.ndarray
    tps: np.ndarray
    fps: np.ndarray
    positive_fps: np.ndarray
    fns: np.ndarray
    il_counts: dict[str, int]
    positive_macro_f1: np.ndarray | None
    matched_iou_sum: float
    num_gt_instances: int
    num_pairs: int

    @property
    def precision(self) -> np.ndarray:
        return self.tps / (self.tps + self.fps + F1_EPS)

    @property
    def recall(self) -> np.ndarray:
        return self.tps / (self.tps + self.fns + F1_EPS)

    @property
    def f1(self) -> np.ndarray:
        return _f1_terms(self.tps, self.fps, self.fns)

    @property
    def positive_micro_precision(self) -> np.ndarray:
        return self.tps / (self.tps + self.positive_fps + F1_EPS)

    @property
    def positive_micro_f1(self) -> np.ndarray:
        return _f1_terms(self.tps, self.positive_fps, self.fns)

    @property
    def il_mcc(self) -> float:
        c = self.il_counts
        return matthews(c["TP"], c["FP"], c["FN"], c["TN"])

    @property
    def il_precision(self) -> float:
        return self.il_counts["TP"] / (self.il_counts["TP"] + self.il_counts["FP"] + IL_EPS)

    @property
    def il_recall(self) -> float:
        return self.il_counts["TP"] / (self.il_counts["TP"] + self.il_counts["FN"] + IL_EPS)

    @property
    def il_f1(self) -> float:
        p, r = self.il_precision, self.il_recall
        return 2 * p * r / (p + r + IL_EPS)

    @property
    def il_fpr(self) -> float:
        return self.il_counts["FP"] / (self.il_counts["FP"] + self.il_counts["TN"] + IL_EPS)

    def _at(self, values: np.ndarray, threshold: float) -> float:
        index = int(np.argmin(np.abs(self.thresholds - threshold)))
        if abs(self.thresholds[index] - threshold) > 1e-9:
            raise KeyError(f"IoU threshold {threshold} was not evaluated (have {self.thresholds.tolist()})")
        return float(values[index])

    def summary(self) -> dict[str, float | None]:
        """Headline metrics. ``cgF1`` is x100 (as SAM 3's tables); ``pmF1`` and ``IL_MCC`` are in
        [0, 1] / [-1, 1]; ``@50`` / ``@75`` are at a single IoU threshold.

        Not defined, so None: every rate over 0 pairs (SAM 3's evaluator raises there),
        ``positive_macro_F1`` without a pair that has both GT and predictions (SAM 3 prints -1),
        ``mIoU`` without a GT instance."""
        counts = {f"IL_{key}": float(self.il_counts[key]) for key in OUTCOMES}
        sizes = {"num_pairs": float(self.num_pairs), "num_gt_instances": float(self.num_gt_instances)}
        if self.num_pairs == 0:
            rates = ("cgF1", "pmF1", "IL_MCC", "precision", "recall", "F1", "positive_micro_precision")
            rates += ("positive_macro_F1", "IL_precision", "IL_recall", "IL_F1", "IL_FPR", "mIoU")
            rates += ("cgF1@50", "pmF1@50", "cgF1@75", "pmF1@75")
            return {**dict.fromkeys(rates), **sizes, **counts}
        pm = self.positive_micro_f1
        cg = pm * self.il_mcc
        macro = self.positive_macro_f1
        out = {
            "cgF1": 100.0 * float(cg.mean()),
            "pmF1": float(pm.mean()),
            "IL_MCC": self.il_mcc,
            "precision": float(self.precision.mean()),
            "recall": float(self.recall.mean()),
            "F1": float(self.f1.mean()),
            "positive_micro_precision": float(self.positive_micro_precision.mean()),
            "positive_macro_F1": None if macro is None else float(macro.mean()),
            "IL_precision": self.il_precision,
            "IL_recall": self.il_recall,
            "IL_F1": self.il_f1,
            "IL_FPR": self.il_fpr,
            "mIoU": self.matched_iou_sum / self.num_gt_instances if self.num_gt_instances else None,
            **sizes,
        }
        for threshold, tag in ((0.5, "50"), (0.75, "75")):
            out[f"cgF1@{tag}"] = 100.0 * self._at(cg, threshold)
            out[f"pmF1@{tag}"] = self._at(pm, threshold)
        return {**out, **counts}


def accumulate(outcomes: Sequence[PairOutcome], thresholds: Sequence[float] = IOU_THRESHOLDS) -> SacoMetrics:
    """Sum selected pair outcomes into :class:`SacoMetrics` (SAM 3's ``CGF1Eval.accumulate``).

    ``positive_macro_F1`` averages local F1 over pairs with both GT and predictions (SAM 3
    divides by that count; with no such pair it is None here, -1 in SAM 3's printout).
    ``matched_iou_sum`` counts a matched IoU below 0 (pycocotools' -1 for a mask of another
    size) as 0.
    """
    thresholds = np.asarray(thresholds, dtype=np.float64)
    size = len(thresholds)
    tps, fps, positive_fps, fns = (np.zeros(size) for _ in range(4))
    macro, macro_count = np.zeros(size), 0
    counts = dict.fromkeys(OUTCOMES, 0)
    matched_sum, instances = 0.0, 0
    for pair in outcomes:
        counts[pair.outcome] += 1
        if pair.outcome == "TN":
            continue
        tps += pair.tps
        fps += pair.fps
        fns += pair.fns
        if pair.outcome == "TP":
            positive_fps += pair.fps
            macro += pair.local_f1s
            macro_count += 1
        instances += pair.num_gt
        matched_sum += float(np.sum(np.clip(pair.matched_ious, 0.0, None)))
    return SacoMetrics(
        thresholds,
        tps,
        fps,
        positive_fps,
        fns,
        counts,
        macro / macro_count if macro_count else None,
        matched_sum,
        instances,
        len(outcomes),
    )
