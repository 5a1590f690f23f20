"""Matcher: cost terms by hand, Hungarian vs brute force, greedy's validity and bound."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from sam3spec.distill.matcher import MatchWeights, assign, greedy, hungarian, match_cost, soft_mask_iou


def brute_force(cost: np.ndarray) -> float:
    """Minimum total cost of a one-to-one assignment of min(rows, cols) pairs, by enumeration."""
    rows, cols = cost.shape
    if rows <= cols:
        return min(
            sum(cost[r, c] for r, c in zip(range(rows), perm, strict=True))
            for perm in itertools.permutations(range(cols), rows)
        )
    return brute_force(cost.T)


def total(cost: torch.Tensor, rows: torch.Tensor, cols: torch.Tensor) -> float:
    return float(cost[rows, cols].sum())


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 4), st.integers(1, 5), st.integers(0, 2**31 - 1))
def test_hungarian_equals_brute_force(rows, cols, seed):
    cost = torch.from_numpy(np.random.default_rng(seed).random((rows, cols))).float()
    student, teacher = hungarian(cost)
    assert len(student) == min(rows, cols)
    assert len(set(student.tolist())) == len(student) and len(set(teacher.tolist())) == len(teacher)
    assert total(cost, student, teacher) == pytest.approx(brute_force(cost.numpy()), abs=1e-5)


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 4), st.integers(1, 5), st.integers(0, 2**31 - 1))
def test_greedy_is_a_valid_assignment_never_better_than_optimal(rows, cols, seed):
    cost = torch.from_numpy(np.random.default_rng(seed).random((rows, cols))).float()
    student, teacher = greedy(cost)
    assert len(student) == min(rows, cols)
    assert sorted(student.tolist()) == student.tolist()
    assert len(set(teacher.tolist())) == len(teacher)
    assert total(cost, student, teacher) >= brute_force(cost.numpy()) - 1e-5


def test_greedy_takes_cheapest_pair_first():
    # Greedy takes (0, 0) at 0.0 and is left with (1, 1) at 10: total 10; optimal is 1 + 1 = 2.
    cost = torch.tensor([[0.0, 1.0], [1.0, 10.0]])
    assert greedy(cost)[1].tolist() == [0, 1]
    assert hungarian(cost)[1].tolist() == [1, 0]


def test_empty_cost():
    for solver in ("hungarian", "greedy"):
        rows, cols = assign(torch.zeros(0, 5), solver)
        assert rows.numel() == 0 and cols.numel() == 0


def test_soft_mask_iou_by_hand():
    a = torch.tensor([[[1.0, 1.0], [0.0, 0.0]]])
    b = torch.tensor([[[1.0, 0.0], [0.0, 0.0]], [[0.5, 0.5], [0.5, 0.5]]])
    iou = soft_mask_iou(a, b, eps=0.0)
    assert iou[0, 0] == pytest.approx(1 / 2)  # intersection 1, union 2
    assert iou[0, 1] == pytest.approx(1.0 / (2 + 2 - 1.0))  # intersection 1, union 3


def test_match_cost_by_hand():
    # One student query, two teacher queries; masks are logits (student) / probabilities (teacher).
    big = 30.0
    student_masks = torch.tensor([[[big, -big], [-big, -big]]])  # ~ one pixel on
    teacher_probs = torch.tensor([[[1.0, 0.0], [0.0, 0.0]], [[0.0, 0.0], [0.0, 1.0]]])
    student_boxes = torch.tensor([[0.0, 0.0, 0.5, 0.5]])
    teacher_boxes = torch.tensor([[0.0, 0.0, 0.5, 0.5], [0.5, 0.5, 1.0, 1.0]])
    student_logits = torch.tensor([0.0])  # probability 0.5
    teacher_logits = torch.tensor([0.0, float(np.log(3.0))])  # 0.5 and 0.75
    weights = MatchWeights(mask=2.0, box=5.0, logit=3.0)
    cost = match_cost(
        student_masks, student_boxes, student_logits, teacher_probs, teacher_boxes, teacher_logits, weights
    )
    assert cost[0, 0] == pytest.approx(0.0, abs=1e-4)
    # mask: IoU 0 -> 2 * 1; box: L1 = 4 * 0.5 = 2 -> 5 * 2; logit: |0.5 - 0.75| -> 3 * 0.25
    assert cost[0, 1] == pytest.approx(2.0 + 10.0 + 0.75, abs=1e-4)


def test_unknown_solver_rejected():
    with pytest.raises(ValueError, match="solver"):
        MatchWeights(solver="auction")


def test_anchor_cost_by_hand():
    # Same one-student / two-teacher case; the student's anchor sits at (0.25, 0.25).
    teacher_probs = torch.zeros(2, 2, 2)
    student_masks = torch.full((1, 2, 2), -30.0)
    student_boxes = torch.tensor([[0.0, 0.0, 0.5, 0.5]])
    teacher_boxes = torch.tensor([[0.0, 0.0, 0.5, 0.5], [0.5, 0.5, 1.0, 1.0]])
    student_logits = torch.tensor([0.0])
    teacher_logits = torch.tensor([0.0, float(np.log(3.0))])  # 0.5 and 0.75
    anchors = torch.tensor([[0.25, 0.25]])
    base = MatchWeights(mask=0.0, box=0.0, logit=0.0, anchor=0.0)
    args = (student_masks, student_boxes, student_logits, teacher_probs, teacher_boxes, teacher_logits)
    cost = match_cost(*args, MatchWeights(mask=0.0, box=0.0, logit=0.0, anchor=4.0), anchors)
    assert cost[0, 0] == pytest.approx(0.0, abs=1e-6)  # centre (0.25, 0.25) = anchor
    # centre (0.75, 0.75): L1 1.0, weighted by the teacher's probability 0.75 and anchor 4
    assert cost[0, 1] == pytest.approx(4.0 * 0.75 * 1.0, abs=1e-5)
    # Off by weight or without anchors: the plain cost.
    assert torch.equal(match_cost(*args, base, anchors), match_cost(*args, base))
    assert torch.equal(match_cost(*args, MatchWeights(anchor=4.0)), match_cost(*args, MatchWeights()))


def test_anchors_break_ties_between_identical_queries():
    # Three student queries that predict the same thing (a collapsed start): without anchors the
    # assignment of the one confident teacher object is arbitrary; with anchors it goes to the
    # query whose reference box is centred on it, and a background teacher query (probability ~0)
    # puts no pull on any anchor.
    student_masks = torch.zeros(3, 4, 4)
    student_boxes = torch.tensor([[0.4, 0.4, 0.6, 0.6]] * 3)
    student_logits = torch.zeros(3)
    teacher_probs = torch.zeros(2, 4, 4)
    teacher_boxes = torch.tensor([[0.7, 0.7, 0.9, 0.9], [0.0, 0.0, 0.2, 0.2]])
    teacher_logits = torch.tensor([8.0, -8.0])
    anchors = torch.tensor([[0.1, 0.1], [0.5, 0.5], [0.8, 0.8]])
    args = (student_masks, student_boxes, student_logits, teacher_probs, teacher_boxes, teacher_logits)
    rows, cols = hungarian(match_cost(*args, MatchWeights(anchor=5.0), anchors))
    assert dict(zip(cols.tolist(), rows.tolist(), strict=True))[0] == 2


def test_negative_anchor_weight_rejected():
    with pytest.raises(ValueError, match="anchor"):
        MatchWeights(anchor=-1.0)
