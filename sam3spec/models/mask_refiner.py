"""Query refinement over the pixel embedding, before the mask embedder (Mask2Former-style).

The DETR decoder's queries only ever read the encoder memory (stride 8 or 16), yet their mask
embeddings are dotted with the stride-4 pixel embedding. On the concept world that is where the
tiny student's masks lose: fitting, per instance, the best 64-d embedding on the student's own
pixel map (an oracle that sees the exact mask, with the box prior on the query's own box) reaches
held-out IoU 0.86, where the student's best query reaches 0.75 (docs/NOTES.md, session 12). So
each refinement layer lets every query read the pixel embedding it will be dotted with, the way
Mask2Former's masked attention does, before ``mask_embedder``. Measured there, one layer did not
pay: held-out mIoU 0.643 / 0.633 vs 0.641 / 0.597 (two stage seeds) and the best query's IoU
unchanged at 0.76 (docs/NOTES.md, session 13), so every registered stage leaves it off
(``StudentConfig.mask_refine_layers`` = 0).

Like Mask2Former's masked attention, each query reads mainly its own object: keys outside the
query's predicted box (detached) get an additive bias ``-locality_h * distance`` (normalised image
units, per head ``h``, learned, initialised to :data:`LOCALITY_INIT`), the same distance as the
mask decoder's box prior. A soft bias instead of Mask2Former's hard mask: no thresholding, no
empty-row special case, and only elementwise ops that every export backend lowers.

One layer (post-norm, as the DETR decoder): ``x = LN(x + CrossAttn(x, pixels + pos, pixels,
bias)); x = LN(x + FFN(x))``. Explicit-matmul :class:`~sam3spec.models.attention.Attention` (the
XNNPACK-delegated form).
"""

from __future__ import annotations

import torch
from torch import nn

from sam3spec.models.attention import Attention, FeedForward
from sam3spec.models.position import grid_position_embedding

# Bias per unit of normalised distance outside the box at initialisation: a key 0.1 outside the
# box starts 10 logits down (weight e^-10 of an inside key), so the queries start by reading their
# own box; the per-head scale may learn to look further.
LOCALITY_INIT = 100.0


class MaskRefineLayer(nn.Module):
    """Cross-attention of the queries to the pixel embedding, then a feed-forward block.

    Args:
        hidden: query and pixel width.
        heads: attention heads.
        ffn_dim: feed-forward width.
    """

    def __init__(self, hidden: int, heads: int, ffn_dim: int) -> None:
        super().__init__()
        self.heads = heads
        self.pixel_attn = Attention(hidden, heads)
        self.ffn = FeedForward(hidden, ffn_dim)
        self.norm1 = nn.LayerNorm(hidden)
        self.norm2 = nn.LayerNorm(hidden)
        self.locality = nn.Parameter(torch.full((heads,), LOCALITY_INIT))

    def forward(
        self,
        states: torch.Tensor,
        tokens: torch.Tensor,
        token_pos: torch.Tensor,
        distance: torch.Tensor | None,
    ) -> torch.Tensor:
        """Refine ``states [B, Q, C]`` with pixel ``tokens [B, N, C]`` and their ``token_pos``.

        ``distance`` is ``[B, Q, N]``, each key's distance outside each query's box (None: no bias).
        """
        bias = None if distance is None else -self.locality[None, :, None, None] * distance[:, None]
        states = self.norm1(states + self.pixel_attn(states, tokens + token_pos, tokens, attn_bias=bias))
        return self.norm2(states + self.ffn(states))


class MaskRefiner(nn.Module):
    """A stack of :class:`MaskRefineLayer`.

    Args:
        hidden: query and pixel width.
        heads: attention heads.
        ffn_dim: feed-forward width.
        num_layers: depth (>= 1).
    """

    def __init__(self, hidden: int, heads: int, ffn_dim: int, num_layers: int) -> None:
        super().__init__()
        if num_layers < 1:
            raise ValueError(f"a mask refiner needs at least one layer, got {num_layers}")
        self.layers = nn.ModuleList(MaskRefineLayer(hidden, heads, ffn_dim) for _ in range(num_layers))

    def forward(
        self, states: torch.Tensor, pixels: torch.Tensor, distance: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Queries that have read the pixel embedding.

        Args:
            states: query states ``[B, Q, C]``.
            pixels: pixel embedding ``[B, C, H, W]``.
            distance: ``[B, Q, H, W]`` distance of each pixel outside each query's box
                (:func:`~sam3spec.models.mask_decoder.outside_box_distance`), or None (no locality).

        Returns:
            ``[B, Q, C]``.
        """
        tokens = pixels.flatten(2).transpose(1, 2)  # [B, H*W, C]
        token_pos = grid_position_embedding(pixels).flatten(2).transpose(1, 2)
        flat = None if distance is None else distance.flatten(2)  # [B, Q, H*W]
        for layer in self.layers:
            states = layer(states, tokens, token_pos, flat)
        return states
