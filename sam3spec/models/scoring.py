"""Dot-product scoring (SAM 3): how well each query matches the prompt.

The prompt tokens pass a residual feed-forward block with LayerNorm, are mean-pooled over the
valid (non-padding) tokens and projected; the query states are projected; the logit is their dot
product over ``sqrt(hidden)``, clamped to +-12 as SAM 3 does. 0.66M parameters at the seed size.
"""

from __future__ import annotations

import torch
from torch import nn

from sam3spec.models.attention import FeedForward, xavier_init

LOGIT_LIMIT = 12.0


class DotProductScoring(nn.Module):
    """Query-vs-prompt logits.

    Args:
        hidden: width of query states and prompt tokens.
        ffn_dim: width of the prompt feed-forward block.
    """

    def __init__(self, hidden: int, ffn_dim: int) -> None:
        super().__init__()
        self.scale = hidden**-0.5
        self.prompt_mlp = FeedForward(hidden, ffn_dim)
        self.prompt_norm = nn.LayerNorm(hidden)
        self.prompt_proj = nn.Linear(hidden, hidden)
        self.hs_proj = nn.Linear(hidden, hidden)
        xavier_init(self.prompt_proj)
        xavier_init(self.hs_proj)

    def forward(
        self, query_states: torch.Tensor, prompt: torch.Tensor, prompt_mask: torch.Tensor
    ) -> torch.Tensor:
        """Score queries against the prompt.

        Args:
            query_states: ``[B, Q, C]`` decoder states.
            prompt: ``[B, P, C]`` prompt tokens.
            prompt_mask: ``[B, P]`` bool, True = padding.

        Returns:
            logits ``[B, Q]`` in [-12, 12].
        """
        prompt = self.prompt_norm(prompt + self.prompt_mlp(prompt))
        valid = (~prompt_mask).to(prompt.dtype)[..., None]  # [B, P, 1]
        # Masked mean; clamp keeps an all-padding prompt finite (it pools to zeros).
        pooled = (prompt * valid).sum(dim=1) / valid.sum(dim=1).clamp(min=1.0)  # [B, C]
        prompt_vector = self.prompt_proj(pooled)
        logits = (self.hs_proj(query_states) @ prompt_vector[:, :, None]).squeeze(-1) * self.scale
        return logits.clamp(-LOGIT_LIMIT, LOGIT_LIMIT)
