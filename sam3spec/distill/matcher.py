"""Match student queries to teacher queries (SAM 3: 200 teacher vs 100 student queries).

The student has fewer queries than the teacher, so each student query is paired with at most one
teacher query and the pairing is a one-to-one assignment minimising

    cost = mask * (1 - soft mask IoU) + box * L1(boxes xyxy) + logit * |sigmoid(s) - sigmoid(t)|
           + anchor * sigmoid(t) * L1(student query anchor, teacher box centre)

The anchor term makes the assignment of a teacher object follow where the student query *looks*
(its reference box, which moves slowly) instead of what it currently predicts. Without it a
student trained from scratch collapses: early predictions of all queries are alike, the object is
matched to a different query every step, and the score head learns one constant (measured on the
concept world: every query of an image had the same probability, ~0.15-0.2, after 9,000 steps;
docs/DECISIONS.md "Query collapse"). The concept-world teacher needed the same anchors
(:func:`sam3spec.world.teacher.losses.hungarian`).
It is weighted by the teacher's probability: background queries have no place to be.

Two solvers: :func:`hungarian` (optimal, scipy's ``linear_sum_assignment`` on CPU) and
:func:`greedy` (repeatedly take the cheapest remaining pair; what the seed ran on MPS, where a
host round trip per image is costly). Both return ``(student_indices, teacher_indices)`` sorted
by student index, ``min(Q_s, Q_t)`` pairs, on the cost matrix's device.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment

from sam3spec.boxes import boxes_xyxy_to_cxcywh


@dataclass(frozen=True)
class MatchWeights:
    """Weights of the matching cost terms and the solver.

    Attributes:
        mask: weight of ``1 - soft mask IoU``.
        box: weight of the L1 distance of normalised xyxy boxes (summed over the 4 coordinates).
        logit: weight of ``|sigmoid(student logit) - sigmoid(teacher logit)|``.
        anchor: weight of ``sigmoid(teacher logit) x L1(student anchor centre, teacher box centre)``
            (0: off; only used when the caller passes the student's anchors, as the trainer does).
        solver: ``"hungarian"`` (optimal) or ``"greedy"``.
    """

    mask: float = 2.0
    box: float = 5.0
    logit: float = 2.0
    anchor: float = 5.0
    solver: str = "hungarian"

    def __post_init__(self) -> None:
        if self.anchor < 0:
            raise ValueError(f"anchor weight must be >= 0, got {self.anchor}")
        if self.solver not in ("hungarian", "greedy"):
            raise ValueError(f"solver must be 'hungarian' or 'greedy', got {self.solver!r}")


def soft_mask_iou(first: torch.Tensor, second: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """Pairwise soft IoU of probability masks.

    Args:
        first: ``[N, h, w]`` probabilities in [0, 1].
        second: ``[M, h, w]`` probabilities, same ``h x w``.

    Returns:
        ``[N, M]`` = sum(p q) / (sum p + sum q - sum(p q)); 1 when both are empty (up to eps).
    """
    a, b = first.flatten(1).float(), second.flatten(1).float()
    intersection = a @ b.T
    union = a.sum(1)[:, None] + b.sum(1)[None, :] - intersection
    return (intersection + eps) / (union + eps)


def match_cost(
    student_masks: torch.Tensor,
    student_boxes: torch.Tensor,
    student_logits: torch.Tensor,
    teacher_mask_probs: torch.Tensor,
    teacher_boxes: torch.Tensor,
    teacher_logits: torch.Tensor,
    weights: MatchWeights = MatchWeights(),
    anchors: torch.Tensor | None = None,
) -> torch.Tensor:
    """Cost of pairing every student query with every teacher query of one image.

    Args:
        student_masks: ``[Qs, h, w]`` mask logits.
        student_boxes: ``[Qs, 4]`` normalised xyxy; teacher_boxes ``[Qt, 4]``.
        student_logits: ``[Qs]`` query logits; teacher_logits ``[Qt]``.
        teacher_mask_probs: ``[Qt, h, w]`` mask probabilities at the size of ``student_masks``.
        teacher_boxes: see ``student_boxes``.
        teacher_logits: see ``student_logits``.
        weights: cost weights.
        anchors: ``[Qs, 2]`` normalised ``(cx, cy)`` of the student queries' reference boxes, or
            None (no anchor term).

    Returns:
        ``[Qs, Qt]`` float32 cost (no gradient).
    """
    with torch.no_grad():
        cost = weights.mask * (1 - soft_mask_iou(student_masks.float().sigmoid(), teacher_mask_probs))
        cost = cost + weights.box * torch.cdist(student_boxes.float(), teacher_boxes.float(), p=1)
        probability = (
            student_logits.float().sigmoid()[:, None] - teacher_logits.float().sigmoid()[None, :]
        ).abs()
        cost = cost + weights.logit * probability
        if anchors is not None and weights.anchor:
            centres = boxes_xyxy_to_cxcywh(teacher_boxes.float())[:, :2]
            distance = torch.cdist(anchors.float().to(centres.device), centres, p=1)
            cost = cost + weights.anchor * teacher_logits.float().sigmoid()[None, :] * distance
        return cost


def hungarian(cost: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Optimal one-to-one assignment of a ``[Qs, Qt]`` cost matrix (scipy, on CPU).

    Returns:
        ``(student_indices, teacher_indices)``, ``min(Qs, Qt)`` pairs, sorted by student index.
    """
    if cost.numel() == 0:
        empty = torch.zeros(0, dtype=torch.long, device=cost.device)
        return empty, empty.clone()
    rows, cols = linear_sum_assignment(cost.detach().float().cpu().numpy())
    return (
        torch.as_tensor(rows, dtype=torch.long, device=cost.device),
        torch.as_tensor(cols, dtype=torch.long, device=cost.device),
    )


def greedy(cost: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Greedy assignment: take the globally cheapest pair, remove its row and column, repeat.

    Not optimal (a test bounds how far it is); runs on the cost's device with one host transfer.

    Returns:
        ``(student_indices, teacher_indices)``, ``min(Qs, Qt)`` pairs, sorted by student index.
    """
    rows_count, cols_count = cost.shape
    pairs = min(rows_count, cols_count)
    if pairs == 0:
        empty = torch.zeros(0, dtype=torch.long, device=cost.device)
        return empty, empty.clone()
    order = torch.argsort(cost.detach().flatten(), stable=True).cpu().numpy()
    used_rows = np.zeros(rows_count, dtype=bool)
    used_cols = np.zeros(cols_count, dtype=bool)
    rows, cols = [], []
    for flat in order:
        row, col = divmod(int(flat), cols_count)
        if used_rows[row] or used_cols[col]:
            continue
        used_rows[row] = used_cols[col] = True
        rows.append(row)
        cols.append(col)
        if len(rows) == pairs:
            break
    order_rows = np.argsort(rows)
    return (
        torch.as_tensor(np.asarray(rows)[order_rows], dtype=torch.long, device=cost.device),
        torch.as_tensor(np.asarray(cols)[order_rows], dtype=torch.long, device=cost.device),
    )


def assign(cost: torch.Tensor, solver: str = "hungarian") -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`hungarian` or :func:`greedy` by name."""
    return hungarian(cost) if solver == "hungarian" else greedy(cost)
