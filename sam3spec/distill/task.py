"""The distillation objective: match queries, evaluate every loss term, combine with the stage's weights.

This is the one place where loss weights are applied (:func:`total_loss`). Per sample:

1. the teacher's valid queries are ranked by score and the best ``Q_s`` kept (the student can
   represent at most ``Q_s`` instances; SAM 3 200 -> 100), then matched one-to-one to the
   student's queries (:mod:`sam3spec.distill.matcher`);
2. **logit**: every student query learns the matched teacher query's probability, unmatched
   queries learn 0;
3. **mask (Dice + BCE), box (L1 + GIoU), IoU token**: matched pairs whose teacher probability is
   at least ``foreground_threshold``, averaged over those pairs (0 when there are none);
4. **presence, semantic**: per sample; **fpn / encoder feature**: per sample, after adaptation
   (encoder only for text / box prompts); **text feature**: per sample over the real tokens of
   text prompts (0 for other prompts);
5. **auxiliary** (DETR's): steps 1-3 and presence again on each earlier decoder layer's
   predictions (``Sam3Outputs.aux_outputs``), matched on their own, weighted with the stage's
   weights and summed over the layers: the earlier layers get a direct signal instead of one
   passed back through the later layers.

**Mask resolution.** Targets may be finer than the student's stride-4 grid (``mask_target_scale``
of the stage: the concept-world teacher's masks are 80 x 80, the tiny student's grid 40 x 40 at
160 px). The stage's student then upsamples its logits bilinearly to the target grid inside the
model (``StudentConfig.mask_upsample``), so the matcher's mask cost, the mask, IoU-token and
semantic losses, the evaluation, the predictor and the export all see the same masks; logits
coarser than the targets (a checkpoint built without that factor) are upsampled here the same
way (``align_corners=False``). Trained against the area-averaged 40 x 40 target, a logit learns
the covered fraction and an object thinner than half a cell vanishes after thresholding: on the
held-out concept world, the best 40 x 40 masks reach a mean IoU of 0.707 that way, and 0.847 when
their upsampled logits are fitted to 80 x 80 masks (docs/DISTILL.md).

Each term is the mean over the batch of its per-sample values, so gradients of a DDP run equal a
single-process run with the same global batch. What a stage sets (weights, matcher, thresholds) is
one :class:`Objective`; what the student produced is one :class:`StudentPass`.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import NamedTuple

import torch
from torch import nn

from sam3spec.distill import losses
from sam3spec.distill.adapters import FeatureAdapters, StudentGeometry
from sam3spec.distill.matcher import MatchWeights, assign, match_cost
from sam3spec.distill.stages import ALL_LOSSES, AUX_LOSSES, LossWeights, StageConfig
from sam3spec.distill.targets import Targets
from sam3spec.models.image_encoder import ImageFeatures
from sam3spec.models.outputs import Sam3Outputs, resize_mask_logits


class StudentPass(NamedTuple):
    """What :class:`DistillModel` returns: the outputs and the adapted features (None when off).

    Attributes:
        outputs: the student's :class:`Sam3Outputs`.
        levels: adapted FPN levels ``[B, Ct, H, W]`` each.
        encoder: adapted encoder map ``[B, Ct, h, w]``.
        text: ``(tokens [B, L, Ct], padding [B, L] bool)`` of the prompt's text tokens (only when
            the adapters project text and the batch has ``input_ids``).
    """

    outputs: Sam3Outputs
    levels: list[torch.Tensor] | None = None
    encoder: torch.Tensor | None = None
    text: tuple[torch.Tensor, torch.Tensor] | None = None


class DistillModel(nn.Module):
    """The student plus the feature adapters that train with it (one module for DDP / optimizer).

    Args:
        student: the student.
        adapters: feature adapters, or None when no feature loss is on.
        geometry: the student's grid sizes.
        fpn_levels: distilled FPN levels.
        aux: also predict from every earlier decoder layer (``Sam3Outputs.aux_outputs``; the
            ``auxiliary`` loss).
    """

    def __init__(
        self,
        student: nn.Module,
        adapters: FeatureAdapters | None,
        geometry: StudentGeometry,
        fpn_levels: tuple[int, ...] = (0, 1, 2, 3),
        aux: bool = False,
    ) -> None:
        super().__init__()
        self.aux = aux
        self.student = student
        self.adapters = adapters
        self.geometry = geometry
        self.fpn_levels = fpn_levels

    def forward(self, inputs: dict[str, torch.Tensor]) -> StudentPass:
        """Student forward on ``inputs`` (keys of :meth:`Student.forward`, plus an optional
        ``image_index`` ``[B]``: sample ``b`` uses image row ``image_index[b]`` of ``pixel_values``),
        plus the adapted features the adapters project (:class:`StudentPass`)."""
        inputs = dict(inputs)
        owner = inputs.pop("image_index", None)
        features = self.student.encode_image(inputs.pop("pixel_values"))
        if owner is not None:  # samples sharing an image share its encoder pass
            features = ImageFeatures(
                [level.index_select(0, owner) for level in features.features],
                [position.index_select(0, owner) for position in features.pos],
            )
        prompt, prompt_mask = self.student.encode_prompt(image_features=features, **inputs)
        outputs = self.student.decode(
            features, prompt, prompt_mask, return_intermediates=self.adapters is not None, return_aux=self.aux
        )
        if self.adapters is None:
            return StudentPass(outputs)
        intermediates = outputs.intermediates
        levels = self.adapters.forward_levels([intermediates.fpn_levels[level] for level in self.fpn_levels])
        encoder = self.adapters.forward_encoder(intermediates.encoder_memory, self.geometry.encoder_size)
        text = None
        if self.adapters.text is not None and inputs.get("input_ids") is not None:
            count = inputs["input_ids"].shape[1]  # the prompt holds the text tokens first
            text = (self.adapters.forward_text(prompt[:, :count]), prompt_mask[:, :count])
        return StudentPass(outputs, levels, encoder, text)


def query_anchors(student: nn.Module) -> torch.Tensor:
    """``[Q, 2]`` normalised centres of the student's (learned) query reference boxes, detached:
    the matcher's anchors (:class:`~sam3spec.distill.matcher.MatchWeights` ``anchor``)."""
    return student.detr_decoder.reference_boxes.detach().sigmoid()[:, :2]


def match_sample(
    outputs: Sam3Outputs,
    targets: Targets,
    index: int,
    weights: MatchWeights,
    anchors: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Matched ``(student queries, teacher queries)`` of sample ``index`` (teacher indices into all Q_t)."""
    valid = torch.nonzero(targets.valid[index]).flatten()
    keep = min(len(valid), outputs.pred_logits.shape[1])
    if keep == 0:
        empty = torch.zeros(0, dtype=torch.long, device=outputs.pred_logits.device)
        return empty, empty.clone()
    order = torch.argsort(targets.logits[index, valid], descending=True, stable=True)[:keep]
    candidates = valid[order]
    wanted = targets.mask_probs[index, candidates].float()
    cost = match_cost(
        resize_mask_logits(outputs.pred_masks[index].detach(), wanted.shape),
        outputs.pred_boxes[index],
        outputs.pred_logits[index],
        wanted,
        targets.boxes_xyxy[index, candidates],
        targets.logits[index, candidates],
        weights,
        anchors,
    )
    rows, cols = assign(cost, weights.solver)
    return rows, candidates[cols]


@dataclass(frozen=True)
class Objective:
    """What a stage sets about its loss: which terms and how they weigh, how queries are matched.

    Attributes:
        weights: decides which terms are computed (weight != 0) and how :func:`total_loss` sums them.
        matcher: matching cost and solver.
        foreground_threshold: see :class:`~sam3spec.distill.stages.StageConfig`.
        positive_weight: weight of the positive part of the logit loss (see
            :func:`~sam3spec.distill.losses.soft_target_bce`).
    """

    weights: LossWeights
    matcher: MatchWeights = field(default_factory=MatchWeights)
    foreground_threshold: float = 0.5
    positive_weight: float = 1.0

    @classmethod
    def of(cls, stage: StageConfig) -> Objective:
        """A stage's objective (its ``losses``, ``matcher``, ``foreground_threshold`` and
        ``logit_positive_weight``)."""
        return cls(stage.losses, stage.matcher, stage.foreground_threshold, stage.logit_positive_weight)


def loss_terms(
    passed: StudentPass, targets: Targets, objective: Objective, anchors: torch.Tensor | None = None
) -> dict[str, torch.Tensor]:
    """Every active loss term (unweighted), each a scalar mean over the batch.

    Args:
        passed: the student's outputs for ``B`` samples and its adapted features (each None when
            its loss is off; ``text`` None when the batch has no text prompt: that term is then 0).
        targets: :class:`Targets` of the same samples, on the same device.
        objective: the stage's weights, matcher and thresholds.
        anchors: ``[Q, 2]`` the student's query anchors (:func:`query_anchors`) for the matcher's
            anchor term, or None (no anchor term).
    """
    outputs, weights, matcher = passed.outputs, objective.weights, objective.matcher
    batch = outputs.pred_logits.shape[0]
    device = outputs.pred_logits.device
    active = set(weights.active())
    matched_terms = ("logit", "mask_bce", "mask_dice", "box_l1", "box_giou", "iou_token")
    per_sample: dict[str, list[torch.Tensor]] = {name: [] for name in matched_terms if name in active}
    zero = outputs.pred_logits.sum() * 0.0  # keeps the graph connected when a sample has no foreground
    for index in range(batch):
        rows, cols = match_sample(outputs, targets, index, matcher, anchors)
        if "logit" in active:
            wanted = torch.zeros_like(outputs.pred_logits[index], dtype=torch.float32)
            wanted[rows] = targets.logits[index, cols].float().sigmoid()
            logit = losses.soft_target_bce(outputs.pred_logits[index], wanted, objective.positive_weight)
            per_sample["logit"].append(logit.mean())
        foreground = targets.logits[index, cols].float().sigmoid() >= objective.foreground_threshold
        rows, cols = rows[foreground], cols[foreground]
        wanted_masks = targets.mask_probs[index, cols].float()
        masks = resize_mask_logits(outputs.pred_masks[index, rows], wanted_masks.shape)
        boxes, wanted_boxes = outputs.pred_boxes[index, rows], targets.boxes_xyxy[index, cols]
        if not len(rows):
            for name in ("mask_bce", "mask_dice", "box_l1", "box_giou", "iou_token"):
                if name in active:
                    per_sample[name].append(zero)
            continue
        matched = {
            "mask_bce": losses.mask_bce_loss,
            "mask_dice": losses.dice_loss,
            "box_l1": losses.box_l1_loss,
            "box_giou": losses.box_giou_loss,
        }
        for name, function in matched.items():
            if name in active:
                pair = (masks, wanted_masks) if name.startswith("mask") else (boxes, wanted_boxes)
                per_sample[name].append(function(*pair).mean())
        if "iou_token" in active:
            iou = losses.iou_token_loss(outputs.iou_scores[index, rows], masks, wanted_masks)
            per_sample["iou_token"].append(iou.mean())
    result = {name: torch.stack(values).mean() for name, values in per_sample.items()}
    if "presence" in active:
        result["presence"] = losses.presence_loss(
            outputs.presence_logits, targets.presence_logits.float().sigmoid()
        ).mean()
    if "semantic" in active:
        wanted_semantic = targets.semantic_probs.float()
        semantic = resize_mask_logits(outputs.semantic_seg, wanted_semantic.shape)
        result["semantic"] = losses.semantic_loss(semantic, wanted_semantic).mean()
    if "fpn_feature" in active:
        if passed.levels is None or targets.fpn_levels is None:
            raise ValueError("fpn_feature loss is on but student or teacher FPN features are missing")
        per_level = [
            losses.feature_loss(s, t) for s, t in zip(passed.levels, targets.fpn_levels, strict=True)
        ]
        result["fpn_feature"] = torch.stack(per_level).mean(0).mean()
    if "encoder_feature" in active:
        if passed.encoder is None or targets.encoder_memory is None:
            raise ValueError("encoder_feature loss is on but student or teacher encoder features are missing")
        has = targets.has_encoder.to(device).float()
        result["encoder_feature"] = (losses.feature_loss(passed.encoder, targets.encoder_memory) * has).mean()
    if "text_feature" in active:
        if targets.text_features is None:
            raise ValueError("text_feature loss is on but the teacher text features are missing")
        if passed.text is None:
            result["text_feature"] = zero
        else:
            tokens, padding = passed.text
            count = min(tokens.shape[1], targets.text_features.shape[1])
            valid = targets.text_valid[:, :count].to(device) & ~padding[:, :count]
            result["text_feature"] = losses.token_feature_loss(
                tokens[:, :count], targets.text_features[:, :count].to(device), valid
            ).mean()
    if "auxiliary" in active:
        if not outputs.aux_outputs:
            raise ValueError(
                "auxiliary loss is on but the outputs have no earlier decoder layers' predictions "
                "(build the DistillModel with aux=True; a 1-layer decoder has none)"
            )
        per_layer = replace(
            objective,
            weights=replace(weights, **{name: 0.0 for name in ALL_LOSSES if name not in AUX_LOSSES}),
        )
        result["auxiliary"] = sum(
            (
                total_loss(loss_terms(StudentPass(layer), targets, per_layer, anchors), per_layer.weights)
                for layer in outputs.aux_outputs
            ),
            zero,
        )
    return {name: result[name] for name in ALL_LOSSES if name in result}


def total_loss(terms: dict[str, torch.Tensor], weights: LossWeights) -> torch.Tensor:
    """The weighted sum of the terms: the one place loss weights are applied."""
    return sum(getattr(weights, name) * value for name, value in terms.items())
