"""DETR decoder pieces, scoring and mask decoder against hand-computed references."""

from __future__ import annotations

import math

import pytest
import torch

from sam3spec.boxes import boxes_cxcywh_to_xyxy, boxes_xyxy_to_cxcywh, inverse_sigmoid
from sam3spec.models.detr_decoder import BoxRelativePositionBias, DetrDecoder, grid_reference_boxes
from sam3spec.models.mask_decoder import MaskDecoder, outside_box_distance
from sam3spec.models.outputs import resize_mask_logits
from sam3spec.models.scoring import DotProductScoring


def test_box_conversions_round_trip() -> None:
    boxes = torch.tensor([[0.1, 0.2, 0.5, 0.9]])
    torch.testing.assert_close(boxes_cxcywh_to_xyxy(boxes_xyxy_to_cxcywh(boxes)), boxes)
    torch.testing.assert_close(inverse_sigmoid(torch.tensor([0.3])).sigmoid(), torch.tensor([0.3]))
    assert torch.isfinite(inverse_sigmoid(torch.tensor([0.0, 1.0]))).all()


def test_box_rpb_matches_loop() -> None:
    torch.manual_seed(0)
    rpb = BoxRelativePositionBias(hidden=8, heads=2)
    boxes = torch.tensor([[[0.5, 0.5, 0.4, 0.2], [0.2, 0.7, 0.1, 0.3]]])  # cxcywh
    height, width = 3, 4
    got = rpb(boxes, height, width)
    assert got.shape == (1, 2, 2, height * width)

    def scale(d: float) -> float:
        d *= 8
        return math.copysign(math.log2(abs(d) + 1), d) / 3

    for q in range(2):
        x0, y0, x1, y1 = boxes_cxcywh_to_xyxy(boxes[0, q]).tolist()
        for i in range(height):
            for j in range(width):
                cx, cy = (j + 0.5) / width, (i + 0.5) / height
                bx = rpb.mlp_x(torch.tensor([scale(cx - x0), scale(cx - x1)]))
                by = rpb.mlp_y(torch.tensor([scale(cy - y0), scale(cy - y1)]))
                torch.testing.assert_close(got[0, :, q, i * width + j], bx + by, atol=1e-5, rtol=1e-5)


def test_box_rpb_starts_local() -> None:
    # At initialisation every head prefers the cells inside a query's box: the bias of the
    # locality units alone is 0 inside and -strength * log-scaled distance outside (hand-computed),
    # and with the random units added the inside cells still beat cells 0.3 or more outside.
    torch.manual_seed(0)
    strength, width = 8.0, 20
    rpb = BoxRelativePositionBias(hidden=32, heads=4, locality=strength)
    box = torch.tensor([[[0.5, 0.5, 0.2, 0.2]]])  # x and y in [0.4, 0.6]
    bias = rpb(box, width, width).reshape(4, width, width)
    xs = (torch.arange(width) + 0.5) / width
    inside = (xs > 0.4) & (xs < 0.6)
    far = (xs < 0.1) | (xs > 0.9)
    assert (bias[:, inside][:, :, inside].amin(dim=(1, 2)) > bias[:, far][:, :, far].amax(dim=(1, 2))).all()
    # The two locality units by hand, one cell 0.125 left of the box (x = 0.275).
    scaled = torch.tensor(
        [math.copysign(math.log2(abs(d * 8) + 1), d) / 3 for d in (0.275 - 0.4, 0.275 - 0.6)]
    )
    units = torch.relu(rpb.mlp_x.layers[0](scaled))[:2].detach()
    assert units[1] == 0 and float(units[0]) == pytest.approx(math.log2(0.125 * 8 + 1) / 3, rel=1e-5)
    assert (rpb.mlp_x.layers[-1].weight[:, :2] == -strength).all()
    plain = BoxRelativePositionBias(hidden=32, heads=4, locality=0.0)
    assert not (plain.mlp_x.layers[-1].weight[:, :2] == -strength).any()


def test_reference_boxes_tile_the_image() -> None:
    boxes = grid_reference_boxes(100)
    assert boxes.shape == (100, 4)
    assert boxes[:, 0].min() < 0.1 and boxes[:, 0].max() > 0.9
    assert boxes[:, 1].min() < 0.1 and boxes[:, 1].max() > 0.9
    assert len({tuple(b) for b in boxes[:, :2].tolist()}) == 100
    xyxy = boxes_cxcywh_to_xyxy(boxes)
    assert xyxy.min() >= -1e-6 and xyxy.max() <= 1 + 1e-6


def test_decoder_outputs_per_layer() -> None:
    torch.manual_seed(0)
    decoder = DetrDecoder(hidden=32, heads=4, ffn_dim=64, num_layers=3, num_queries=9)
    memory = torch.randn(2, 12, 32)
    out = decoder(
        torch.randn(2, 5, 32), torch.zeros(2, 5, dtype=torch.bool), memory, torch.randn(2, 12, 32), (3, 4)
    )
    assert len(out.states) == len(out.boxes) == len(out.presence_logits) == 3
    assert out.states[-1].shape == (2, 9, 32) and out.boxes[-1].shape == (2, 9, 4)
    assert out.presence_logits[-1].shape == (2, 1)
    assert ((out.boxes[-1] > 0) & (out.boxes[-1] < 1)).all()
    # Near-zero box-head init: first-layer boxes start at the reference boxes.
    torch.testing.assert_close(out.boxes[0][0], grid_reference_boxes(9), atol=0.02, rtol=0)


def test_scoring_masked_mean_reference() -> None:
    torch.manual_seed(0)
    scoring = DotProductScoring(hidden=8, ffn_dim=16)
    queries, prompt = torch.randn(1, 3, 8), torch.randn(1, 4, 8)
    mask = torch.tensor([[False, True, False, True]])
    got = scoring(queries, prompt, mask)
    refined = scoring.prompt_norm(prompt + scoring.prompt_mlp(prompt))[0, [0, 2]].mean(0)
    expected = scoring.hs_proj(queries[0]) @ scoring.prompt_proj(refined) / math.sqrt(8)
    torch.testing.assert_close(got[0], expected.clamp(-12, 12))
    assert scoring(queries * 1e4, prompt * 1e4, mask).abs().max() <= 12


def test_mask_decoder_odd_sizes() -> None:
    torch.manual_seed(0)
    decoder = MaskDecoder(hidden=16, mask_dim=8, num_skip_levels=2).eval()
    # 504 px: stride 16 -> 32, stride 8 -> 63, stride 4 -> 126 (not a plain x2 chain).
    masks, semantic = decoder(
        torch.randn(1, 5, 16),
        torch.randn(1, 16, 8, 8),
        [torch.randn(1, 16, 15, 15), torch.randn(1, 16, 30, 30)],
    )
    assert masks.shape == (1, 5, 30, 30) and semantic.shape == (1, 1, 30, 30)


def test_outside_box_distance_hand_computed() -> None:
    # 4 x 2 grid (h = 4, w = 2): cell centres x 0.25 / 0.75, y 0.125 / 0.375 / 0.625 / 0.875.
    boxes = torch.tensor([[[0.5, 0.3, 1.0, 0.5]]])
    expected = torch.tensor(
        [
            [0.25 + 0.175, 0.175],  # y 0.125 is 0.175 above the box
            [0.25, 0.0],  # y 0.375 inside; x 0.25 is 0.25 left of it
            [0.25 + 0.125, 0.125],  # y 0.625 is 0.125 below
            [0.25 + 0.375, 0.375],
        ]
    )
    torch.testing.assert_close(outside_box_distance(boxes, (4, 2))[0, 0], expected)


def test_mask_decoder_box_prior_lowers_logits_outside_the_detached_box() -> None:
    torch.manual_seed(0)
    plain = MaskDecoder(hidden=16, mask_dim=8, num_skip_levels=1).eval()
    prior = MaskDecoder(hidden=16, mask_dim=8, num_skip_levels=1, box_prior=50.0).eval()
    prior.load_state_dict(plain.state_dict())  # the prior adds no parameters
    states, memory, skips = torch.randn(2, 3, 16), torch.randn(2, 16, 4, 4), [torch.randn(2, 16, 8, 8)]
    boxes = torch.tensor([[0.0, 0.0, 0.5, 0.5], [0.25, 0.25, 1.0, 0.75], [0.1, 0.6, 0.2, 0.9]]).expand(
        2, 3, 4
    )
    boxes = boxes.clone().requires_grad_(True)
    base, _ = plain(states, memory, skips)
    masks, _ = prior(states, memory, skips, boxes)
    torch.testing.assert_close(masks, base - 50.0 * outside_box_distance(boxes.detach(), (8, 8)))
    inside = outside_box_distance(boxes.detach(), (8, 8)) == 0
    assert inside.any() and (~inside).any()
    torch.testing.assert_close(masks[inside], base[inside])
    assert (masks[~inside] < base[~inside]).all()
    masks.sum().backward()
    assert boxes.grad is None  # the box losses alone train the boxes
    with pytest.raises(ValueError, match="needs the queries' boxes"):
        prior(states, memory, skips)
    with pytest.raises(ValueError, match="box_prior must be >= 0"):
        MaskDecoder(hidden=16, mask_dim=8, num_skip_levels=1, box_prior=-1.0)


def test_mask_decoder_upsamples_after_the_box_prior() -> None:
    """``upsample=2``: the box-prior logits on the stride-4 grid, then bilinear x2 (no parameters);
    an odd grid (504 px: 126) doubles exactly."""
    torch.manual_seed(0)
    coarse = MaskDecoder(hidden=16, mask_dim=8, num_skip_levels=1, box_prior=50.0).eval()
    fine = MaskDecoder(hidden=16, mask_dim=8, num_skip_levels=1, box_prior=50.0, upsample=2).eval()
    fine.load_state_dict(coarse.state_dict())
    states, memory, skips = torch.randn(2, 3, 16), torch.randn(2, 16, 4, 7), [torch.randn(2, 16, 7, 13)]
    boxes = torch.tensor([[0.0, 0.0, 0.5, 0.5], [0.25, 0.25, 1.0, 0.75], [0.1, 0.6, 0.2, 0.9]]).expand(
        2, 3, 4
    )
    with torch.no_grad():
        base_masks, base_semantic = coarse(states, memory, skips, boxes)
        masks, semantic = fine(states, memory, skips, boxes)
    assert masks.shape == (2, 3, 14, 26) and semantic.shape == (2, 1, 14, 26)
    for got, low in ((masks, base_masks), (semantic, base_semantic)):
        assert torch.equal(got, resize_mask_logits(low, (14, 26)))
        expected = torch.nn.functional.interpolate(low, size=(14, 26), mode="bilinear", align_corners=False)
        torch.testing.assert_close(got, expected, rtol=0, atol=1e-5)
    for bad in (0, 1.5):
        with pytest.raises(ValueError, match="upsample must be a positive integer"):
            MaskDecoder(hidden=16, mask_dim=8, num_skip_levels=1, upsample=bad)
