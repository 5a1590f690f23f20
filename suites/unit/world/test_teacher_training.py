"""The concept-world teacher's data, losses, schedule and a resumable, seeded training loop."""

from __future__ import annotations

import itertools
from dataclasses import replace

import numpy as np
import pytest
import torch

from sam3spec.data.transforms import boxes_from_masks
from sam3spec.teacher.architecture import TINY
from sam3spec.world import WorldConfig
from sam3spec.world.phrases import Phrase, is_held_out
from sam3spec.world.teacher.data import boxes_xyxy, draw_image, mask_targets, training_images
from sam3spec.world.teacher.losses import LossWeights, dice_loss, generalized_iou, hungarian
from sam3spec.world.teacher.train import WorldTrainConfig, decay_start, learning_rate_at, train_world_teacher

SMALL = WorldConfig(image_size=64)


def test_training_images_are_seeded() -> None:
    first, again = training_images(0, 3, 2, 2, SMALL), training_images(0, 3, 2, 2, SMALL)
    assert all(
        np.array_equal(a.image, b.image) and a.texts == b.texts for a, b in zip(first, again, strict=True)
    )
    assert not np.array_equal(first[0].image, training_images(0, 4, 1, 2, SMALL)[0].image)


def test_training_never_asks_a_held_out_phrase() -> None:
    world = WorldConfig(image_size=48)
    for step in range(40):
        for image in training_images(7, step, 1, None, world):
            for text in image.texts:
                phrase = Phrase.parse(text, world.shapes, world.colours, world.sizes)
                assert not is_held_out(phrase, world.held_out_pairs), text


def test_eval_like_images_plant_a_held_out_phrase() -> None:
    image = draw_image(np.random.default_rng(0), SMALL, True, None)
    phrase = Phrase.parse(image.texts[0], SMALL.shapes, SMALL.colours, SMALL.sizes)
    assert is_held_out(phrase, SMALL.held_out_pairs) and len(image.instances[0]) >= 1


def test_boxes_match_the_data_layer() -> None:
    image = training_images(1, 0, 1, None, SMALL)[0]
    masks = torch.from_numpy(image.object_masks)
    assert torch.allclose(boxes_xyxy(masks), boxes_from_masks(masks))
    targets = mask_targets(image.object_masks, 32)
    assert targets.shape == (len(masks), 32, 32) and float(targets.max()) <= 1.0


def test_giou_by_hand() -> None:
    a = torch.tensor([[0.0, 0.0, 2.0, 2.0]])
    b = torch.tensor([[1.0, 1.0, 3.0, 3.0], [0.0, 0.0, 2.0, 2.0]])
    # overlap 1, union 7, hull 9: 1/7 - 2/9
    assert torch.allclose(generalized_iou(a, b), torch.tensor([[1 / 7 - 2 / 9, 1.0]]))


def test_dice_of_a_perfect_mask_is_near_zero() -> None:
    target = torch.zeros(1, 8, 8)
    target[0, 2:6, 2:6] = 1
    assert float(dice_loss(target * 40 - 20, target)) < 1e-3
    assert float(dice_loss(-target * 40 + 20, target)) > 0.9


def test_hungarian_equals_brute_force() -> None:
    generator = torch.Generator().manual_seed(0)
    weights = LossWeights()
    for _ in range(5):
        logits = torch.randn(4, generator=generator)
        corners = torch.rand(4, 2, generator=generator) * 0.5
        boxes = torch.cat([corners, corners + 0.3], dim=-1)
        targets = torch.cat([corners[:2] + 0.05, corners[:2] + 0.4], dim=-1)
        cost = -weights.classification * logits.sigmoid()[:, None] + weights.box_l1 * torch.cdist(
            boxes, targets, p=1
        )
        cost = cost - weights.box_giou * generalized_iou(boxes, targets)
        best = min(
            itertools.permutations(range(4), 2), key=lambda rows: sum(cost[r, c] for c, r in enumerate(rows))
        )
        rows, cols = hungarian(logits, boxes, targets, weights)
        assert [int(rows[cols == c]) for c in range(2)] == list(best)


def test_schedule_does_not_depend_on_length_before_the_decay() -> None:
    long, short = WorldTrainConfig(steps=1000), WorldTrainConfig(steps=600)
    for step in range(decay_start(short)):
        assert learning_rate_at(step, long) == learning_rate_at(step, short)
    assert learning_rate_at(599, short) < learning_rate_at(599, long)
    assert learning_rate_at(0, long) == pytest.approx(long.learning_rate / long.warmup_steps)


TINY_RUN = WorldTrainConfig(
    steps=3,
    images_per_step=1,
    phrases_per_image=2,
    clicks_per_image=1,
    warmup_steps=1,
    checkpoint_every=2,
    log_every=1,
    validate_every=0,
    arch=TINY,
    world=SMALL,
)


def test_resumed_run_equals_an_uninterrupted_one(tmp_path) -> None:
    straight = train_world_teacher(tmp_path / "straight", TINY_RUN, progress=False)
    train_world_teacher(tmp_path / "resumed", replace(TINY_RUN, steps=2), progress=False)
    resumed = train_world_teacher(tmp_path / "resumed", TINY_RUN, progress=False)
    first = torch.load(tmp_path / "straight" / "checkpoint.pt", weights_only=True)["detector"]
    second = torch.load(tmp_path / "resumed" / "checkpoint.pt", weights_only=True)["detector"]
    assert all(torch.equal(first[name], second[name]) for name in first)
    aligners = [
        torch.load(tmp_path / run / "checkpoint.pt", weights_only=True)["aligner"]
        for run in ("straight", "resumed")
    ]
    assert aligners[0] and all(torch.equal(aligners[0][k], aligners[1][k]) for k in aligners[0])
    assert (straight / "detector" / "model.safetensors").is_file() and (
        resumed / "tracker" / "config.json"
    ).is_file()


def test_resume_refuses_another_configuration(tmp_path) -> None:
    train_world_teacher(tmp_path, replace(TINY_RUN, steps=1), progress=False)
    with pytest.raises(ValueError, match="different configuration"):
        train_world_teacher(tmp_path, replace(TINY_RUN, learning_rate=1e-3), progress=False)


def test_resume_refuses_another_length_after_the_decay_started(tmp_path) -> None:
    short = replace(TINY_RUN, steps=2, warmup_steps=0, decay_fraction=0.5)  # decays from step 1
    train_world_teacher(tmp_path, short, progress=False)
    with pytest.raises(ValueError, match="decay start"):
        train_world_teacher(tmp_path, replace(short, steps=8), progress=False)


def test_fine_tune_starts_from_a_trained_teacher(tmp_path) -> None:
    from sam3spec.teacher.hf_models import build_models
    from sam3spec.world.teacher.train import start_from

    trained = train_world_teacher(tmp_path / "first", replace(TINY_RUN, steps=1), progress=False)
    detector, tracker = build_models(TINY, seed=5)
    start_from(detector, tracker, trained)
    saved = torch.load(tmp_path / "first" / "checkpoint.pt", weights_only=True)["detector"]
    assert all(torch.equal(value, detector.state_dict()[name]) for name, value in saved.items())
    # a fine-tuning run records where it started (a resume from another start is refused)
    train_world_teacher(
        tmp_path / "tuned", replace(TINY_RUN, steps=1, init_from=str(trained)), progress=False
    )
    with pytest.raises(ValueError, match="different configuration"):
        train_world_teacher(tmp_path / "tuned", replace(TINY_RUN, steps=2), progress=False)


def test_fine_tune_refuses_another_architecture(tmp_path) -> None:
    from sam3spec.teacher.hf_models import build_models
    from sam3spec.teacher.loading import TeacherLoadError
    from sam3spec.world.teacher.train import start_from

    trained = train_world_teacher(tmp_path / "first", replace(TINY_RUN, steps=1), progress=False)
    detector, tracker = build_models(replace(TINY, detr_decoder_layers=TINY.detr_decoder_layers + 1))
    with pytest.raises(TeacherLoadError, match="does not fit"):
        start_from(detector, tracker, trained)


def test_detector_loss_compares_upsampled_logits_with_finer_targets() -> None:
    from sam3spec.models.outputs import Sam3Outputs
    from sam3spec.world.teacher.losses import detector_loss

    generator = torch.Generator().manual_seed(0)
    queries, side = 3, 8
    outputs = Sam3Outputs(
        pred_logits=torch.randn(1, queries, generator=generator),
        pred_boxes=torch.tensor([[[0.1, 0.1, 0.5, 0.5], [0.4, 0.4, 0.9, 0.9], [0.0, 0.0, 1.0, 1.0]]]),
        pred_masks=torch.randn(1, queries, side, side, generator=generator),
        presence_logits=torch.zeros(1, 1),
        semantic_seg=torch.randn(1, 1, side, side, generator=generator),
    )
    layers = {
        "logits": outputs.pred_logits[None],
        "boxes_xyxy": outputs.pred_boxes[None],
        "presence": outputs.presence_logits[None],
    }
    boxes = [outputs.pred_boxes[0, :1].clone()]
    upsampled = torch.nn.functional.interpolate(
        outputs.pred_masks, size=16, mode="bilinear", align_corners=False
    )
    fine = [(upsampled[0, :1] > 0).float()]  # 16 x 16 targets: query 0's own mask, upsampled
    _, parts = detector_loss(outputs, layers, boxes, fine, LossWeights())
    expected = torch.nn.functional.binary_cross_entropy_with_logits(upsampled[0, :1], fine[0])
    assert parts["mask_bce"] == pytest.approx(float(expected), rel=1e-5)
    _, coarse = detector_loss(
        outputs, layers, boxes, [mask_targets(fine[0].bool().numpy(), side)], LossWeights()
    )
    assert coarse["mask_bce"] != pytest.approx(parts["mask_bce"])
    with pytest.raises(ValueError, match="mask_target_scale"):
        WorldTrainConfig(mask_target_scale=3)
