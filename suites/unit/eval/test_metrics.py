"""Metrics against hand-computed cases and a brute-force matcher."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sam3spec.eval.metrics import (
    IOU_THRESHOLDS,
    PairResult,
    binary_f1,
    evaluate_pair,
    mask_iou_matrix,
    match,
    matthews,
    summarize,
)


def box_mask(x0: int, y0: int, x1: int, y1: int, size: int = 10) -> np.ndarray:
    mask = np.zeros((size, size), dtype=bool)
    mask[y0:y1, x0:x1] = True
    return mask


def test_iou_matrix_by_hand() -> None:
    a, b = box_mask(0, 0, 4, 4), box_mask(2, 0, 6, 4)  # 16 px each, overlap 8 -> 8 / 24
    iou = mask_iou_matrix(np.stack([a, b]), np.stack([a, box_mask(8, 8, 10, 10)]))
    assert iou[0, 0] == 1.0 and iou[1, 0] == pytest.approx(8 / 24) and iou[0, 1] == 0.0
    assert mask_iou_matrix(np.zeros((0, 10, 10), bool), np.stack([a])).shape == (0, 1)
    assert mask_iou_matrix(np.zeros((1, 10, 10), bool), np.zeros((1, 10, 10), bool))[0, 0] == 0.0


@settings(max_examples=60, deadline=None)
@given(st.lists(st.lists(st.floats(0, 1), min_size=3, max_size=3), min_size=1, max_size=4))
def test_match_maximises_total_iou(rows) -> None:
    iou = np.array(rows)
    predictions, targets = match(iou)
    best = max(
        sum(
            iou[p, t]
            for p, t in zip(perm, range(iou.shape[1]), strict=True)
            if p is not None and iou[p, t] > 0
        )
        for perm in itertools.permutations(list(range(iou.shape[0])) + [None] * iou.shape[1], iou.shape[1])
    )
    assert iou[predictions, targets].sum() == pytest.approx(best)
    assert len(set(predictions)) == len(predictions) and len(set(targets)) == len(targets)


def test_evaluate_pair_keeps_scores_above_threshold() -> None:
    gt = np.stack([box_mask(0, 0, 4, 4), box_mask(6, 6, 10, 10)])
    predictions = np.stack([box_mask(0, 0, 4, 4), box_mask(6, 6, 10, 8), box_mask(6, 6, 10, 10)])
    result = evaluate_pair(predictions, np.array([0.9, 0.8, 0.3]), gt, presence_probability=0.7)
    assert result.num_targets == 2 and result.num_predictions == 2
    assert sorted(result.matched_ious.tolist()) == [0.5, 1.0]


def test_summary_by_hand() -> None:
    results = [
        PairResult(2, 2, np.array([1.0, 0.5]), 0.9),  # positive, both found (IoU 1 and 0.5)
        PairResult(1, 2, np.array([0.8]), 0.6),  # positive, one FP
        PairResult(1, 0, np.zeros(0), 0.2),  # positive, missed; presence says absent
        PairResult(0, 1, np.zeros(0), 0.7),  # negative with a prediction (image-level FP)
        PairResult(0, 0, np.zeros(0), 0.1),  # true negative
    ]
    summary = summarize(results)
    assert summary["mIoU"] == pytest.approx((1.0 + 0.5 + 0.8 + 0.0) / 4)
    assert summary["presence_f1"] == pytest.approx(2 * 2 / (2 * 2 + 1 + 1))  # TP 2, FP 1, FN 1
    # Localisation: 4 GT, 4 predictions on positive pairs; matched IoUs 1.0, 0.5, 0.8.
    f1 = []
    for t in IOU_THRESHOLDS:
        tp = sum(v >= t for v in (1.0, 0.5, 0.8))
        f1.append(2 * tp / (2 * tp + (4 - tp) + (4 - tp)))
    assert summary["pmF1"] == pytest.approx(np.mean(f1))
    assert summary["pmF1@50"] == pytest.approx(2 * 3 / (6 + 1 + 1))
    mcc = matthews(tp=2, fp=1, fn=1, tn=1)  # image level: predicted = any prediction
    assert summary["IL_MCC"] == pytest.approx((2 * 1 - 1 * 1) / np.sqrt(3 * 3 * 2 * 2))
    assert summary["cgF1"] == pytest.approx(100 * np.mean(f1) * mcc)
    assert summary["num_instances"] == 4 and summary["num_positive_pairs"] == 3


def test_perfect_predictions() -> None:
    gt = np.stack([box_mask(0, 0, 4, 4)])
    results = [evaluate_pair(gt, np.array([0.9]), gt, 0.9), evaluate_pair(gt, np.array([0.1]), gt[:0], 0.1)]
    summary = summarize(results)
    assert (
        summary["mIoU"] == 1.0 and summary["presence_f1"] == 1.0 and summary["cgF1"] == pytest.approx(100.0)
    )


def test_binary_f1_and_mcc_edges() -> None:
    assert binary_f1(np.array([0, 0]), np.array([0, 0])) == 1.0
    assert binary_f1(np.array([1, 0]), np.array([0, 1])) == 0.0
    assert matthews(3, 0, 0, 0) == 0.0  # a marginal is empty
    assert matthews(2, 0, 0, 2) == 1.0 and matthews(0, 2, 2, 0) == -1.0


def test_empty_input_is_not_defined_rather_than_perfect() -> None:
    summary = summarize([])
    assert summary["note"] == "not defined: 0 pairs" and summary["num_pairs"] == 0
    for key in ("mIoU", "presence_f1", "pmF1", "IL_MCC", "cgF1", "pmF1@50", "pmF1@75"):
        assert summary[key] is None, key


def test_only_negative_pairs_leave_localisation_not_defined() -> None:
    # No GT instance: no TP, FP or FN for pmF1 / mIoU; nothing present: no presence F1 either.
    summary = summarize([PairResult(0, 0, np.zeros(0), 0.1), PairResult(0, 0, np.zeros(0), 0.2)])
    assert summary["pmF1"] is None and summary["mIoU"] is None and summary["cgF1"] is None
    assert summary["presence_f1"] is None and summary["IL_MCC"] == 0.0
    assert summary["note"].startswith("not defined: 0 ground-truth instances")
