"""The mask refiner: queries read the pixel embedding, mostly inside their own box, before their
mask embeddings."""

from __future__ import annotations

import pytest
import torch

from sam3spec.models.mask_decoder import MaskDecoder, outside_box_distance
from sam3spec.models.mask_refiner import LOCALITY_INIT, MaskRefiner
from sam3spec.models.position import grid_position_embedding

BOXES = torch.tensor([[0.0, 0.0, 0.5, 0.5], [0.25, 0.25, 1.0, 0.75], [0.1, 0.6, 0.2, 0.9]])


def _reference_layer(layer, states, pixels, distance):
    """One layer written out with plain per-head loops (independent of ``Attention``'s reshapes)."""
    attn = layer.pixel_attn
    tokens = pixels.flatten(2).transpose(1, 2)
    keys = tokens + grid_position_embedding(pixels).flatten(2).transpose(1, 2)
    q, k, v = attn.q_proj(states), attn.k_proj(keys), attn.v_proj(tokens)
    heads, width = attn.heads, attn.head_dim
    outs = []
    for h in range(heads):
        part = slice(h * width, (h + 1) * width)
        scores = q[..., part] @ k[..., part].transpose(-2, -1) / width**0.5
        scores = scores - layer.locality[h] * distance.flatten(2)
        outs.append(scores.softmax(-1) @ v[..., part])
    x = layer.norm1(states + attn.out_proj(torch.cat(outs, -1)))
    return layer.norm2(x + layer.ffn(x))


def test_refiner_matches_a_per_head_reference() -> None:
    torch.manual_seed(0)
    refiner = MaskRefiner(hidden=16, heads=4, ffn_dim=32, num_layers=2).eval()
    states, pixels = torch.randn(2, 3, 16), torch.randn(2, 16, 6, 5)
    distance = outside_box_distance(BOXES.expand(2, 3, 4), (6, 5))
    expected = states
    for layer in refiner.layers:
        expected = _reference_layer(layer, expected, pixels, distance)
    torch.testing.assert_close(refiner(states, pixels, distance), expected)
    assert refiner.layers[0].locality.tolist() == [LOCALITY_INIT] * 4


def test_refiner_reads_the_pixels_inside_the_box() -> None:
    """A query boxed to the top-left quarter barely sees a change of the pixels far outside it
    (bias ~ -100 x distance) and does see one inside; without the bias both reach it."""
    torch.manual_seed(0)
    refiner = MaskRefiner(hidden=16, heads=4, ffn_dim=32, num_layers=1).eval()
    states, pixels = torch.randn(1, 1, 16), torch.randn(1, 16, 8, 8)
    distance = outside_box_distance(BOXES[None, :1], (8, 8))
    outside, inside = pixels.clone(), pixels.clone()
    outside[..., 6:, 6:] += 5.0  # bottom-right corner: >= 0.31 + 0.31 outside the box
    inside[..., :2, :2] += 5.0
    with torch.no_grad():
        base = refiner(states, pixels, distance)
        moved_out = (refiner(states, outside, distance) - base).abs().max()
        moved_in = (refiner(states, inside, distance) - base).abs().max()
        unbiased = (refiner(states, outside) - refiner(states, pixels)).abs().max()
    assert moved_out < 1e-6 and moved_in > 1e-2 and unbiased > 1e-2


def test_mask_decoder_refines_only_the_mask_embeddings() -> None:
    """``refine_layers=1``: the masks are the plain decoder's applied to refined states (box prior
    unchanged), the refiner trains from the mask logits, the boxes stay detached."""
    torch.manual_seed(0)
    plain = MaskDecoder(hidden=16, mask_dim=8, num_skip_levels=1, box_prior=30.0).eval()
    refined = MaskDecoder(
        hidden=16,
        mask_dim=8,
        num_skip_levels=1,
        box_prior=30.0,
        refine_layers=1,
        refine_heads=4,
        refine_ffn_dim=32,
    ).eval()
    missing, unexpected = refined.load_state_dict(plain.state_dict(), strict=False)
    assert not unexpected and missing and all(name.startswith("refiner.") for name in missing)
    states, memory, skips = torch.randn(2, 3, 16), torch.randn(2, 16, 4, 4), [torch.randn(2, 16, 8, 8)]
    boxes = BOXES.expand(2, 3, 4).clone().requires_grad_(True)
    masks, semantic = refined(states, memory, skips, boxes)
    pixels = refined.pixel_embedding(memory, skips)
    distance = outside_box_distance(boxes.detach(), (8, 8))
    expected, expected_semantic = plain(refined.refiner(states, pixels, distance), memory, skips, boxes)
    torch.testing.assert_close(masks, expected)
    torch.testing.assert_close(semantic, expected_semantic)
    masks.sum().backward()
    assert boxes.grad is None
    grads = [p.grad for p in refined.refiner.parameters()]
    assert all(g is not None for g in grads) and any(g.abs().sum() > 0 for g in grads)
    assert plain.refiner is None and sum(p.numel() for p in plain.parameters()) < sum(
        p.numel() for p in refined.parameters()
    )
    with pytest.raises(ValueError, match="refine_layers must be >= 0"):
        MaskDecoder(hidden=16, mask_dim=8, num_skip_levels=1, refine_layers=-1)
    with pytest.raises(ValueError, match="at least one layer"):
        MaskRefiner(hidden=16, heads=4, ffn_dim=32, num_layers=0)
