"""Attention, feed-forward and MLP building blocks shared by every student part.

Attention is written out as ``softmax(q k^T / sqrt(d) + bias) v`` with four separate
``nn.Linear`` projections instead of ``nn.MultiheadAttention`` or
``F.scaled_dot_product_attention``. The parameters are the same, but under ExecuTorch/XNNPACK
the explicit form is fully delegated (100 queries x 1056 keys: 4.8 ms, vs 14.9 ms for Linear +
SDPA and 314 ms for ``nn.MultiheadAttention``, whose k/v projection weights are slices of one
``in_proj_weight`` that the partitioner leaves on the CPU), and every projection is an
``nn.Linear`` that torchao can quantize. Training (gradients on) calls
``F.scaled_dot_product_attention`` on the same projections instead: the same function, 10% more
training images/s in an A/B of 60 concept-world Phase 1 steps (docs/DECISIONS.md "Attention in
training"; not visible in a whole main job); inference and export keep the explicit form.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

# Additive bias for padded keys. -1e9 survives fp32 and bf16 (and sums of a few such biases do
# not overflow to -inf, which would turn a fully masked row into NaN); fp16 tops out at 65504,
# so there we fall back to half its most negative value.
_MASK_VALUE = -1e9


def mask_value(dtype: torch.dtype) -> float:
    """The large negative additive bias used for masked keys in ``dtype``."""
    return max(_MASK_VALUE, torch.finfo(dtype).min / 2)


def padding_bias(key_padding_mask: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """Turn a boolean key padding mask into an additive attention bias.

    Args:
        key_padding_mask: ``[B, Nk]`` bool, True where the key is padding.
        dtype: dtype of the attention scores.

    Returns:
        ``[B, 1, 1, Nk]`` with 0 for valid keys and :func:`mask_value` for padding.
    """
    return key_padding_mask[:, None, None, :].to(dtype) * mask_value(dtype)


class Attention(nn.Module):
    """Multi-head attention with explicit matmul + softmax (export friendly).

    A query row whose keys are all padding gets uniform weights over the padding (finite, no
    NaN); a row with at least one valid key gives padding a weight of exactly 0 in fp32.

    Args:
        dim: width of the queries and of the output.
        heads: number of heads; ``dim`` must be divisible by it.
        kv_dim: width of keys and values (default ``dim``).
        bias: whether the projections have a bias.
    """

    def __init__(self, dim: int, heads: int, kv_dim: int | None = None, bias: bool = True) -> None:
        super().__init__()
        if dim % heads:
            raise ValueError(f"attention width {dim} is not divisible by {heads} heads")
        kv_dim = dim if kv_dim is None else kv_dim
        self.dim = dim
        self.heads = heads
        self.head_dim = dim // heads
        self.scale = self.head_dim**-0.5
        self.q_proj = nn.Linear(dim, dim, bias=bias)
        self.k_proj = nn.Linear(kv_dim, dim, bias=bias)
        self.v_proj = nn.Linear(kv_dim, dim, bias=bias)
        self.out_proj = nn.Linear(dim, dim, bias=bias)
        for layer in (self.q_proj, self.k_proj, self.v_proj, self.out_proj):
            xavier_init(layer)

    def _split(self, x: torch.Tensor) -> torch.Tensor:
        batch, tokens, _ = x.shape
        return x.reshape(batch, tokens, self.heads, self.head_dim).transpose(1, 2)

    def forward(
        self,
        query: torch.Tensor,
        key: torch.Tensor,
        value: torch.Tensor,
        attn_bias: torch.Tensor | None = None,
        key_padding_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Attend ``query`` to ``key``/``value``.

        Args:
            query: ``[B, Nq, dim]``.
            key: ``[B, Nk, kv_dim]``.
            value: ``[B, Nk, kv_dim]``.
            attn_bias: optional additive bias broadcastable to ``[B, heads, Nq, Nk]``
                (e.g. ``[B or 1, heads or 1, Nq, Nk]``).
            key_padding_mask: optional ``[B, Nk]`` bool, True = padding (ignored key).

        Returns:
            ``[B, Nq, dim]``.
        """
        batch, num_queries, _ = query.shape
        if torch.is_grad_enabled() and not torch.compiler.is_exporting():
            # Training: PyTorch's fused kernel (same function, faster backward); see the docstring.
            q, k, v = (
                self._split(self.q_proj(query)),
                self._split(self.k_proj(key)),
                self._split(self.v_proj(value)),
            )
            bias = None if attn_bias is None else attn_bias.to(q.dtype)
            if key_padding_mask is not None:
                padding = padding_bias(key_padding_mask, q.dtype)
                bias = padding if bias is None else bias + padding
            out = F.scaled_dot_product_attention(q, k, v, attn_mask=bias, scale=self.scale)
            return self.out_proj(out.transpose(1, 2).reshape(batch, num_queries, self.dim))
        # Scaling q before the matmul is cheaper than scaling the [Nq, Nk] score matrix.
        q = self._split(self.q_proj(query) * self.scale)
        k = self._split(self.k_proj(key))
        v = self._split(self.v_proj(value))
        scores = q @ k.transpose(-2, -1)  # [B, heads, Nq, Nk]
        if attn_bias is not None:
            scores = scores + attn_bias.to(scores.dtype)
        if key_padding_mask is not None:
            scores = scores + padding_bias(key_padding_mask, scores.dtype)
        weights = scores.softmax(dim=-1)
        out = (weights @ v).transpose(1, 2).reshape(batch, num_queries, self.dim)
        return self.out_proj(out)


class FeedForward(nn.Module):
    """Transformer feed-forward block ``Linear -> ReLU -> Linear``.

    Args:
        dim: input and output width.
        hidden: inner width.
    """

    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.fc2 = nn.Linear(hidden, dim)
        xavier_init(self.fc1)
        xavier_init(self.fc2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``[..., dim] -> [..., dim]``."""
        return self.fc2(F.relu(self.fc1(x)))


class MLP(nn.Module):
    """DETR-style multi-layer perceptron with ReLU between layers (none after the last).

    Args:
        in_dim: input width.
        hidden: width of the hidden layers.
        out_dim: output width.
        num_layers: number of ``nn.Linear`` layers (>= 1).
    """

    def __init__(self, in_dim: int, hidden: int, out_dim: int, num_layers: int) -> None:
        super().__init__()
        if num_layers < 1:
            raise ValueError(f"an MLP needs at least one layer, got {num_layers}")
        dims = [in_dim] + [hidden] * (num_layers - 1) + [out_dim]
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(dims[:-1], dims[1:], strict=True))
        for layer in self.layers:
            xavier_init(layer)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``[..., in_dim] -> [..., out_dim]``."""
        last = len(self.layers) - 1
        for index, layer in enumerate(self.layers):
            x = layer(x)
            if index < last:
                x = F.relu(x)
        return x


def xavier_init(layer: nn.Linear) -> None:
    """DETR's initialisation for projections: Xavier-uniform weight, zero bias."""
    nn.init.xavier_uniform_(layer.weight)
    if layer.bias is not None:
        nn.init.zeros_(layer.bias)
