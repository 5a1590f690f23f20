"""Stages are data: the plan's values (docs/PLAN.md 4), overrides, what trains, the schedule."""

from __future__ import annotations

from dataclasses import replace

import pytest

from sam3spec.config import config_from_dict, config_to_dict, override
from sam3spec.data.prompts import PHASE1_PROMPTS, PHASE2_PROMPTS
from sam3spec.distill.registry import get_stage
from sam3spec.distill.stages import (
    FEATURE_LOSSES,
    OUTPUT_LOSSES,
    PHASE1,
    PHASE2,
    STAGE3,
    StageConfig,
    learning_rate_factor,
    set_trainable,
)
from sam3spec.world.stages import STAGE3_WORLD


def test_phase1_is_the_plans_phase1():
    assert (PHASE1.epochs, PHASE1.learning_rate, PHASE1.warmup_steps) == (1, 1e-4, 500)
    assert (PHASE1.batch_size, PHASE1.grad_accum, PHASE1.resolution) == (4, 2, 504)
    assert PHASE1.prompts == PHASE1_PROMPTS
    # all nine (mask = Dice + BCE); the text-feature loss is for students without a pretrained text tower
    assert PHASE1.losses.active() == list(OUTPUT_LOSSES + ("fpn_feature", "encoder_feature"))
    assert "text_feature" in FEATURE_LOSSES and PHASE1.losses.text_feature == 0


def test_phase2_is_the_plans_phase2():
    assert (PHASE2.epochs, PHASE2.learning_rate, PHASE2.init_from) == (3, 5e-5, "phase1")
    assert PHASE2.prompts == PHASE2_PROMPTS
    assert PHASE2.losses.active() == list(OUTPUT_LOSSES)  # feature losses off
    assert not PHASE2.losses.uses_features


def test_world_stages_follow_their_plan_stage():
    world1, world2 = get_stage("phase1-world"), get_stage("phase2-world")
    # the world's phases add the text-feature loss and lean on text prompts (random text tower,
    # text-prompted held-out metric: Phase 2 text only); Phase 1 weighs the encoder memory x5; both
    # add DETR's auxiliary losses at half weight and estimate BatchNorm statistics on 12 images
    assert world1.losses == replace(PHASE1.losses, text_feature=1.0, encoder_feature=5.0, auxiliary=0.5)
    assert world2.losses == replace(PHASE2.losses, text_feature=1.0, auxiliary=0.5)
    assert PHASE1.losses.auxiliary == PHASE2.losses.auxiliary == 0.0
    assert (world1.prompts.text, world1.prompts.point, world1.prompts.box) == (0.8, 0.1, 0.1)
    assert (world2.prompts.text, world2.prompts.point, world2.prompts.box) == (1.0, 0.0, 0.0)
    assert world1.precise_bn_merge == world2.precise_bn_merge == 4 and PHASE1.precise_bn_merge == 1
    with pytest.raises(ValueError, match="precise_bn_merge must be >= 1"):
        replace(world2, precise_bn_merge=0)
    assert world2.init_from == "phase1-world"
    with pytest.raises(KeyError, match="known stages"):
        get_stage("phase9")


def test_stage_round_trips_and_overrides():
    data = config_to_dict(PHASE2)
    assert config_from_dict(data, StageConfig) == PHASE2
    changed = override(PHASE2, {"epochs": 7, "losses.presence": 0.5, "prompts.text": 1.0})
    assert (changed.epochs, changed.losses.presence, changed.prompts.text) == (7, 0.5, 1.0)
    with pytest.raises(KeyError):
        override(PHASE2, {"no_such_field": 1})


def test_invalid_stages_are_rejected():
    with pytest.raises(ValueError, match="targets"):
        StageConfig(targets="oracle")
    with pytest.raises(ValueError, match="feature losses need a teacher"):
        StageConfig(targets="ground_truth")
    with pytest.raises(ValueError, match="feature losses need a teacher"):
        StageConfig(targets="self")
    assert StageConfig(targets="self", losses=PHASE2.losses).targets == "self"  # QAT's self-distillation


def test_one_registry_holds_image_and_video_stages():
    from sam3spec.distill.tasks import ImageStage, StageKind, as_kind
    from sam3spec.video.stage import VIDEO, VideoStage

    assert get_stage("video") is VIDEO and isinstance(get_stage("video-world"), VideoStage)
    assert isinstance(VIDEO, StageKind) and VIDEO.name == VIDEO.stage.name == "video"
    assert as_kind(PHASE1) == ImageStage(PHASE1) and as_kind(VIDEO) is VIDEO
    assert VIDEO.describe() == {
        "context_frames": 8,
        "context_source": "teacher_cache",
        "samples_per_video": 16,
        "prompt": "box",
    }
    assert ImageStage(PHASE1).describe() == {}
    with pytest.raises(ValueError, match="already registered"):
        from sam3spec.distill.registry import register_stage

        register_stage(replace(VIDEO, samples_per_video=3))


def test_set_trainable_patterns(tiny_student):
    names = set_trainable(tiny_student, PHASE1)
    assert names and not any(n.startswith(("memory_resampler.", "memory_attention.")) for n in names)
    frozen = {n for n, p in tiny_student.named_parameters() if not p.requires_grad}
    assert frozen and all(n.startswith(("memory_resampler.", "memory_attention.")) for n in frozen)
    only_heads = StageConfig(trainable=("iou_head.*", "scoring.*"), frozen=())
    assert {n.split(".")[0] for n in set_trainable(tiny_student, only_heads)} == {"iou_head", "scoring"}
    with pytest.raises(ValueError, match="selects nothing"):
        set_trainable(tiny_student, StageConfig(trainable=("nothing.*",)))


def test_warmup_then_cosine():
    stage = StageConfig(warmup_steps=10, min_lr_ratio=0.1)
    factors = [learning_rate_factor(step, 110, stage) for step in range(110)]
    assert factors[0] == pytest.approx(0.1) and factors[9] == pytest.approx(1.0)
    assert factors[10] == pytest.approx(1.0)
    assert factors[60] == pytest.approx(0.1 + 0.9 * 0.5, abs=1e-6)  # half-way through the cosine
    assert learning_rate_factor(110, 110, stage) == pytest.approx(0.1)
    assert all(a >= b for a, b in zip(factors[10:], factors[11:], strict=False))


def test_stage3_is_end_to_end_pcs_on_labels_from_phase2():
    assert get_stage("stage3-world") is STAGE3_WORLD and STAGE3_WORLD.init_from == "phase2-world"
    assert (STAGE3_WORLD.epochs, STAGE3_WORLD.ema_decay, STAGE3_WORLD.freeze_batch_norm) == (2, 0.995, True)
    assert STAGE3.targets == "ground_truth" and STAGE3.init_from == "phase2"
    assert STAGE3.trainable == ("*",) and STAGE3.losses.presence > PHASE2.losses.presence
    assert (STAGE3.prompts.text, STAGE3.prompts.point, STAGE3.prompts.box) == (1.0, 0.0, 0.0)
    assert not STAGE3.losses.uses_features


def test_world_stages_read_the_stride_8_level():
    from sam3spec.config import TINY_PRESET, get_preset

    for name in ("phase1-world", "phase2-world", "stage3-world"):
        config = get_stage(name).student_config()
        assert (config.detr.encoder_level, config.image_size) == (1, 160)
    assert get_preset(TINY_PRESET).detr.encoder_level == 2  # the preset itself is unchanged
    assert get_stage("phase1").student_config().detr.encoder_level == 2  # the plan's stages keep the preset's
    with pytest.raises(ValueError, match="encoder_level must be 0..3"):
        replace(get_stage("phase1"), encoder_level=4)


def test_world_stages_train_masks_against_the_teachers_resolution():

    for name in ("phase1-world", "phase2-world", "stage3-world"):
        assert get_stage(name).mask_target_scale == 2  # 80 x 80 targets for 40 x 40 student masks
    assert get_stage("phase1").mask_target_scale == 1
    with pytest.raises(ValueError, match="mask_target_scale must be 1, 2 or 4"):
        replace(get_stage("phase1"), mask_target_scale=3)


def test_world_stages_build_students_with_the_mask_box_prior_and_masks_at_the_target_grid():
    from sam3spec.models.build import build_student

    for name in ("phase1-world", "phase2-world", "stage3-world"):
        config = get_stage(name).student_config()
        assert config.mask_box_prior == 30.0 and config.detr.encoder_level == 1
        assert config.mask_upsample == get_stage(name).mask_target_scale == 2
    seed = get_stage("phase1").student_config()
    assert seed.mask_box_prior == 0.0 and seed.mask_upsample == 1  # the seed preset keeps its own
    assert build_student(get_stage("phase2-world").student_config()).mask_decoder.box_prior == 30.0
    assert build_student(get_stage("phase2-world").student_config()).mask_decoder.upsample == 2
    with pytest.raises(ValueError, match="mask_box_prior must be >= 0"):
        replace(get_stage("phase1"), mask_box_prior=-1.0)
