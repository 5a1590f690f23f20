"""Perceiver resampler and gated memory cross-attention."""

from __future__ import annotations

import copy

import pytest
import torch

from sam3spec.models.memory import MemoryCrossAttention, PerceiverResampler, context_tokens


@pytest.mark.parametrize(("frames", "size"), [(1, 2), (3, 4), (8, 3)])
def test_resampler_output_is_fixed_size(frames: int, size: int) -> None:
    torch.manual_seed(0)
    resampler = PerceiverResampler(hidden=16, heads=4, ffn_dim=32, num_layers=2, num_latents=64)
    tokens = context_tokens(torch.randn(2, frames, 16, size, size))
    assert tokens.shape == (2, frames * size * size, 16)
    assert resampler(tokens).shape == (2, 64, 16)


def test_context_tokens_distinguish_frames() -> None:
    same = torch.zeros(1, 1, 8, 2, 2).expand(1, 2, 8, 2, 2)
    tokens = context_tokens(same)
    assert not torch.allclose(tokens[0, :4], tokens[0, 4:])  # temporal embedding differs


def test_gate_zero_is_identity_and_gate_nonzero_is_not() -> None:
    torch.manual_seed(0)
    fusion = MemoryCrossAttention(hidden=16, heads=4)
    x, memory = torch.randn(2, 10, 16), torch.randn(2, 64, 16)
    assert torch.equal(fusion(x, memory), x)
    opened = copy.deepcopy(fusion)
    opened.gate.data.fill_(0.5)
    assert not torch.allclose(opened(x, memory), x)
