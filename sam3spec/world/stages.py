"""The concept-world versions of the distillation stages: the tiny student at the world's 160 px,
with a schedule sized to finish on a 2-core CPU in minutes (``phase1-world``, ``phase2-world``,
``stage3-world``, ``video-world``). Each is :func:`concept_world` of one of the plan's stages
(:mod:`sam3spec.distill.stages`) plus the changes the comments above it measured; every figure is
in docs/DECISIONS.md "Concept-world student training" with the command that reproduces it.
"""

from __future__ import annotations

from dataclasses import replace

from sam3spec.config import TINY_PRESET
from sam3spec.data.prompts import PHASE1_PROMPTS, PromptConfig
from sam3spec.distill.registry import register_stage
from sam3spec.distill.stages import PHASE1, PHASE2, STAGE3, StageConfig
from sam3spec.video.stage import VIDEO, VideoStage


def concept_world(stage: StageConfig, **changes) -> StageConfig:
    """The concept-world version of a stage: tiny student, 160 px, CPU-sized schedule."""
    defaults = dict(
        name=f"{stage.name}-world",
        student=TINY_PRESET,
        resolution=160,
        # The DETR encoder on the stride-8 level: 20 x 20 tokens at 160 px, the world teacher's grid.
        # At the preset's stride 16 (10 x 10) the world's small objects (under 10 px) are
        # sub-token: held-out mIoU / presence F1 0.323 / 0.819 there vs 0.430 / 0.879 at stride 8,
        # same schedule and teacher (docs/DECISIONS.md "Encoder level").
        encoder_level=1,
        # Each query's mask logits fall off outside its own box: the tiny student's pixel embedding
        # carries little position, and its masks leaked onto look-alike objects elsewhere. Held-out
        # mIoU on the pipeline's 100 images, same teacher: 0.492 without, 0.543 at 30, 0.535 at 100
        # (docs/DECISIONS.md "Mask box prior").
        mask_box_prior=30.0,
        mask_target_scale=2,
        batch_size=12,
        prompts_per_image=4,
        grad_accum=1,
        warmup_steps=100,
        learning_rate=stage.learning_rate * 20,
        prompt_draws=1,
        # Precise BN over 12-image forwards (4 micro-batches of 3 images each). Phase 2 from two
        # Phase 1 checkpoints: presence F1 0.896 / 0.886 -> 0.901 / 0.896, cgF1 30.4 / 29.2 -> 30.5 /
        # 30.7, mIoU unchanged (0.664 / 0.668 -> 0.668 / 0.666; docs/DECISIONS.md "BatchNorm").
        precise_bn_merge=4,
        checkpoint_every=200,
        log_every=20,
        visualize_every=200,
        init_from=None if stage.init_from is None else f"{stage.init_from}-world",
    )
    defaults.update(changes)
    return replace(stage, **defaults)


# The concept world's Phase 1 differs from the plan's in two ways, both because the tiny student starts
# from random weights (the plan's inherits ImageNet RepViT and MobileCLIP) and the held-out metric is
# text-prompted (PCS): the text-feature loss is on (its colour words' features otherwise stay alike:
# mean cosine between "red" ... "white" tokens 0.76 after Phase 1, 0.41 with it), and 80% of the
# prompts are text (presence of positive vs negative phrases after 1,600 Phase 1 steps on a
# 1,000-image world: 0.62 vs 0.54 at 80% text, 0.55 vs 0.50 at 50%). The encoder-feature loss x5 in
# Phase 1 (the teacher's fused encoder memory carries the concept evidence; held-out mIoU 0.199 ->
# 0.323, presence F1 0.783 -> 0.819), and Phase 2 keeps Phase 1's text-feature loss and text prompts
# (at the plan's 30% text the presence of positive phrases fell from 0.64 to 0.49 and mIoU stayed ~0;
# docs/DECISIONS.md "Text").
WORLD_TEXT_PROMPTS = replace(PHASE1_PROMPTS, text=0.8, point=0.1, box=0.1)
# DETR's auxiliary losses at half weight on the tiny student's first decoder layer (1-thread pipeline,
# 100 held-out images, two seeds: mIoU 0.580 -> 0.601 and 0.565 -> 0.603, cgF1 21.0 -> 26.6 and
# 17.5 -> 24.3; at weight 1: 0.577; docs/DECISIONS.md "Auxiliary decoder losses").
# Phase 1's BatchNorm statistics re-estimated and frozen after its first 2 of 5 epochs
# (see PHASE2_WORLD below for why; from random weights they must move first). Phase 1 + Phase 2, 1
# thread, 100 held-out images, seeds 0 / 1: mIoU 0.651 / 0.635 -> 0.660 / 0.650, presence F1 0.892 /
# 0.882 -> 0.895 / 0.879, cgF1 29.6 / 26.8 -> 31.1 / 30.2 (docs/DECISIONS.md "BatchNorm").
PHASE1_WORLD = concept_world(
    PHASE1,
    epochs=5,
    losses=replace(PHASE1.losses, text_feature=1.0, encoder_feature=5.0, auxiliary=0.5),
    prompts=WORLD_TEXT_PROMPTS,
    freeze_batch_norm=True,
    freeze_batch_norm_epoch=2,
    precise_bn_batches=100,
)
# Phase 2 with its BatchNorm statistics frozen, and a moving average of the weights. A
# micro-batch holds 3 images (12 prompts), so in training mode each image was normalised with the
# statistics of 3 images, which the evaluated model (running averages) never sees. Statistics
# re-estimated on the Phase 1 weights over 100 micro-batches (precise BN) and frozen, weights
# averaged (EMA 0.995): held-out mIoU (Phase 2 only from each seed's Phase 1 checkpoint, 1 thread,
# 100 images, seeds 0 / 1) 0.641 / 0.597 -> 0.651 / 0.635, presence F1 0.898 / 0.878 -> 0.892 /
# 0.882, cgF1 31.9 / 25.1 -> 29.6 / 26.8; frozen statistics alone 0.650 / 0.610, EMA alone 0.643 /
# 0.616 (docs/DECISIONS.md "BatchNorm").
# Phase 2 on text prompts only (Phase 1 still distils points and boxes). The held-out
# metric is text-prompted and the tiny student's capacity is shared: from two Phase 1 checkpoints
# (1 thread, 100 images) mIoU 0.660 / 0.650 -> 0.664 / 0.668, presence F1 0.895 / 0.879 -> 0.896 /
# 0.886, cgF1 31.1 / 30.2 -> 30.4 / 29.2; 10% fewer seconds (docs/DECISIONS.md "Text prompts in Phase 2").
PHASE2_WORLD = concept_world(
    PHASE2,
    epochs=2,
    losses=replace(PHASE2.losses, text_feature=1.0, auxiliary=0.5),
    prompts=PromptConfig(text=1.0, point=0.0, box=0.0),
    freeze_batch_norm=True,
    precise_bn_batches=100,
    ema_decay=0.995,
)
# Stage 3 too, from the world's Phase 2 (whose statistics are frozen): 1 thread, 120 held-out images,
# from one Phase 2 checkpoint (mIoU 0.643): training-mode BatchNorm 0.649, frozen statistics 0.684,
# frozen + EMA 0.692 (docs/DECISIONS.md "BatchNorm").
# 2 epochs. From a text-only Phase 2 one epoch's gain is inside the spread of
# the data order: over 2 Phase 2 checkpoints x 3 stage seeds (1 thread, 120 held-out images) cgF1
# -0.31 .. +1.77 (mean +0.34, above 0 in 3 of 6) and hard-negative IL_MCC -0.009 .. +0.058 (mean
# +0.011, 3 of 6); with 2 epochs cgF1 -0.70 .. +1.71 (mean +0.72, 5 of 6) and IL_MCC -0.0004 ..
# +0.028 (mean +0.012, 5 of 6), at mIoU -0.004 / -0.017 (mean per checkpoint; docs/DECISIONS.md
# "Stage 3").
STAGE3_WORLD = concept_world(
    STAGE3, epochs=2, warmup_steps=20, freeze_batch_norm=True, precise_bn_batches=100, ema_decay=0.995
)
VIDEO_WORLD = VideoStage(
    concept_world(
        VIDEO.stage,
        batch_size=8,
        prompts_per_image=1,
        learning_rate=1e-3,
        warmup_steps=20,
        epochs=6,
        checkpoint_every=100,
        visualize_every=0,
    ),
    context_source="student",
    prompt="phrase",  # the world's objects have phrases (world.json); J&F is measured with them
)

WORLD_STAGES = (PHASE1_WORLD, PHASE2_WORLD, STAGE3_WORLD)
for _stage in (*WORLD_STAGES, VIDEO_WORLD):
    register_stage(_stage)
