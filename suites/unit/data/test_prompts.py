"""The dynamic prompt sampler: ratios, points inside masks, jittered and negative boxes, fallbacks."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
import torch

from sam3spec.data.prompts import PHASE1_PROMPTS, PHASE2_PROMPTS, PromptConfig, PromptSampler, jitter_box
from sam3spec.data.transforms import boxes_from_masks


def _sample(phrase="red circle", count=3):
    masks = torch.zeros(count, 32, 48, dtype=torch.bool)
    for n in range(count):
        masks[n, 4 + 8 * n : 10 + 8 * n, 5 + 12 * n : 14 + 12 * n] = True
    return {"masks": masks, "boxes_xyxy": boxes_from_masks(masks), "phrase": phrase}


@pytest.mark.parametrize("config", [PHASE1_PROMPTS, PHASE2_PROMPTS])
def test_ratios_follow_the_config(config):
    sampler, rng = PromptSampler(config), np.random.default_rng(0)
    counts = Counter(sampler(_sample(), rng)["prompt_type"] for _ in range(3000))
    for kind, weight in (("text", config.text), ("point", config.point), ("box", config.box)):
        assert counts[kind] / 3000 == pytest.approx(weight, abs=0.03)


def test_points_lie_inside_their_target_and_negatives_outside():
    sampler = PromptSampler(PromptConfig(text=0, point=1, box=0, max_points=4, negative_point_prob=0.5))
    rng = np.random.default_rng(1)
    negatives = 0
    for _ in range(300):
        out = sampler(_sample(), rng)
        target = out["target_masks"][0]
        assert out["target_masks"].shape[0] == 1 and out["text"] == "visual" and out["targets_known"]
        for (x, y), label in zip(out["points_xy"].tolist(), out["point_labels"].tolist(), strict=True):
            inside = bool(target[int(y * 32), int(x * 48)])
            assert inside == (label == 1)
            negatives += label == 0
        assert 1 <= int((out["point_labels"] == 1).sum()) <= 4
    assert negatives > 50


def test_boxes_are_jittered_targets_and_negative_boxes_exclude_targets():
    sampler = PromptSampler(
        PromptConfig(text=0, point=0, box=1, negative_box_prob=1.0, box_targets="instance")
    )
    rng = np.random.default_rng(2)
    for _ in range(200):
        out = sampler(_sample(), rng)
        boxes, labels = out["prompt_boxes_xyxy"], out["prompt_box_labels"]
        assert labels.tolist() == [1, 0]
        assert torch.all((boxes >= 0) & (boxes <= 1)) and torch.all(boxes[:, 2:] >= boxes[:, :2])
        assert torch.abs(boxes[0] - out["target_boxes_xyxy"][0]).max() < 0.2
        assert not any(torch.equal(boxes[1], t) for t in out["target_boxes_xyxy"])
    concept = PromptSampler(PromptConfig(text=0, point=0, box=1))(_sample(), rng)
    assert concept["target_masks"].shape[0] == 3  # an exemplar box targets the whole concept


def test_jitter_is_proportional_and_deterministic():
    box = torch.tensor([0.2, 0.2, 0.4, 0.6])
    assert torch.equal(jitter_box(box, 0.0, np.random.default_rng(0)), box)
    a = jitter_box(box, 0.1, np.random.default_rng(5))
    assert torch.equal(a, jitter_box(box, 0.1, np.random.default_rng(5)))


def test_fallbacks():
    rng = np.random.default_rng(3)
    negative = _sample(count=0)  # a negative SA-Co phrase: only text makes sense
    assert {PromptSampler()(negative, rng)["prompt_type"] for _ in range(50)} == {"text"}
    out = PromptSampler()(negative, rng)
    assert out["target_masks"].shape == (0, 32, 48) and out["text"] == "red circle" and out["targets_known"]
    unlabeled = _sample(phrase=None)  # SA-1B: no text without a vocabulary
    assert {PromptSampler()(unlabeled, rng)["prompt_type"] for _ in range(50)} == {"point", "box"}
    vocab = PromptSampler(PromptConfig(text=1, point=0, box=0), vocabulary=["blue star"])(unlabeled, rng)
    assert vocab["text"] == "blue star" and not vocab["targets_known"] and vocab["target_masks"].shape[0] == 0


def test_clip_prompts_use_the_query_frame():
    masks = torch.zeros(3, 2, 16, 16, dtype=torch.bool)
    masks[:, 0, 2:6, 2:6] = True
    masks[-1, 1, 9:12, 9:12] = True
    masks[-1, 0] = False  # object 0 hidden in the query frame
    sample = {"masks": masks, "boxes_xyxy": boxes_from_masks(masks), "phrase": None}
    out = PromptSampler(PromptConfig(text=0, point=1, box=0))(sample, np.random.default_rng(0))
    assert torch.equal(out["target_masks"][0], masks[-1, 1])


def test_config_validation():
    with pytest.raises(ValueError):
        PromptConfig(text=0, point=0, box=0)
    with pytest.raises(ValueError):
        PromptConfig(box_targets="all")
