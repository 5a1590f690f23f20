"""Distillation stages as data: what trains, which losses, which prompts, which schedule.

A stage is a frozen :class:`StageConfig`; the trainer has no stage-specific branches. This module
holds the plan's stages (docs/PLAN.md 4: ``phase1``, ``phase2``, ``stage3``: seed student, SA-1B scale) and the
helpers every stage uses (what trains, the learning-rate schedule); their concept-world versions
are in :mod:`sam3spec.world.stages`, the by-name lookup in :mod:`sam3spec.distill.registry`.
Any field can be overridden (:func:`sam3spec.config.override`, ``--set key=value`` on the command
line); the resolved config is saved in the run directory.
"""

from __future__ import annotations

import fnmatch
import math
from dataclasses import dataclass, field

from torch import nn

from sam3spec.config import SEED_PRESET, StudentConfig, get_preset, override
from sam3spec.data.prompts import PHASE1_PROMPTS, PHASE2_PROMPTS, PromptConfig
from sam3spec.distill.matcher import MatchWeights

FEATURE_LOSSES = ("fpn_feature", "encoder_feature", "text_feature")
OUTPUT_LOSSES = ("mask_bce", "mask_dice", "box_l1", "box_giou", "logit", "iou_token", "presence", "semantic")
# Terms computed on every earlier decoder layer by the ``auxiliary`` loss.
AUX_LOSSES = ("mask_bce", "mask_dice", "box_l1", "box_giou", "logit", "iou_token", "presence")
ALL_LOSSES = OUTPUT_LOSSES + FEATURE_LOSSES + ("auxiliary",)
TARGETS = ("teacher", "ground_truth", "self")


@dataclass(frozen=True)
class LossWeights:
    """Weight of each loss term (0 turns a term off; combined in :func:`sam3spec.distill.task.total_loss`).

    Attributes:
        mask_bce: mask binary cross-entropy (matched foreground queries).
        mask_dice: mask Dice (same queries).
        box_l1: L1 of normalised xyxy boxes.
        box_giou: 1 - generalised IoU of the boxes.
        logit: query score distillation (every student query; unmatched ones towards 0).
        iou_token: IoU head vs the true IoU of the student's mask.
        presence: presence score distillation.
        semantic: semantic (union) map.
        fpn_feature: FPN feature alignment (mean over the distilled levels).
        encoder_feature: DETR-encoder output alignment.
        text_feature: text-token alignment (student prompt tokens vs the teacher's, per token). Off
            in the plan's stages (the student's MobileCLIP text tower is pretrained); on in the
            concept world's Phase 1, whose student text tower starts from random weights.
        auxiliary: DETR's auxiliary losses: the matched output terms (logit, mask, box, IoU token)
            and presence on every earlier decoder layer's predictions, each layer matched on its own
            and weighted with this config's weights, summed over the layers (0: off).
    """

    mask_bce: float = 5.0
    mask_dice: float = 5.0
    box_l1: float = 5.0
    box_giou: float = 2.0
    logit: float = 2.0
    iou_token: float = 1.0
    presence: float = 2.0
    semantic: float = 1.0
    fpn_feature: float = 1.0
    encoder_feature: float = 1.0
    text_feature: float = 0.0
    auxiliary: float = 0.0

    def active(self) -> list[str]:
        return [name for name in ALL_LOSSES if getattr(self, name) != 0]

    @property
    def uses_features(self) -> bool:
        return any(getattr(self, name) != 0 for name in FEATURE_LOSSES)


@dataclass(frozen=True)
class StageConfig:
    """One distillation stage.

    Attributes:
        name: stage name (``phase1``, ``phase2``, ...).
        student: student preset trained.
        trainable: ``fnmatch`` patterns of parameter names that train (``"*"``: all) ...
        frozen: ... minus these (the video memory trains in its own stage).
        losses: loss weights.
        matcher: query matching cost and solver.
        prompts: prompt mix (text / point / box ratios).
        targets: ``"teacher"`` (distillation), ``"ground_truth"`` (labels, same losses) or
            ``"self"`` (the student's own outputs, from a frozen copy made before training: QAT's
            self-distillation, :mod:`sam3spec.quant.qat`).
        init_from: stage whose final weights start this one (loaded with ``strict=False`` and
            reported), or None for a fresh student.
        resolution: student input side (pixels).
        teacher_resolution: the teacher's input side (pixels; its RoPE grid is recomputed for it,
            :func:`~sam3spec.teacher.loading.load_teacher`), or None: the teacher's own (SAM 3:
            1008). A teacher cache records it and a stage refuses a cache made at another
            (:mod:`sam3spec.distill.store`).
        encoder_level: FPN level the student's DETR encoder reads, overriding the preset's
            (None keeps it; see :meth:`student_config`).
        mask_box_prior: the student's mask box prior (``StudentConfig.mask_box_prior``: mask logits
            lowered by this much per unit of normalised distance outside each query's own box),
            overriding the preset's (None keeps it). The concept-world stages use 30 (see
            :meth:`student_config`).
        mask_target_scale: mask and semantic targets are kept at this multiple of the student's
            stride-4 grid, and the student's logits are upsampled bilinearly to them by the model
            itself (``StudentConfig.mask_upsample``, set to this by :meth:`student_config`), so the
            masks that are scored, predicted and exported are the ones trained (1: the stride-4
            grid). The concept-world stages use 2, the world teacher's 80 x 80 masks: the 40 x 40
            logits then learn an upsampling whose threshold follows the finer mask (see
            ``distill/task.py``).
        epochs: passes over the data.
        batch_size: samples per micro-batch per process (a multiple of ``prompts_per_image``).
        prompts_per_image: samples (prompts) of one image placed together in a micro-batch; they
            share the student's image encoder pass (the image encoder is ~55% of a tiny-student
            step at 160 px).
        grad_accum: micro-batches per optimizer step.
        learning_rate: peak AdamW learning rate.
        warmup_steps: linear warm-up (optimizer steps).
        min_lr_ratio: the cosine decays to ``learning_rate * min_lr_ratio``.
        weight_decay: AdamW weight decay.
        clip_norm: gradient-norm clipping (0: off).
        ema_decay: exponential moving average of the weights (0: off); the final weights are the EMA.
        precise_bn_batches: every BatchNorm's running statistics are re-estimated over this many
            of the stage's micro-batches (precise BN, ``distill/precise_bn.py``; 0: off): on the
            final weights after training, or, with ``freeze_batch_norm``, on the weights of the
            moment the statistics are frozen.
        precise_bn_merge: micro-batches concatenated into one forward of that pass: the statistics
            are averaged over batches this many times larger (a BatchNorm's batch variance over a
            few images misses most of the spread between images).
        freeze_batch_norm: from epoch ``freeze_batch_norm_epoch`` on, BatchNorm layers normalise
            with their running statistics and never update them (their scale and shift still
            train), so training computes the function that is evaluated and exported. The
            concept-world stages use it (see there).
        freeze_batch_norm_epoch: the epoch at whose start the statistics are frozen (re-estimated
            first when ``precise_bn_batches``): 0 for a stage that starts from a trained checkpoint,
            later for one that starts from random weights (whose statistics must move first); a
            run that ends earlier (``--set epochs=1``, ``--debug``) never freezes them.
        foreground_threshold: a matched teacher query teaches mask / box / IoU when its probability
            ``sigmoid(logit)`` is at least this.
        logit_positive_weight: weight of the query-score loss of positive queries (target
            probability >= 0.5; SAM 3 uses a positive weight): with 1 or 2 positives among the
            student's queries an unweighted BCE keeps every score low (measured on the concept
            world with label targets: the best query of a positive pair stayed at probability
            0.06 after 2,900 steps).
        fpn_levels: FPN levels distilled by the feature loss.
        prompt_draws: prompt draws cached per sample when teacher targets are cached (epoch
            ``e`` uses draw ``e % prompt_draws``); online targets draw new prompts every epoch.
        checkpoint_every: optimizer steps between checkpoints.
        keep_last_n: checkpoints kept.
        log_every: optimizer steps between TensorBoard / progress updates.
        visualize_every: optimizer steps between TensorBoard mask images (0: off).
        fresh_text_embedding_std: a student trained from scratch (no ``init`` checkpoint, no
            pretrained text tower) gets its token embeddings redrawn with this std (0: keep
            open_clip's 0.02). At 0.02 the position embeddings dominate the text features (pooled
            features of different phrases have cosine ~0.95 at initialisation in the tiny student,
            ~0.77 at std 1) and the student learns text-independent priors first (the concept-world
            teacher found the same, ``world/teacher/train.py``).
        amp: ``"auto"`` (bf16 on CUDA, fp16 + grad scaler on MPS, off on CPU), ``"off"``,
            ``"bf16"``, ``"fp16"``.
        seed: data order, prompts and initialisation.
        num_workers: data loader processes.
    """

    name: str = "phase1"
    student: str = SEED_PRESET
    trainable: tuple[str, ...] = ("*",)
    frozen: tuple[str, ...] = ("memory_resampler.*", "memory_attention.*")
    losses: LossWeights = field(default_factory=LossWeights)
    matcher: MatchWeights = field(default_factory=MatchWeights)
    prompts: PromptConfig = field(default_factory=lambda: PHASE1_PROMPTS)
    targets: str = "teacher"
    init_from: str | None = None
    resolution: int = 504
    teacher_resolution: int | None = None
    encoder_level: int | None = None
    mask_box_prior: float | None = None
    mask_target_scale: int = 1
    epochs: int = 1
    batch_size: int = 4
    prompts_per_image: int = 1
    grad_accum: int = 2
    learning_rate: float = 1e-4
    warmup_steps: int = 500
    min_lr_ratio: float = 0.01
    weight_decay: float = 0.01
    clip_norm: float = 1.0
    ema_decay: float = 0.0
    precise_bn_batches: int = 0
    precise_bn_merge: int = 1
    freeze_batch_norm: bool = False
    freeze_batch_norm_epoch: int = 0
    foreground_threshold: float = 0.5
    logit_positive_weight: float = 10.0
    fpn_levels: tuple[int, ...] = (0, 1, 2, 3)
    prompt_draws: int = 1
    checkpoint_every: int = 500
    keep_last_n: int = 3
    log_every: int = 10
    visualize_every: int = 0
    fresh_text_embedding_std: float = 1.0
    amp: str = "auto"
    seed: int = 0
    num_workers: int = 0

    def student_config(self) -> StudentConfig:
        """The :class:`~sam3spec.config.StudentConfig` a fresh student of this stage is built from:
        the ``student`` preset at ``resolution`` (and ``encoder_level`` / ``mask_box_prior`` when
        set), its masks upsampled in the model to the ``mask_target_scale`` grid they are trained on."""
        changes: dict = {"image_size": self.resolution, "mask_upsample": self.mask_target_scale}
        if self.encoder_level is not None:
            changes["detr.encoder_level"] = self.encoder_level
        if self.mask_box_prior is not None:
            changes["mask_box_prior"] = self.mask_box_prior
        return override(get_preset(self.student), changes)

    def __post_init__(self) -> None:
        problems = []
        if self.targets not in TARGETS:
            problems.append(f"targets must be one of {', '.join(TARGETS)}, got {self.targets!r}")
        if self.amp not in ("auto", "off", "bf16", "fp16"):
            problems.append(f"amp must be auto/off/bf16/fp16, got {self.amp!r}")
        if self.resolution < 32:
            problems.append(f"resolution must be >= 32, got {self.resolution}")
        if self.teacher_resolution is not None and self.teacher_resolution < 32:
            problems.append(f"teacher_resolution must be >= 32 or None, got {self.teacher_resolution}")
        if self.encoder_level is not None and not 0 <= self.encoder_level <= 3:
            problems.append(f"encoder_level must be 0..3 (stride 4 .. 32) or None, got {self.encoder_level}")
        if self.mask_box_prior is not None and not (
            math.isfinite(self.mask_box_prior) and self.mask_box_prior >= 0
        ):
            problems.append(f"mask_box_prior must be >= 0 or None, got {self.mask_box_prior}")
        if self.precise_bn_merge < 1:
            problems.append(f"precise_bn_merge must be >= 1, got {self.precise_bn_merge}")
        if self.precise_bn_batches < 0:
            problems.append(f"precise_bn_batches must be >= 0, got {self.precise_bn_batches}")
        if self.freeze_batch_norm_epoch < 0:
            problems.append(f"freeze_batch_norm_epoch must be >= 0, got {self.freeze_batch_norm_epoch}")
        if self.mask_target_scale not in (1, 2, 4):
            problems.append(f"mask_target_scale must be 1, 2 or 4, got {self.mask_target_scale}")
        for name in (
            "epochs",
            "batch_size",
            "prompts_per_image",
            "grad_accum",
            "prompt_draws",
            "checkpoint_every",
            "keep_last_n",
        ):
            if getattr(self, name) < 1:
                problems.append(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.prompts_per_image >= 1 and self.batch_size % self.prompts_per_image:
            problems.append(
                f"batch_size {self.batch_size} is not a multiple of prompts_per_image {self.prompts_per_image}"
            )
        if self.targets != "teacher" and self.losses.uses_features:
            problems.append(f"feature losses need a teacher (targets={self.targets!r} has no features)")
        if problems:
            raise ValueError(f"invalid stage {self.name!r}: " + "; ".join(problems))


PHASE1 = StageConfig(name="phase1")
PHASE2 = StageConfig(
    name="phase2",
    losses=LossWeights(fpn_feature=0.0, encoder_feature=0.0),
    prompts=PHASE2_PROMPTS,
    init_from="phase1",
    learning_rate=5e-5,
    epochs=3,
)


# Stage 3, end-to-end promptable concept segmentation (docs/PLAN.md 4.4): everything but the video
# memory trains, on ground-truth labels (SA-Co: phrases with their instances, negatives and hard
# negatives such as "blue circle" when only a red one is present), text prompts only (PCS), the
# presence head emphasised (x2.5: IL_MCC, telling present from absent, is what it must improve).
# Teacher losses instead: ``--set targets=teacher``.
STAGE3 = StageConfig(
    name="stage3",
    losses=LossWeights(fpn_feature=0.0, encoder_feature=0.0, presence=5.0),
    prompts=PromptConfig(text=1.0, point=0.0, box=0.0),
    targets="ground_truth",
    init_from="phase2",
    learning_rate=2e-5,
    epochs=2,
)


def trainable_names(model: nn.Module, stage: StageConfig) -> list[str]:
    """Parameter names matching ``stage.trainable`` and none of ``stage.frozen``."""
    return [
        name
        for name, _ in model.named_parameters()
        if any(fnmatch.fnmatchcase(name, pattern) for pattern in stage.trainable)
        and not any(fnmatch.fnmatchcase(name, pattern) for pattern in stage.frozen)
    ]


def set_trainable(model: nn.Module, stage: StageConfig) -> list[str]:
    """Freeze every parameter except :func:`trainable_names`; returns those names.

    Raises:
        ValueError: when the patterns select nothing.
    """
    names = set(trainable_names(model, stage))
    if not names:
        raise ValueError(
            f"stage {stage.name!r}: trainable {stage.trainable} minus frozen {stage.frozen} selects nothing"
        )
    for name, parameter in model.named_parameters():
        parameter.requires_grad_(name in names)
    return [name for name, _ in model.named_parameters() if name in names]


def learning_rate_factor(step: int, total_steps: int, stage: StageConfig) -> float:
    """Multiplier of ``stage.learning_rate`` at optimizer step ``step`` (0-based).

    Linear warm-up over ``warmup_steps`` (at most ``total_steps``), then a cosine from 1 down to
    ``min_lr_ratio`` at ``total_steps``.
    """
    warmup = min(stage.warmup_steps, max(1, total_steps))
    if step < warmup:
        return (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total_steps - warmup))
    floor = stage.min_lr_ratio
    return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * progress))
