"""Distillation losses: small pure functions, one per term, no reduction over items.

Every function returns one value per item (per matched query pair, per image, ...), so the caller
(:mod:`sam3spec.distill.objective`) can average per sample first and then over the batch: a batch
loss is then the plain mean of per-sample losses, which makes a DDP run with ``N`` ranks of ``B``
samples equal to a single process with ``N * B`` samples.

Targets are the teacher's outputs: probabilities (``sigmoid`` of its logits) for masks, query
scores, presence and the semantic map; boxes as normalised xyxy; features after adaptation to the
student's grid (:mod:`sam3spec.distill.adapters`). Ground-truth targets have the same form
(probabilities 0/1), so the same functions train a stage against labels.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def dice_loss(logits: torch.Tensor, targets: torch.Tensor, smooth: float = 1.0) -> torch.Tensor:
    """Dice loss of mask logits against probability targets.

    Args:
        logits: ``[N, h, w]`` student mask logits.
        targets: ``[N, h, w]`` target probabilities in [0, 1].
        smooth: added to numerator and denominator (an empty mask pair has loss 0).

    Returns:
        ``[N]``: ``1 - (2 sum(p t) + smooth) / (sum p + sum t + smooth)``, p = sigmoid(logits).
    """
    probabilities = logits.float().sigmoid().flatten(1)
    targets = targets.float().flatten(1)
    numerator = 2 * (probabilities * targets).sum(1) + smooth
    denominator = probabilities.sum(1) + targets.sum(1) + smooth
    return 1 - numerator / denominator


def mask_bce_loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Per-mask mean binary cross-entropy of ``[N, h, w]`` logits vs probability targets -> ``[N]``."""
    loss = F.binary_cross_entropy_with_logits(logits.float(), targets.float(), reduction="none")
    return loss.flatten(1).mean(1)


def box_l1_loss(boxes: torch.Tensor, target_boxes: torch.Tensor) -> torch.Tensor:
    """L1 distance of ``[N, 4]`` normalised xyxy boxes, summed over the coordinates -> ``[N]``."""
    return (boxes.float() - target_boxes.float()).abs().sum(-1)


def generalized_box_iou(boxes: torch.Tensor, target_boxes: torch.Tensor, eps: float = 1e-7) -> torch.Tensor:
    """Element-wise GIoU of ``[N, 4]`` xyxy boxes (Rezatofighi et al. 2019) -> ``[N]`` in [-1, 1].

    Degenerate boxes (x1 < x0) count as empty: their width / height is clamped at 0.
    """
    a, b = boxes.float(), target_boxes.float()
    area_a = (a[:, 2] - a[:, 0]).clamp(min=0) * (a[:, 3] - a[:, 1]).clamp(min=0)
    area_b = (b[:, 2] - b[:, 0]).clamp(min=0) * (b[:, 3] - b[:, 1]).clamp(min=0)
    top_left = torch.max(a[:, :2], b[:, :2])
    bottom_right = torch.min(a[:, 2:], b[:, 2:])
    intersection = (bottom_right - top_left).clamp(min=0).prod(-1)
    union = area_a + area_b - intersection
    hull = (torch.max(a[:, 2:], b[:, 2:]) - torch.min(a[:, :2], b[:, :2])).clamp(min=0).prod(-1)
    return intersection / (union + eps) - (hull - union) / (hull + eps)


def box_giou_loss(boxes: torch.Tensor, target_boxes: torch.Tensor) -> torch.Tensor:
    """``1 - GIoU`` of ``[N, 4]`` xyxy boxes -> ``[N]`` in [0, 2]."""
    return 1 - generalized_box_iou(boxes, target_boxes)


def soft_target_bce(
    logits: torch.Tensor, target_probabilities: torch.Tensor, positive_weight: float = 1.0
) -> torch.Tensor:
    """Binary cross-entropy against soft targets, element-wise (same shape out).

    ``BCE(s, t) = -(t log sigmoid(s) + (1 - t) log(1 - sigmoid(s)))``: the student's logit ``s`` is
    pulled to the target probability ``t`` (the teacher's ``sigmoid(logit)``); the minimum is at
    ``sigmoid(s) = t``. Elements whose target is positive (``t >= 0.5``) weigh ``positive_weight``
    times more: SAM 3 trains its query scores with a positive weight, since one or two positives
    among many queries otherwise drown. Weighting whole elements (not only the positive term, as
    ``pos_weight`` does) keeps the minimum at ``t`` for soft targets; for hard targets (0 / 1) the
    two are the same.
    """
    loss = F.binary_cross_entropy_with_logits(logits.float(), target_probabilities.float(), reduction="none")
    if positive_weight == 1.0:
        return loss
    return torch.where(target_probabilities >= 0.5, positive_weight * loss, loss)


def logit_loss(
    student_logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float = 1.0
) -> torch.Tensor:
    """Score distillation: BCE of ``student / T`` against ``sigmoid(teacher / T)``, times ``T^2``.

    Args:
        student_logits: any shape.
        teacher_logits: same shape.
        temperature: softening (Hinton et al.); ``T^2`` keeps gradients comparable across T.

    Returns:
        The element-wise loss (same shape).
    """
    scale = temperature**2
    return scale * soft_target_bce(
        student_logits / temperature, (teacher_logits.float() / temperature).sigmoid()
    )


def presence_loss(student_logits: torch.Tensor, target_probabilities: torch.Tensor) -> torch.Tensor:
    """Presence: BCE of ``[B, 1]`` presence logits against the teacher's presence probability -> ``[B]``."""
    return soft_target_bce(student_logits, target_probabilities).flatten(1).mean(1)


def mask_iou(masks: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """IoU of hard masks: ``masks`` ``[N, h, w]`` logits (> 0) vs ``targets`` probabilities (> 0.5) -> ``[N]``.

    Two empty masks have IoU 1.
    """
    predicted = (masks > 0).flatten(1)
    wanted = (targets > 0.5).flatten(1)
    intersection = (predicted & wanted).sum(1).float()
    union = (predicted | wanted).sum(1).float()
    return torch.where(union > 0, intersection / union.clamp(min=1), torch.ones_like(union))


def iou_token_loss(iou_logits: torch.Tensor, masks: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """IoU head: ``sigmoid(iou_logits)`` regresses the true IoU of the student's own mask (SAM's MSE).

    Args:
        iou_logits: ``[N]`` predicted-IoU logits of matched queries.
        masks: ``[N, h, w]`` the same queries' mask logits (detached here: the IoU head must not
            move the masks).
        targets: ``[N, h, w]`` target probabilities.

    Returns:
        ``[N]`` squared error.
    """
    true_iou = mask_iou(masks.detach(), targets)
    return (iou_logits.float().sigmoid() - true_iou) ** 2


def semantic_loss(logits: torch.Tensor, target_probabilities: torch.Tensor) -> torch.Tensor:
    """Semantic (union) segmentation: per-image mean BCE of ``[B, 1, h, w]`` logits -> ``[B]``."""
    return soft_target_bce(logits, target_probabilities).flatten(1).mean(1)


def feature_loss(student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
    """Feature alignment: per-sample mean squared error of ``[B, ...]`` features -> ``[B]``.

    The caller adapts both sides first (student channels projected to the teacher's, teacher
    resized to the student's grid); the loss is 0 exactly when they are equal.
    """
    if student.shape != teacher.shape:
        raise ValueError(
            f"feature shapes differ after adaptation: {tuple(student.shape)} vs {tuple(teacher.shape)}"
        )
    return ((student.float() - teacher.float()) ** 2).flatten(1).mean(1)


def token_feature_loss(student: torch.Tensor, teacher: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """Mean squared error over the valid tokens of ``[B, L, C]`` sequences -> ``[B]``.

    ``valid`` ``[B, L]`` bool; a sample without valid tokens contributes 0 (and no gradient).
    """
    if student.shape != teacher.shape or valid.shape != student.shape[:2]:
        raise ValueError(
            f"token shapes differ: student {tuple(student.shape)}, teacher {tuple(teacher.shape)}, "
            f"valid {tuple(valid.shape)}"
        )
    weight = valid.float()
    error = ((student.float() - teacher.float()) ** 2).mean(-1)
    return (error * weight).sum(1) / weight.sum(1).clamp(min=1.0)
