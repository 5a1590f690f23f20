"""Training-only initialisation of the concept-world teacher and the anchor-guided matching.

Each test pins one measured cause of the "learns only priors" failure (see
:func:`sam3spec.world.teacher.train.initialise_for_training`).
"""

from __future__ import annotations

import torch

from sam3spec.teacher.architecture import TINY
from sam3spec.teacher.hf_adapter import encode_detector_image
from sam3spec.teacher.hf_models import build_models
from sam3spec.world.teacher import WORLD
from sam3spec.world.teacher.init import (
    BOX_WINDOW_STRENGTH,
    anchor_centres,
    initialise_for_training,
)
from sam3spec.world.teacher.losses import LossWeights, hungarian
from sam3spec.world.teacher.train import trainable_parameters


def rms(tensor: torch.Tensor) -> float:
    return float(tensor.pow(2).mean().sqrt())


def test_fpn_levels_are_not_vanishing_after_the_training_init() -> None:
    detector, _ = build_models(TINY, seed=0)
    pixels = torch.rand(2, 3, TINY.image_size, TINY.image_size) * 2 - 1
    with torch.no_grad():
        before = [rms(level) for level in encode_detector_image(detector, pixels).fpn_levels]
        initialise_for_training(detector)
        after = [rms(level) for level in encode_detector_image(detector, pixels).fpn_levels]
    # transformers' normal(0, 0.02) shrinks every stacked neck convolution; the finest level
    # came out ~1000x below the text features on the shipped architecture.
    assert min(after) > 0.02, after
    assert min(after) > 10 * min(before), (before, after)


def test_box_window_bias_is_zero_inside_and_negative_outside() -> None:
    detector, _ = build_models(TINY, seed=0)
    initialise_for_training(detector)
    decoder = detector.detr_decoder
    box = torch.tensor([[[0.5, 0.5, 0.5, 0.5]]])  # cxcywh: the centre half of the image
    bias = decoder._get_rpb_matrix(box, (torch.tensor(8), torch.tensor(8)))  # [1, heads, 1, 64]
    grid = bias[0, 0, 0].reshape(8, 8)
    inside, corner = grid[2:6, 2:6], grid[0, 0]
    assert torch.allclose(inside, torch.zeros_like(inside), atol=1e-6)
    assert corner < -0.5 * BOX_WINDOW_STRENGTH * 0.2  # two log-distances of ~0.3 outside
    assert torch.equal(bias[0, 0], bias[0, -1])  # every head starts with the same window


def test_vit_position_table_is_sincos() -> None:
    detector, _ = build_models(WORLD, seed=0)
    initialise_for_training(detector)
    table = detector.vision_encoder.backbone.embeddings.position_embeddings[0].detach()
    assert table.shape == (WORLD.grid**2, WORLD.vision_hidden)
    assert float(table.abs().max()) <= 1.0 + 1e-6
    assert rms(table) > 0.3  # not the normal(0, 0.02) default
    # neighbouring cells are more alike than far ones: the table encodes where a patch is
    near = torch.cosine_similarity(table[0], table[1], dim=0)
    far = torch.cosine_similarity(table[0], table[-1], dim=0)
    assert near > far


def test_reference_boxes_are_frozen_anchors() -> None:
    detector, tracker = build_models(TINY, seed=0)
    initialise_for_training(detector)
    parameters = trainable_parameters(detector, tracker)
    reference = detector.detr_decoder.reference_points.weight
    assert not reference.requires_grad and all(p is not reference for p in parameters)
    centres = anchor_centres(detector)
    assert centres.shape == (TINY.num_queries, 2) and centres.min() > 0 and centres.max() < 1


def test_anchor_term_assigns_each_object_to_its_nearest_anchor() -> None:
    anchors = torch.tensor([[0.25, 0.25], [0.75, 0.25], [0.25, 0.75], [0.75, 0.75]])
    boxes = torch.tensor([[0.4, 0.4, 0.6, 0.6]]).repeat(4, 1)  # uninformative predictions
    logits = torch.zeros(4)
    targets = torch.tensor([[0.7, 0.7, 0.9, 0.9], [0.1, 0.15, 0.3, 0.35]])
    rows, cols = hungarian(logits, boxes, targets, LossWeights(), anchors=anchors)
    assigned = {int(c): int(r) for r, c in zip(rows, cols, strict=True)}
    assert assigned == {0: 3, 1: 0}
    # without anchors every query costs the same: the assignment is arbitrary (here 0 and 1)
    rows, cols = hungarian(logits, boxes, targets, LossWeights(anchor=0.0))
    assert sorted(int(r) for r in rows) == [0, 1]
