"""DETR encoder: fuses the prompt into the image tokens of one pyramid level.

Each layer (pre-norm, as SAM 3's fusion encoder): self-attention over the image tokens with the
sine position embedding added to queries and keys, cross-attention from the image tokens to the
prompt tokens (text + geometry, padding masked), and a feed-forward block. 1.05M parameters per
layer at hidden 256 / FFN 1024; the seed has 3 layers (3.16M).
"""

from __future__ import annotations

import torch
from torch import nn

from sam3spec.models.attention import Attention, FeedForward


class DetrEncoderLayer(nn.Module):
    """One pre-norm encoder layer.

    Args:
        hidden: token width.
        heads: attention heads.
        ffn_dim: feed-forward width.
    """

    def __init__(self, hidden: int, heads: int, ffn_dim: int) -> None:
        super().__init__()
        self.self_attn = Attention(hidden, heads)
        self.prompt_attn = Attention(hidden, heads)
        self.ffn = FeedForward(hidden, ffn_dim)
        self.norm1 = nn.LayerNorm(hidden)
        self.norm2 = nn.LayerNorm(hidden)
        self.norm3 = nn.LayerNorm(hidden)

    def forward(
        self,
        x: torch.Tensor,
        pos: torch.Tensor,
        prompt: torch.Tensor,
        prompt_mask: torch.Tensor,
    ) -> torch.Tensor:
        """``x [B, N, C]``, ``pos [B, N, C]``, ``prompt [B, P, C]``, ``prompt_mask [B, P]`` -> ``[B, N, C]``."""
        y = self.norm1(x)
        q = y + pos
        x = x + self.self_attn(q, q, y)
        y = self.norm2(x)
        x = x + self.prompt_attn(y, prompt, prompt, key_padding_mask=prompt_mask)
        return x + self.ffn(self.norm3(x))


class DetrEncoder(nn.Module):
    """A stack of :class:`DetrEncoderLayer`.

    Args:
        hidden: token width.
        heads: attention heads.
        ffn_dim: feed-forward width.
        num_layers: depth.
    """

    def __init__(self, hidden: int, heads: int, ffn_dim: int, num_layers: int) -> None:
        super().__init__()
        self.layers = nn.ModuleList(DetrEncoderLayer(hidden, heads, ffn_dim) for _ in range(num_layers))

    def forward(
        self,
        image_tokens: torch.Tensor,
        image_pos: torch.Tensor,
        prompt: torch.Tensor,
        prompt_mask: torch.Tensor,
    ) -> torch.Tensor:
        """Fuse the prompt into the image tokens.

        Args:
            image_tokens: ``[B, N, C]`` flattened feature map (N = H*W, row-major).
            image_pos: ``[B, N, C]`` its position embedding.
            prompt: ``[B, P, C]`` prompt tokens.
            prompt_mask: ``[B, P]`` bool, True = padding.

        Returns:
            Encoder memory ``[B, N, C]``.
        """
        x = image_tokens
        for layer in self.layers:
            x = layer(x, image_pos, prompt, prompt_mask)
        return x
