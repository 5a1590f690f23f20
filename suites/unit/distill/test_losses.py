"""Each loss on a hand-computed case; the feature losses are zero exactly at equality."""

from __future__ import annotations

import math

import pytest
import torch

from sam3spec.distill import losses


def bce(logit: float, target: float) -> float:
    p = 1 / (1 + math.exp(-logit))
    return -(target * math.log(p) + (1 - target) * math.log(1 - p))


def test_dice_by_hand():
    logits = torch.tensor([[[0.0, 0.0]]])  # p = 0.5, 0.5
    targets = torch.tensor([[[1.0, 0.0]]])
    # 1 - (2 * 0.5 + 1) / (1.0 + 1.0 + 1)
    assert losses.dice_loss(logits, targets).item() == pytest.approx(1 - 2 / 3)
    assert losses.dice_loss(torch.full((1, 2, 2), -50.0), torch.zeros(1, 2, 2)).item() == pytest.approx(0.0)


def test_mask_bce_by_hand():
    logits = torch.tensor([[[0.0, 2.0]]])
    targets = torch.tensor([[[1.0, 0.25]]])
    expected = (bce(0.0, 1.0) + bce(2.0, 0.25)) / 2
    assert losses.mask_bce_loss(logits, targets).item() == pytest.approx(expected, rel=1e-6)


def test_box_l1_by_hand():
    boxes = torch.tensor([[0.1, 0.2, 0.5, 0.6]])
    target = torch.tensor([[0.0, 0.2, 0.4, 0.9]])
    assert losses.box_l1_loss(boxes, target).item() == pytest.approx(0.1 + 0.0 + 0.1 + 0.3)


def test_giou_by_hand():
    a = torch.tensor([[0.0, 0.0, 2.0, 2.0], [0.0, 0.0, 1.0, 1.0], [0.0, 0.0, 1.0, 1.0]])
    b = torch.tensor([[1.0, 1.0, 3.0, 3.0], [0.0, 0.0, 1.0, 1.0], [2.0, 0.0, 3.0, 1.0]])
    # pair 0: inter 1, union 7, hull 9 -> 1/7 - 2/9; pair 1: identical -> 1; pair 2: disjoint,
    # union 2, hull 3 -> 0 - 1/3
    giou = losses.generalized_box_iou(a, b)
    assert giou.tolist() == pytest.approx([1 / 7 - 2 / 9, 1.0, -1 / 3], abs=1e-6)
    assert losses.box_giou_loss(a, b).tolist() == pytest.approx(
        [1 - (1 / 7 - 2 / 9), 0.0, 1 + 1 / 3], abs=1e-6
    )


def test_logit_loss_by_hand_and_minimum_at_teacher():
    student, teacher = torch.tensor([1.0]), torch.tensor([-0.5])
    target = 1 / (1 + math.exp(0.5))
    assert losses.logit_loss(student, teacher).item() == pytest.approx(bce(1.0, target), rel=1e-6)
    # temperature 2: BCE(1/2, sigmoid(-1/4)) * 4
    assert losses.logit_loss(student, teacher, 2.0).item() == pytest.approx(
        4 * bce(0.5, 1 / (1 + math.exp(0.25))), rel=1e-6
    )
    grid = torch.linspace(-3, 3, 601)
    best = grid[losses.logit_loss(grid, teacher.expand_as(grid)).argmin()]
    assert best.item() == pytest.approx(-0.5, abs=0.011)


def test_presence_and_semantic_by_hand():
    assert losses.presence_loss(torch.tensor([[2.0]]), torch.tensor([[0.9]])).item() == pytest.approx(
        bce(2.0, 0.9), rel=1e-6
    )
    semantic = losses.semantic_loss(torch.tensor([[[[0.0, -1.0]]]]), torch.tensor([[[[0.0, 1.0]]]]))
    assert semantic.shape == (1,)
    assert semantic.item() == pytest.approx((bce(0.0, 0.0) + bce(-1.0, 1.0)) / 2, rel=1e-6)


def test_iou_token_by_hand():
    masks = torch.tensor([[[5.0, 5.0], [-5.0, -5.0]]])  # 2 pixels on
    targets = torch.tensor([[[0.9, 0.1], [0.8, 0.0]]])  # 2 pixels > 0.5, one shared -> IoU 1/3
    assert losses.mask_iou(masks, targets).item() == pytest.approx(1 / 3)
    value = losses.iou_token_loss(torch.tensor([0.0]), masks, targets).item()
    assert value == pytest.approx((0.5 - 1 / 3) ** 2)
    assert losses.mask_iou(torch.full((1, 2, 2), -1.0), torch.zeros(1, 2, 2)).item() == 1.0


def test_iou_token_does_not_move_masks():
    masks = torch.randn(3, 4, 4, requires_grad=True)
    iou_logits = torch.randn(3, requires_grad=True)
    losses.iou_token_loss(iou_logits, masks, torch.rand(3, 4, 4)).sum().backward()
    assert masks.grad is None and iou_logits.grad is not None


def test_feature_loss_zero_at_equality_and_by_hand():
    features = torch.randn(2, 8, 5, 5)
    assert losses.feature_loss(features, features.clone()).tolist() == [0.0, 0.0]
    student, teacher = torch.zeros(1, 1, 1, 2), torch.tensor([[[[1.0, 3.0]]]])
    assert losses.feature_loss(student, teacher).item() == pytest.approx((1 + 9) / 2)
    with pytest.raises(ValueError, match="differ"):
        losses.feature_loss(torch.zeros(1, 2, 3, 3), torch.zeros(1, 2, 4, 4))


def test_token_feature_loss_by_hand_over_valid_tokens():
    student = torch.zeros(2, 3, 2)
    teacher = torch.tensor([[[1.0, 3.0], [2.0, 2.0], [9.0, 9.0]], [[5.0, 5.0], [0.0, 0.0], [0.0, 0.0]]])
    valid = torch.tensor([[True, True, False], [False, False, False]])
    # sample 0: tokens (1+9)/2 = 5 and (4+4)/2 = 4 -> 4.5; sample 1 has no valid token -> 0
    assert losses.token_feature_loss(student, teacher, valid).tolist() == pytest.approx([4.5, 0.0])
    assert losses.token_feature_loss(teacher, teacher.clone(), ~valid).tolist() == [0.0, 0.0]
    with pytest.raises(ValueError, match="token shapes"):
        losses.token_feature_loss(student, teacher, valid[:, :2])


def test_losses_return_one_value_per_item():
    n = 5
    masks, probs, boxes = torch.randn(n, 6, 6), torch.rand(n, 6, 6), torch.rand(n, 4)
    for value in (
        losses.dice_loss(masks, probs),
        losses.mask_bce_loss(masks, probs),
        losses.box_l1_loss(boxes, boxes),
        losses.box_giou_loss(boxes, boxes),
        losses.iou_token_loss(torch.randn(n), masks, probs),
    ):
        assert value.shape == (n,)


def test_positive_weight_by_hand():
    logits = torch.tensor([0.5, 0.5, -1.0])
    targets = torch.tensor([0.75, 0.25, 1.0])
    weighted = losses.soft_target_bce(logits, targets, 4.0).tolist()
    assert weighted == pytest.approx([4 * bce(0.5, 0.75), bce(0.5, 0.25), 4 * bce(-1.0, 1.0)], rel=1e-6)
    assert losses.soft_target_bce(logits, targets).tolist() == pytest.approx(
        [bce(0.5, 0.75), bce(0.5, 0.25), bce(-1.0, 1.0)], rel=1e-6
    )
    # The minimum stays at the teacher's probability for a soft target (calibration kept).
    grid = torch.linspace(-3, 3, 601)
    best = grid[losses.soft_target_bce(grid, torch.full_like(grid, 0.75), 4.0).argmin()]
    assert torch.sigmoid(best).item() == pytest.approx(0.75, abs=0.01)
