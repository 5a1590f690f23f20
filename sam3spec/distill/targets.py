"""What the student learns from: the teacher's outputs (or ground truth) on the student's grid.

:class:`Targets` holds, per sample of a batch, the teacher's queries (score logits, boxes, mask
probabilities, a validity mask), presence, semantic map and, for feature alignment, its FPN levels
and DETR-encoder output, all already resized to the student's grid (:mod:`sam3spec.distill.adapters`);
masks and the semantic map at the geometry's ``mask_target_size`` (the student's mask grid, or a
multiple of it: the student's logits are then upsampled in the loss, see ``distill/task.py``).
:class:`TeacherTargets` computes them from any :class:`~sam3spec.teacher.protocol.Teacher`;
:func:`ground_truth_targets` builds the same structure from labels (probabilities 0 / 1), so one
objective serves distillation and label-trained stages.

Point prompts: SAM 3's detector takes no points; the HF adapter routes them to the point tracker,
which returns 3 nested candidate masks scored by predicted IoU. Distilling all three would teach
the student duplicates, so only the best-scoring candidate is kept as a (one-instance) target.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import torch
import torch.nn.functional as F

from sam3spec.distill.adapters import StudentGeometry, encoder_grid, resize_map, tokens_to_map
from sam3spec.models.outputs import Sam3Outputs
from sam3spec.teacher.tokenizer import CONTEXT_LENGTH as TEXT_TOKENS

# Teacher text targets are padded / cut to SAM 3's text context (TEXT_TOKENS).

PAD_LOGIT = -20.0
GROUND_TRUTH_LOGIT = 20.0


@dataclass
class Targets:
    """Distillation targets of ``B`` samples (``Q`` teacher queries, masks at the geometry's
    ``mask_target_size``).

    Attributes:
        logits: ``[B, Q]`` query score logits.
        boxes_xyxy: ``[B, Q, 4]`` normalised xyxy.
        mask_probs: ``[B, Q, h, w]`` mask probabilities (float16 in caches).
        valid: ``[B, Q]`` bool; False for padding (and for discarded point candidates).
        presence_logits: ``[B, 1]``.
        semantic_probs: ``[B, 1, h, w]``.
        fpn_levels: per distilled level ``[B, Ct, H_l, W_l]`` on the student's grids, or None.
        encoder_memory: ``[B, Ct, h_e, w_e]`` on the student's encoder grid, or None.
        has_encoder: ``[B]`` bool, samples whose prompt went through the detector (text / box)
            and so have encoder targets.
        text_features: ``[B, TEXT_TOKENS, Ct]`` the teacher's text tokens, or None.
        text_valid: ``[B, TEXT_TOKENS]`` bool, real tokens of text prompts (False for the rows of
            point / box prompts, whose teacher text is a placeholder).
    """

    logits: torch.Tensor
    boxes_xyxy: torch.Tensor
    mask_probs: torch.Tensor
    valid: torch.Tensor
    presence_logits: torch.Tensor
    semantic_probs: torch.Tensor
    fpn_levels: list[torch.Tensor] | None = None
    encoder_memory: torch.Tensor | None = None
    has_encoder: torch.Tensor | None = None
    text_features: torch.Tensor | None = None
    text_valid: torch.Tensor | None = None

    @property
    def batch_size(self) -> int:
        return int(self.logits.shape[0])

    def map(self, function) -> Targets:
        """Apply ``function`` to every tensor (lists element-wise)."""
        values = {}
        for item in fields(self):
            value = getattr(self, item.name)
            if isinstance(value, list):
                value = [function(level) for level in value]
            elif value is not None:
                value = function(value)
            values[item.name] = value
        return Targets(**values)

    def to(self, device: torch.device | str) -> Targets:
        return self.map(lambda tensor: tensor.to(device))

    def select(self, index: torch.Tensor) -> Targets:
        """Rows ``index`` (``[N]`` long)."""
        return self.map(lambda tensor: tensor.index_select(0, index.to(tensor.device)))

    @staticmethod
    def cat(parts: list[Targets]) -> Targets:
        """Concatenate along the batch (query counts padded to the largest)."""
        queries = max(part.logits.shape[1] for part in parts)
        parts = [pad_queries(part, queries) for part in parts]
        values = {}
        for item in fields(Targets):
            items = [getattr(part, item.name) for part in parts]
            if any(value is None for value in items):
                values[item.name] = None
            elif isinstance(items[0], list):
                values[item.name] = [torch.cat(level) for level in zip(*items, strict=True)]
            else:
                values[item.name] = torch.cat(items)
        return Targets(**values)


def pad_queries(targets: Targets, queries: int) -> Targets:
    """Pad the query dimension to ``queries`` with invalid entries."""
    extra = queries - targets.logits.shape[1]
    if extra <= 0:
        return targets
    batch = targets.batch_size
    height, width = targets.mask_probs.shape[-2:]
    return Targets(
        logits=torch.cat([targets.logits, targets.logits.new_full((batch, extra), PAD_LOGIT)], 1),
        boxes_xyxy=torch.cat([targets.boxes_xyxy, targets.boxes_xyxy.new_zeros(batch, extra, 4)], 1),
        mask_probs=torch.cat(
            [targets.mask_probs, targets.mask_probs.new_zeros(batch, extra, height, width)], 1
        ),
        valid=torch.cat([targets.valid, targets.valid.new_zeros(batch, extra)], 1),
        presence_logits=targets.presence_logits,
        semantic_probs=targets.semantic_probs,
        fpn_levels=targets.fpn_levels,
        encoder_memory=targets.encoder_memory,
        has_encoder=targets.has_encoder,
        text_features=targets.text_features,
        text_valid=targets.text_valid,
    )


def from_outputs(
    outputs: Sam3Outputs,
    geometry: StudentGeometry,
    fpn_levels: list[torch.Tensor] | None = None,
    level_indices: tuple[int, ...] = (0, 1, 2, 3),
    best_candidate_only: bool = False,
    text_prompt: bool = False,
) -> Targets:
    """Turn teacher outputs (any resolution) into :class:`Targets` on the student's grid.

    Args:
        outputs: teacher :class:`Sam3Outputs` (intermediates used for the encoder target).
        geometry: the student's grid sizes.
        fpn_levels: the teacher's FPN levels for these samples, or None (no FPN target).
        level_indices: which levels are distilled (level ``l`` -> student level ``l``).
        best_candidate_only: keep only the highest-logit query (point-tracker candidates).
        text_prompt: the samples are text prompts (their text tokens become a target; with
            features on, other prompts get an all-invalid text row).
    """
    logits = outputs.pred_logits.float()
    valid = torch.ones_like(logits, dtype=torch.bool)
    if best_candidate_only:
        valid = F.one_hot(logits.argmax(1), logits.shape[1]).bool()
        logits = torch.where(valid, logits, torch.full_like(logits, PAD_LOGIT))
    masks = resize_map(outputs.pred_masks.float().sigmoid(), geometry.mask_target_size)
    semantic = resize_map(outputs.semantic_seg.float().sigmoid(), geometry.mask_target_size)
    levels = None
    if fpn_levels is not None:
        sizes = geometry.level_sizes
        levels = [resize_map(fpn_levels[level].float(), sizes[level]) for level in level_indices]
    encoder = None
    has_encoder = torch.zeros(logits.shape[0], dtype=torch.bool)
    intermediates = outputs.intermediates
    if intermediates is not None and intermediates.encoder_memory is not None and fpn_levels is not None:
        memory = intermediates.encoder_memory.float()
        grid = encoder_grid(memory.shape[1], [level.shape[-2:] for level in fpn_levels])
        encoder = resize_map(tokens_to_map(memory, grid), geometry.encoder_size)
        has_encoder = torch.ones(logits.shape[0], dtype=torch.bool)
    elif fpn_levels is not None:  # features on, but this prompt (points) has no encoder target
        encoder = logits.new_zeros(logits.shape[0], fpn_levels[0].shape[1], *geometry.encoder_size)
    text, text_valid = None, None
    if fpn_levels is not None:  # SAM 3's text width is its FPN width
        text = logits.new_zeros(logits.shape[0], TEXT_TOKENS, fpn_levels[0].shape[1])
        text_valid = torch.zeros(logits.shape[0], TEXT_TOKENS, dtype=torch.bool, device=logits.device)
        if text_prompt and intermediates is not None and intermediates.text_features is not None:
            count = min(TEXT_TOKENS, intermediates.text_features.shape[1])
            text[:, :count] = intermediates.text_features[:, :count].float()
            text_valid[:, :count] = intermediates.text_valid[:, :count]
    return Targets(
        logits=logits,
        boxes_xyxy=outputs.pred_boxes.float(),
        mask_probs=masks,
        valid=valid,
        presence_logits=outputs.presence_logits.float(),
        semantic_probs=semantic,
        fpn_levels=levels,
        encoder_memory=encoder,
        has_encoder=has_encoder.to(logits.device),
        text_features=text,
        text_valid=text_valid,
    )


class TeacherTargets:
    """Compute :class:`Targets` for a student batch with a teacher (no gradient).

    The batch must carry ``teacher_image`` (``[3, S, S]`` uint8 per sample, the same letterboxed
    view the student sees, at the teacher's size: :class:`~sam3spec.distill.data.DistillTransform`)
    and the prompt keys of :class:`~sam3spec.data.prompts.PromptSampler`. Each distinct image is
    encoded once; text and box prompts go through the detector (with intermediates when features
    are distilled), points through the tracker.

    Args:
        teacher: any :class:`~sam3spec.teacher.protocol.Teacher`.
        geometry: the student's grid sizes.
        features: also compute FPN and encoder targets (Phase 1).
        level_indices: distilled FPN levels.
    """

    def __init__(
        self,
        teacher,
        geometry: StudentGeometry,
        features: bool,
        level_indices: tuple[int, ...] = (0, 1, 2, 3),
    ) -> None:
        self.teacher = teacher
        self.geometry = geometry
        self.features = features
        self.level_indices = level_indices

    @torch.no_grad()
    def __call__(self, batch: dict) -> Targets:
        keys = [image_key(batch, index) for index in range(batch["batch_size"])]
        unique = list(dict.fromkeys(keys))
        pixels = torch.stack([batch["teacher_image"][keys.index(key)] for key in unique])
        embeddings = self.teacher.encode_image(self.teacher.preprocess(pixels))
        owner = torch.tensor([unique.index(key) for key in keys])
        # One teacher call per group of prompts of the same kind and size (batched).
        groups: dict[tuple[str, int], list[int]] = {}
        for index, kind in enumerate(batch["prompt_type"]):
            size = {"point": len(batch["points_xy"][index]), "box": len(batch["prompt_boxes_xyxy"][index])}
            groups.setdefault((kind, size.get(kind, 0)), []).append(index)
        parts: dict[int, Targets] = {}
        for (kind, _), members in groups.items():
            rows = owner[members]
            group = embeddings.select(rows)
            features = (
                [level.index_select(0, rows) for level in embeddings.fpn_levels] if self.features else None
            )
            if kind == "point":
                outputs = self.teacher.predict(
                    group,
                    points=torch.stack([batch["points_xy"][i] for i in members]),
                    point_labels=torch.stack([batch["point_labels"][i] for i in members]),
                )
            elif kind == "box":
                outputs = self.teacher.predict(
                    group,
                    boxes=torch.stack([batch["prompt_boxes_xyxy"][i] for i in members]),
                    box_labels=torch.stack([batch["prompt_box_labels"][i] for i in members]),
                    return_intermediates=self.features,
                )
            else:
                outputs = self.teacher.predict(
                    group, text=[batch["text"][i] for i in members], return_intermediates=self.features
                )
            targets = from_outputs(
                outputs,
                self.geometry,
                features,
                self.level_indices,
                best_candidate_only=kind == "point",
                text_prompt=kind == "text",
            ).to("cpu")
            for position, index in enumerate(members):
                parts[index] = targets.select(torch.tensor([position]))
        return Targets.cat([parts[index] for index in range(len(parts))])


def image_key(batch: dict, index: int) -> str:
    """Identity of the image of sample ``index`` (SA-Co pairs of one image share it)."""
    for key in ("file_name", "image_id"):
        if key in batch and batch[key][index] is not None:
            return str(batch[key][index])
    return str(index)


def ground_truth_targets(batch: dict, geometry: StudentGeometry) -> Targets:
    """:class:`Targets` from labels: each target instance a query with probability 1.

    Reads ``target_masks`` (``[K, H, W]`` bool per sample) and ``target_boxes_xyxy``; presence is
    1 when the sample has a target. No feature targets.
    """
    count = max(1, max(len(masks) for masks in batch["target_masks"]))
    height, width = geometry.mask_target_size
    rows = []
    for masks, boxes in zip(batch["target_masks"], batch["target_boxes_xyxy"], strict=True):
        number = len(masks)
        probs = torch.zeros(count, height, width)
        if number:
            probs[:number] = resize_map(masks[None].float(), (height, width))[0].clamp(0, 1)
        logits = torch.full((count,), PAD_LOGIT)
        logits[:number] = GROUND_TRUTH_LOGIT
        box = torch.zeros(count, 4)
        box[:number] = boxes.float()
        valid = torch.zeros(count, dtype=torch.bool)
        valid[:number] = True
        presence = torch.tensor([[GROUND_TRUTH_LOGIT if number else -GROUND_TRUTH_LOGIT]])
        semantic = probs[:number].amax(0, keepdim=True) if number else torch.zeros(1, height, width)
        rows.append(Targets(logits[None], box[None], probs[None], valid[None], presence, semantic[None]))
    return Targets.cat(rows)
