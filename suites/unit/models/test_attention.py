"""Attention, MLP and sine embeddings against brute-force references."""

from __future__ import annotations

import math

import pytest
import torch

from sam3spec.models.attention import MLP, Attention, FeedForward
from sam3spec.models.position import frame_position_embedding, grid_position_embedding, sine_embedding


def brute_force_attention(attn: Attention, q, k, v, bias, pad) -> torch.Tensor:
    """Per batch, per head, per query: softmax over the *valid* keys only, in float64."""
    batch, num_q, _ = q.shape
    qp, kp, vp = (p(x).double() for p, x in ((attn.q_proj, q), (attn.k_proj, k), (attn.v_proj, v)))
    out = torch.zeros(batch, num_q, attn.dim, dtype=torch.float64)
    d = attn.head_dim
    for b in range(batch):
        valid = (~pad[b]).nonzero().flatten()
        for h in range(attn.heads):
            cols = slice(h * d, (h + 1) * d)
            for i in range(num_q):
                scores = torch.stack([qp[b, i, cols] @ kp[b, j, cols] / math.sqrt(d) for j in valid])
                scores = scores + bias[b, h, i, valid].double()
                weights = scores.softmax(0)
                out[b, i, cols] = (weights[:, None] * vp[b, valid, cols]).sum(0)
    return attn.out_proj(out.float())


# With gradients on (training) Attention runs PyTorch's fused kernel, without (inference, export)
# the explicit form: both are checked against the same reference.
PATHS = pytest.mark.parametrize("grad", [True, False], ids=["training-fused", "inference-explicit"])


@PATHS
def test_attention_matches_brute_force_with_bias_and_padding(grad: bool) -> None:
    torch.manual_seed(0)
    attn = Attention(dim=16, heads=4, kv_dim=8)
    q, k, v = torch.randn(2, 5, 16), torch.randn(2, 7, 8), torch.randn(2, 7, 8)
    bias = torch.randn(2, 4, 5, 7)
    pad = torch.tensor([[False] * 7, [False, True, False, True, True, False, True]])
    with torch.set_grad_enabled(grad):
        got = attn(q, k, v, attn_bias=bias, key_padding_mask=pad)
    assert got.requires_grad == grad
    with torch.no_grad():
        expected = brute_force_attention(attn, q, k, v, bias, pad)
    torch.testing.assert_close(got.detach(), expected, atol=1e-5, rtol=1e-5)


def test_attention_training_gradients_match_brute_force() -> None:
    torch.manual_seed(0)
    attn = Attention(dim=16, heads=4, kv_dim=8)
    q, k, v = torch.randn(2, 5, 16), torch.randn(2, 7, 8), torch.randn(2, 7, 8)
    bias = torch.randn(2, 4, 5, 7)
    pad = torch.tensor([[False] * 7, [False, True, False, True, True, False, True]])
    weights = torch.randn(2, 5, 16)
    gradients = []
    for forward in (attn, lambda *a: brute_force_attention(attn, *a)):
        attn.zero_grad()
        (forward(q, k, v, bias, pad) * weights).sum().backward()
        gradients.append([p.grad.clone() for p in attn.parameters()])
    for fused, reference in zip(*gradients, strict=True):
        torch.testing.assert_close(fused, reference, atol=1e-4, rtol=1e-4)


@PATHS
def test_attention_fully_padded_row_is_finite_and_padding_gets_no_weight(grad: bool) -> None:
    torch.manual_seed(0)
    attn = Attention(dim=8, heads=2)
    q, kv = torch.randn(2, 3, 8), torch.randn(2, 4, 8)
    pad = torch.tensor([[True, True, True, True], [False, True, True, True]])
    with torch.set_grad_enabled(grad):
        out = attn(q, kv, kv, key_padding_mask=pad)
        assert torch.isfinite(out).all()
        # Changing padded keys must not change rows that have a valid key.
        kv2 = kv.clone()
        kv2[1, 1:] = 100.0
        torch.testing.assert_close(attn(q, kv2, kv2, key_padding_mask=pad)[1], out[1])


def test_attention_rejects_indivisible_heads() -> None:
    with pytest.raises(ValueError, match="divisible"):
        Attention(dim=10, heads=4)


def test_mlp_and_feed_forward_shapes() -> None:
    assert MLP(6, 12, 3, 3)(torch.randn(2, 5, 6)).shape == (2, 5, 3)
    assert len(MLP(6, 12, 3, 3).layers) == 3
    assert FeedForward(6, 24)(torch.randn(4, 6)).shape == (4, 6)


def test_sine_embedding_reference() -> None:
    coords = torch.tensor([[0.25, 0.5]])
    emb = sine_embedding(coords, 4)
    expected = []
    for c in (0.25, 0.5):
        x = c * 2 * math.pi
        expected += [math.sin(x), math.cos(x), math.sin(x / 100), math.cos(x / 100)]
    torch.testing.assert_close(emb, torch.tensor([expected]))


def test_point_embedding_equals_grid_cell_embedding() -> None:
    grid = grid_position_embedding(torch.zeros(1, 8, 4, 6))  # [1, C, H, W]
    row, col = 2, 3
    point_yx = torch.tensor([(row + 0.5) / 4, (col + 0.5) / 6])
    torch.testing.assert_close(grid[0, :, row, col], sine_embedding(point_yx[None], 4)[0])


def test_frame_embedding_newest_frame_is_stable() -> None:
    torch.testing.assert_close(frame_position_embedding(3, 8)[-1], frame_position_embedding(8, 8)[-1])
