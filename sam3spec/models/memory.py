"""Video memory: a Perceiver resampler to a fixed-size memory, and gated memory cross-attention.

:class:`PerceiverResampler` compresses the tokens of any number of context frames into K (64)
latents, so the memory costs the same whatever the video length (EdgeTAM's 2-D Perceiver idea).
:class:`MemoryCrossAttention` lets the image tokens of the current frame read that memory through
a ``tanh(gate)`` residual with the gate at 0, so a fresh module leaves image behaviour exactly
unchanged until it is trained (Flamingo's gated cross-attention).

The plan names ``nn.MultiheadAttention`` (docs/PLAN.md 3.1); both use :class:`~sam3spec.models.attention.Attention`
instead, which has the same parameter count (4 projections with bias) but separate
``nn.Linear`` projections and an explicit softmax that ExecuTorch/XNNPACK delegates fully
(~50x faster than MHA there) and torchao can quantize.
"""

from __future__ import annotations

import torch
from torch import nn

from sam3spec.models.attention import Attention, FeedForward
from sam3spec.models.position import frame_position_embedding, grid_position_embedding


def context_tokens(context_features: torch.Tensor) -> torch.Tensor:
    """Flatten context frame maps to tokens with spatial and temporal sine embeddings added.

    Args:
        context_features: ``[B, T, C, h, w]``, frames oldest first.

    Returns:
        ``[B, T*h*w, C]``.
    """
    batch, frames, channels, height, width = context_features.shape
    maps = context_features.flatten(0, 1)  # [B*T, C, h, w]
    spatial = grid_position_embedding(maps)  # [B*T, C, h, w]
    temporal = frame_position_embedding(frames, channels, device=maps.device).to(maps.dtype)  # [T, C]
    tokens = (maps + spatial).flatten(2).transpose(1, 2).reshape(batch, frames, height * width, channels)
    return (tokens + temporal[None, :, None, :]).reshape(batch, frames * height * width, channels)


class PerceiverLayer(nn.Module):
    """Pre-norm cross-attention (latents -> context) + pre-norm feed-forward.

    Args:
        hidden: width.
        heads: attention heads.
        ffn_dim: feed-forward width.
    """

    def __init__(self, hidden: int, heads: int, ffn_dim: int) -> None:
        super().__init__()
        self.latent_norm = nn.LayerNorm(hidden)
        self.context_norm = nn.LayerNorm(hidden)
        self.attn = Attention(hidden, heads)
        self.ffn_norm = nn.LayerNorm(hidden)
        self.ffn = FeedForward(hidden, ffn_dim)

    def forward(self, latents: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        """``latents [B, K, C]``, ``context [B, N, C]`` -> ``[B, K, C]``."""
        context = self.context_norm(context)
        latents = latents + self.attn(self.latent_norm(latents), context, context)
        return latents + self.ffn(self.ffn_norm(latents))


class PerceiverResampler(nn.Module):
    """Resample any number of context tokens to ``num_latents`` memory tokens.

    Args:
        hidden: width.
        heads: attention heads.
        ffn_dim: feed-forward width.
        num_layers: depth.
        num_latents: K, the memory size.
    """

    def __init__(self, hidden: int, heads: int, ffn_dim: int, num_layers: int, num_latents: int) -> None:
        super().__init__()
        self.latents = nn.Parameter(torch.empty(num_latents, hidden))
        nn.init.trunc_normal_(self.latents, std=0.02)
        self.layers = nn.ModuleList(PerceiverLayer(hidden, heads, ffn_dim) for _ in range(num_layers))
        self.norm = nn.LayerNorm(hidden)

    def forward(self, context: torch.Tensor) -> torch.Tensor:
        """Compress context tokens.

        Args:
            context: ``[B, N_ctx, C]`` tokens (any N_ctx >= 1), position embeddings included
                (see :func:`context_tokens`).

        Returns:
            memory ``[B, K, C]``.
        """
        latents = self.latents[None].expand(context.shape[0], -1, -1)
        for layer in self.layers:
            latents = layer(latents, context)
        return self.norm(latents)


class MemoryCrossAttention(nn.Module):
    """Gated pre-norm cross-attention from vision tokens to the memory.

    ``out = x + tanh(gate) * attn(norm(x), memory, memory)``, gate initialised to 0. The memory
    is already normalised by the resampler's final norm, so only the queries get a norm here.

    Args:
        hidden: width.
        heads: attention heads.
    """

    def __init__(self, hidden: int, heads: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(hidden)
        self.attn = Attention(hidden, heads)
        self.gate = nn.Parameter(torch.zeros(1))

    def forward(self, x: torch.Tensor, memory: torch.Tensor) -> torch.Tensor:
        """``x [B, N, C]`` vision tokens, ``memory [B, K, C]`` -> ``[B, N, C]``."""
        return x + torch.tanh(self.gate) * self.attn(self.norm(x), memory, memory)
