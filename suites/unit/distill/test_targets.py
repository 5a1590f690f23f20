"""Targets on the student's grid: resizing, point candidates, padding, ground truth, the cache."""

from __future__ import annotations

import pytest
import torch

from sam3spec.distill.adapters import (
    FeatureAdapters,
    StudentGeometry,
    encoder_grid,
    resize_map,
    tokens_to_map,
)
from sam3spec.distill.targets import PAD_LOGIT, Targets, from_outputs, ground_truth_targets, pad_queries
from sam3spec.models.outputs import Intermediates, Sam3Outputs


def test_geometry_matches_the_student(tiny_student):
    geometry = StudentGeometry(64, tiny_student.config.detr.encoder_level)
    with torch.no_grad():
        ids = torch.tensor([[49406, 320, 49407] + [0] * 29])
        outputs = tiny_student.eval()(torch.randn(1, 3, 64, 64), input_ids=ids, return_intermediates=True)
    assert [tuple(level.shape[-2:]) for level in outputs.intermediates.fpn_levels] == geometry.level_sizes
    assert tuple(outputs.pred_masks.shape[-2:]) == geometry.mask_size
    assert (
        outputs.intermediates.encoder_memory.shape[1] == geometry.encoder_size[0] * geometry.encoder_size[1]
    )
    assert StudentGeometry(504).level_sizes == [(126, 126), (63, 63), (32, 32), (16, 16)]


def test_resize_and_tokens():
    maps = torch.randn(2, 3, 8, 8)
    assert resize_map(maps, (8, 8)) is maps
    assert resize_map(maps, (4, 4)).shape == (2, 3, 4, 4)
    assert torch.allclose(resize_map(torch.ones(1, 1, 8, 8), (3, 3)), torch.ones(1, 1, 3, 3))
    tokens = torch.arange(2 * 6 * 3, dtype=torch.float32).view(2, 6, 3)
    assert tokens_to_map(tokens, (2, 3))[1, :, 1, 2].tolist() == tokens[1, 5].tolist()
    assert encoder_grid(12, [(4, 4), (3, 4)]) == (3, 4)
    with pytest.raises(ValueError):
        encoder_grid(12, [(4, 4)])


def test_adapters_identity_when_widths_match():
    same = FeatureAdapters([8, 8], [8, 8], 8, 8)
    assert all(isinstance(level, torch.nn.Identity) for level in same.levels)
    assert sum(p.numel() for p in same.parameters()) == 0
    different = FeatureAdapters([8, 8], [4, 4], 8, 4)
    assert different.forward_levels([torch.randn(1, 8, 2, 2)] * 2)[0].shape == (1, 4, 2, 2)
    assert different.forward_encoder(torch.randn(1, 6, 8), (2, 3)).shape == (1, 4, 2, 3)


def fake_teacher_outputs(batch=2, queries=3, side=16, width=4, grid=4) -> Sam3Outputs:
    generator = torch.Generator().manual_seed(0)
    return Sam3Outputs(
        pred_logits=torch.tensor([[0.5, 2.0, -1.0]] * batch),
        pred_boxes=torch.rand(batch, queries, 4, generator=generator),
        pred_masks=torch.randn(batch, queries, side, side, generator=generator),
        presence_logits=torch.zeros(batch, 1),
        semantic_seg=torch.randn(batch, 1, side, side, generator=generator),
        intermediates=Intermediates(
            encoder_memory=torch.randn(batch, grid * grid, width, generator=generator)
        ),
    )


def test_from_outputs_resizes_to_the_student_grid():
    geometry = StudentGeometry(32)  # masks 8x8, levels 8, 4, 2, 1, encoder 2x2
    levels = [torch.randn(2, 4, side, side) for side in (16, 8, 4, 2)]
    targets = from_outputs(fake_teacher_outputs(), geometry, levels)
    assert (
        targets.mask_probs.shape == (2, 3, 8, 8)
        and 0 <= targets.mask_probs.min() <= targets.mask_probs.max() <= 1
    )
    assert [tuple(level.shape[-2:]) for level in targets.fpn_levels] == geometry.level_sizes
    assert targets.encoder_memory.shape == (2, 4, 2, 2) and targets.has_encoder.all()
    assert targets.valid.all()
    assert targets.text_features.shape == (2, 32, 4) and not targets.text_valid.any()  # not a text prompt


def test_text_prompts_teach_their_real_tokens():
    outputs = fake_teacher_outputs()
    outputs.intermediates.text_features = torch.randn(2, 5, 4)
    outputs.intermediates.text_valid = torch.tensor([[True] * 3 + [False] * 2, [True] * 4 + [False]])
    levels = [torch.randn(2, 4, side, side) for side in (16, 8, 4, 2)]
    targets = from_outputs(outputs, StudentGeometry(32), levels, text_prompt=True)
    assert targets.text_features.shape == (2, 32, 4)  # padded to SAM 3's 32-token context
    assert torch.equal(targets.text_features[:, :5], outputs.intermediates.text_features)
    assert targets.text_valid.sum(1).tolist() == [3, 4]


def test_point_prompts_keep_only_the_best_candidate():
    targets = from_outputs(fake_teacher_outputs(), StudentGeometry(32), None, best_candidate_only=True)
    assert targets.valid.tolist() == [[False, True, False]] * 2
    assert targets.logits[0].tolist() == [PAD_LOGIT, 2.0, PAD_LOGIT]
    assert targets.encoder_memory is None


def test_cat_pads_queries():
    geometry = StudentGeometry(32)
    three = from_outputs(fake_teacher_outputs(batch=1), geometry)
    five = pad_queries(three, 5)
    assert five.valid.tolist() == [[True, True, True, False, False]]
    both = Targets.cat([three, from_outputs(fake_teacher_outputs(batch=1, queries=3), geometry)])
    assert both.logits.shape == (2, 3)


def test_ground_truth_targets():
    geometry = StudentGeometry(32)
    masks = torch.zeros(2, 32, 32, dtype=torch.bool)
    masks[0, :16, :16] = True
    masks[1, 16:, 16:] = True
    batch = {
        "target_masks": [masks, torch.zeros(0, 32, 32, dtype=torch.bool)],
        "target_boxes_xyxy": [torch.tensor([[0, 0, 0.5, 0.5], [0.5, 0.5, 1, 1]]), torch.zeros(0, 4)],
    }
    targets = ground_truth_targets(batch, geometry)
    assert targets.valid.tolist() == [[True, True], [False, False]]
    assert targets.presence_logits[:, 0].sign().tolist() == [1.0, -1.0]
    assert targets.mask_probs[0, 0, :4, :4].min() == 1.0 and targets.mask_probs[0, 0, 4:, 4:].max() == 0.0
    assert torch.equal(targets.semantic_probs[0, 0], targets.mask_probs[0].amax(0))


def test_mask_targets_at_a_multiple_of_the_student_grid():
    geometry = StudentGeometry(32, mask_scale=2)  # student masks 8x8, targets 16x16
    assert geometry.mask_size == (8, 8) and geometry.mask_target_size == (16, 16)
    targets = from_outputs(fake_teacher_outputs(), geometry)  # the teacher's masks are 16x16
    assert targets.mask_probs.shape[-2:] == (16, 16) and targets.semantic_probs.shape[-2:] == (16, 16)
    masks = torch.zeros(1, 32, 32, dtype=torch.bool)
    masks[0, :3, :3] = True  # a 3-px square: 9/16 of a 4-px student cell; 2-px target cells see 1, 1/2, 1/4
    batch = {"target_masks": [masks], "target_boxes_xyxy": [torch.tensor([[0, 0, 3 / 32, 3 / 32]])]}
    assert ground_truth_targets(batch, geometry).mask_probs[0, 0, 1, 1] == pytest.approx(0.25)
    assert ground_truth_targets(batch, StudentGeometry(32)).mask_probs[0, 0, 0, 0] == pytest.approx(9 / 16)
    with pytest.raises(ValueError, match="mask_scale must be >= 1"):
        StudentGeometry(32, mask_scale=0)
