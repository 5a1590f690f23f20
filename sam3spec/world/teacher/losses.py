"""Set-prediction losses for training a SAM 3 detector (and its point tracker) from scratch.

DETR-style: per (image, phrase) pair, queries are matched one-to-one to ground-truth instances
(Hungarian, cost = class + box L1 + GIoU + mask dice); matched queries learn their box and mask,
every query learns whether it is matched (BCE; focal loss kept scores below 0.5, see
docs/TEACHER.md), on negative pairs too; the presence token learns whether the phrase has any
instance. Earlier decoder layers get the class / box / presence
losses too (auxiliary losses, matched per layer).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from scipy.optimize import linear_sum_assignment

from sam3spec.models.outputs import resize_mask_logits
from sam3spec.world.teacher.data import IGNORE


@dataclass(frozen=True)
class LossWeights:
    """Weights of the loss terms (one place where they are combined: :func:`detector_loss`)."""

    classification: float = 2.0
    presence: float = 2.0
    box_l1: float = 5.0
    box_giou: float = 2.0
    mask_bce: float = 5.0
    mask_dice: float = 5.0
    semantic: float = 1.0
    semantic_dice: float = 0.0
    auxiliary: float = 1.0
    tracker: float = 1.0
    anchor: float = 5.0
    word_alignment: float = 0.0


def box_area(boxes: torch.Tensor) -> torch.Tensor:
    return (boxes[..., 2] - boxes[..., 0]).clamp(min=0) * (boxes[..., 3] - boxes[..., 1]).clamp(min=0)


def generalized_iou(first: torch.Tensor, second: torch.Tensor) -> torch.Tensor:
    """Pairwise GIoU of xyxy boxes ``[N, 4]`` x ``[M, 4]`` -> ``[N, M]``."""
    area1, area2 = box_area(first), box_area(second)
    top_left = torch.max(first[:, None, :2], second[None, :, :2])
    bottom_right = torch.min(first[:, None, 2:], second[None, :, 2:])
    intersection = (bottom_right - top_left).clamp(min=0).prod(-1)
    union = area1[:, None] + area2[None, :] - intersection
    iou = intersection / union.clamp(min=1e-7)
    hull = (
        (
            torch.max(first[:, None, 2:], second[None, :, 2:])
            - torch.min(first[:, None, :2], second[None, :, :2])
        )
        .clamp(min=0)
        .prod(-1)
    )
    return iou - (hull - union) / hull.clamp(min=1e-7)


def dice_loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Per-mask dice loss of ``[N, H, W]`` logits vs soft targets -> ``[N]``."""
    probabilities = logits.sigmoid().flatten(1)
    targets = targets.flatten(1)
    numerator = 2 * (probabilities * targets).sum(1)
    denominator = probabilities.sum(1) + targets.sum(1)
    return 1 - (numerator + 1) / (denominator + 1)


def pairwise_dice_cost(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Dice loss of every query mask ``[Q, H, W]`` against every target ``[G, H, W]`` -> ``[Q, G]``."""
    probabilities = logits.sigmoid().flatten(1)
    targets = targets.flatten(1)
    numerator = 2 * probabilities @ targets.T
    denominator = probabilities.sum(1)[:, None] + targets.sum(1)[None, :]
    return 1 - (numerator + 1) / (denominator + 1)


@torch.no_grad()
def hungarian(
    logits: torch.Tensor,
    boxes: torch.Tensor,
    target_boxes: torch.Tensor,
    weights: LossWeights,
    masks: torch.Tensor | None = None,
    target_masks: torch.Tensor | None = None,
    anchors: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Match ``Q`` queries to ``G`` targets of one pair; returns (query indices, target indices).

    ``anchors`` (``[Q, 2]`` normalised centres of the queries' fixed reference boxes) add
    ``weights.anchor`` x the L1 distance between a target's centre and the query's anchor: the
    assignment is then stable from the first step (each object goes to a query whose reference
    box is near it, as anchor-based detectors assign), instead of following the random early
    predictions. Measured: without it a 1,200-step run learnt only priors (box L1 flat at 0.27,
    every score below 0.5); Hungarian matching on near-random predictions re-shuffles the
    assignment every step, the slow-convergence problem of DETR.
    """
    cost = -weights.classification * logits.sigmoid()[:, None]
    if anchors is not None and weights.anchor:
        centres = (target_boxes[:, :2] + target_boxes[:, 2:]) / 2
        cost = cost + weights.anchor * torch.cdist(anchors.float(), centres.float(), p=1)
    cost = cost + weights.box_l1 * torch.cdist(boxes, target_boxes, p=1)
    cost = cost - weights.box_giou * generalized_iou(boxes, target_boxes)
    if masks is not None and target_masks is not None:
        side = min(32, masks.shape[-1])  # both at most 32 x 32 (targets may be finer than the masks)
        small = F.adaptive_avg_pool2d(masks[None], side)[0] if masks.shape[-1] > side else masks
        small_targets = (
            F.adaptive_avg_pool2d(target_masks[None], side)[0]
            if target_masks.shape[-1] > side
            else target_masks
        )
        cost = cost + weights.mask_dice * pairwise_dice_cost(small, small_targets)
    rows, cols = linear_sum_assignment(cost.float().numpy())
    return torch.as_tensor(rows, dtype=torch.long), torch.as_tensor(cols, dtype=torch.long)


def _layer_losses(
    logits: torch.Tensor,
    boxes: torch.Tensor,
    presence: torch.Tensor,
    target_boxes: list[torch.Tensor],
    weights: LossWeights,
    matches: list[tuple[torch.Tensor, torch.Tensor]],
) -> dict[str, torch.Tensor]:
    """Class, presence and box losses of one decoder layer for ``B`` pairs."""
    present = torch.tensor([len(t) > 0 for t in target_boxes], dtype=torch.float32)
    losses = {"presence": F.binary_cross_entropy_with_logits(presence[:, 0].float(), present)}
    class_targets = torch.zeros_like(logits)
    matched_boxes, wanted_boxes = [], []
    for pair, (rows, cols) in enumerate(matches):
        class_targets[pair, rows] = 1.0
        matched_boxes.append(boxes[pair, rows])
        wanted_boxes.append(target_boxes[pair][cols])
    # Every query of every pair, negatives included: a phrase with no instance must light no
    # query. (SAM 3 leaves negatives to the presence head; from scratch on a CPU budget, the
    # queries of negative pairs are what forces the scores to depend on the text early.)
    losses["classification"] = F.binary_cross_entropy_with_logits(logits.float(), class_targets)
    if present.bool().any():
        predicted, wanted = torch.cat(matched_boxes), torch.cat(wanted_boxes)
        losses["box_l1"] = F.l1_loss(predicted, wanted, reduction="sum") / max(1, len(wanted))
        losses["box_giou"] = (1 - torch.diag(generalized_iou(predicted, wanted))).sum() / max(1, len(wanted))
    return losses


def detector_loss(
    outputs,
    layers: dict[str, torch.Tensor],
    target_boxes: list[torch.Tensor],
    target_masks: list[torch.Tensor],
    weights: LossWeights,
    anchors: torch.Tensor | None = None,
) -> tuple[torch.Tensor, dict[str, float]]:
    """Total detector loss for ``B`` pairs.

    Args:
        outputs: :class:`~sam3spec.models.outputs.Sam3Outputs` (``pred_masks`` ``[B, Q, h, w]``).
        layers: per-layer ``logits`` / ``boxes_xyxy`` / ``presence`` (last layer included).
        target_boxes: per pair ``[n, 4]`` normalised xyxy.
        target_masks: per pair ``[n, H, W]`` soft masks at the mask resolution or a multiple of it
            (the predicted mask and semantic logits are then upsampled bilinearly to ``H x W``).
        weights: loss weights.
        anchors: ``[Q, 2]`` anchor centres for the matching (see :func:`hungarian`), or None.

    Returns:
        ``(loss, parts)`` with the weighted parts as floats for logging.
    """
    matches = []
    for pair in range(len(target_boxes)):
        if len(target_boxes[pair]) == 0:
            matches.append((torch.zeros(0, dtype=torch.long), torch.zeros(0, dtype=torch.long)))
            continue
        matches.append(
            hungarian(
                outputs.pred_logits[pair].detach(),
                outputs.pred_boxes[pair].detach(),
                target_boxes[pair],
                weights,
                outputs.pred_masks[pair].detach(),
                target_masks[pair],
                anchors,
            )
        )
    parts = _layer_losses(
        outputs.pred_logits, outputs.pred_boxes, outputs.presence_logits, target_boxes, weights, matches
    )
    matched_masks = [outputs.pred_masks[pair, rows] for pair, (rows, _) in enumerate(matches)]
    wanted_masks = [target_masks[pair][cols] for pair, (_, cols) in enumerate(matches)]
    if sum(len(m) for m in matched_masks):
        wanted = torch.cat(wanted_masks)
        predicted = resize_mask_logits(torch.cat(matched_masks).float(), wanted.shape)
        parts["mask_bce"] = F.binary_cross_entropy_with_logits(predicted, wanted)
        parts["mask_dice"] = dice_loss(predicted, wanted).mean()
    size = target_masks[0].shape[-2:]
    union = torch.stack([m.amax(0) if len(m) else torch.zeros(size) for m in target_masks])
    semantic = resize_mask_logits(outputs.semantic_seg[:, 0].float(), size)
    parts["semantic"] = F.binary_cross_entropy_with_logits(semantic, union)
    if weights.semantic_dice:
        # Dice is blind to the ~90 % background that dominates the BCE: it is the dense,
        # balanced "which pixels does this phrase name" signal that teaches text-image binding.
        parts["semantic_dice"] = dice_loss(semantic, union).mean()
    total = sum(getattr(weights, name) * value for name, value in parts.items())
    logged = {name: float(value.detach()) for name, value in parts.items()}
    for layer in range(layers["logits"].shape[0] - 1):  # auxiliary: earlier layers, matched on their own
        logits, boxes = layers["logits"][layer], layers["boxes_xyxy"][layer]
        layer_matches = [
            hungarian(
                logits[pair].detach(), boxes[pair].detach(), target_boxes[pair], weights, anchors=anchors
            )
            if len(target_boxes[pair])
            else (torch.zeros(0, dtype=torch.long), torch.zeros(0, dtype=torch.long))
            for pair in range(len(target_boxes))
        ]
        aux = _layer_losses(logits, boxes, layers["presence"][layer], target_boxes, weights, layer_matches)
        total = total + weights.auxiliary * sum(getattr(weights, name) * value for name, value in aux.items())
        logged[f"aux{layer}"] = float(sum(aux.values()).detach())
    return total, logged


class WordAlignment(torch.nn.Module):
    """Learnable temperature of the word-alignment logits (training only, not shipped)."""

    def __init__(self, scale: float = 10.0) -> None:
        super().__init__()
        self.log_scale = torch.nn.Parameter(torch.tensor(float(scale)).log())

    def forward(self, image_features: torch.Tensor, text_features: torch.Tensor) -> torch.Tensor:
        """``[N, C, h, w]`` image features x ``[N, K, C]`` word features -> ``[N, K, h, w]``
        logits: cosine similarity x the learnt scale (no bias: the softmax over words ignores it)."""
        image = F.normalize(image_features.float(), dim=1)
        text = F.normalize(text_features.float(), dim=-1)
        return torch.einsum("nkc,nchw->nkhw", text, image) * self.log_scale.exp()


def word_alignment_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Which word of an attribute vocabulary names each object cell: cross-entropy over the
    vocabulary's words (e.g. the 7 colours), on the image features *before* they meet the text.

    Why: the detection losses only say "these pixels are what the whole phrase names", a signal
    that reached the text-image binding slowly (presence loss at chance for 2,000 steps, see
    docs/TEACHER.md). A per-pixel, per-word binary target was tried first: it learnt one shared
    "object vs background" direction and the colour words' text features collapsed onto it
    (cosine 0.45 at initialisation -> 0.97; colour top-1 over object pixels 0.20, chance 0.14).
    A softmax over the words cancels any direction they share, so only what tells "red" from
    "blue" gets gradient (measured alone, 150 steps: colour top-1 0.98).

    Args:
        logits: ``[N, K, h, w]`` (:class:`WordAlignment`, K words); labels ``[N, h, w]`` long,
            ``IGNORE`` for cells no object covers.
    """
    if not (labels >= 0).any():
        return logits.sum() * 0.0
    return F.cross_entropy(logits.float(), labels, ignore_index=IGNORE)


def tracker_loss(
    masks: torch.Tensor, iou_predictions: torch.Tensor, object_logits: torch.Tensor, targets: torch.Tensor
) -> tuple[torch.Tensor, dict[str, float]]:
    """SAM's multimask loss: the best of the M candidate masks learns (BCE + dice), the IoU head
    regresses each candidate's true IoU, the object score learns "an object is there".

    Args:
        masks: ``[T, M, h, w]`` logits; iou_predictions ``[T, M]`` in [0, 1];
            object_logits ``[T, 1]``; targets ``[T, h, w]`` soft masks.
    """
    count, candidates = masks.shape[:2]
    expanded = targets[:, None].expand_as(masks).reshape(count * candidates, *masks.shape[-2:])
    flat = masks.reshape(count * candidates, *masks.shape[-2:]).float()
    per_mask = F.binary_cross_entropy_with_logits(flat, expanded, reduction="none").flatten(1).mean(1)
    per_mask = (per_mask + dice_loss(flat, expanded)).reshape(count, candidates)
    best = per_mask.min(dim=1).values.mean()
    with torch.no_grad():
        hard = flat > 0
        wanted = expanded > 0.5
        intersection = (hard & wanted).flatten(1).sum(1).float()
        union = (hard | wanted).flatten(1).sum(1).float().clamp(min=1)
        true_iou = (intersection / union).reshape(count, candidates)
    iou_loss = F.mse_loss(iou_predictions.float(), true_iou)
    object_loss = F.binary_cross_entropy_with_logits(
        object_logits.float(), torch.ones_like(object_logits.float())
    )
    total = best + iou_loss + 0.1 * object_loss
    return total, {"tracker_mask": float(best.detach()), "tracker_iou": float(iou_loss.detach())}
