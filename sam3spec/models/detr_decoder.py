"""DETR decoder with a presence token, box relative position bias and iterative box refinement.

As SAM 3's decoder: learned content queries and learned reference boxes (cxcywh, stored in
inverse-sigmoid space), plus one extra learned *presence* token that takes part in every
attention and, through ``presence_head``, says whether the prompted concept is in the image at
all. Per layer (post-norm):

1. query position = ``ref_point_head(sine(reference box))``;
2. self-attention over [presence token; queries];
3. cross-attention to the prompt tokens (padding masked);
4. cross-attention to the image memory with a *box relative position bias* (boxRPB, from
   PlainDETR / SAM 3): small MLPs turn the log-scaled distances between each query's reference
   box edges and every grid column (x) and row (y) into per-head biases, summed into
   ``[B, heads, Q, H*W]``; it steers each query to the region of its box without deformable
   attention, and lowers to plain matmuls;
5. feed-forward;
6. the shared box head predicts a delta added to the reference box in inverse-sigmoid space; the
   refined box is the layer's prediction and, detached, the next layer's reference.

Seed: 3 layers, 100 queries, hidden 256, FFN 1024: 4.45M parameters.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from sam3spec.boxes import boxes_cxcywh_to_xyxy, inverse_sigmoid
from sam3spec.models.attention import MLP, Attention, FeedForward
from sam3spec.models.position import sine_embedding

PRESENCE_LOGIT_LIMIT = 10.0  # SAM 3 clamps presence logits to +-10


@dataclass
class DecoderOutput:
    """Per-layer decoder predictions (one list entry per layer, last layer last).

    Attributes:
        states: query states ``[B, Q, C]`` after the final norm.
        boxes: refined boxes ``[B, Q, 4]``, normalised cxcywh in (0, 1).
        presence_logits: ``[B, 1]``.
    """

    states: list[torch.Tensor]
    boxes: list[torch.Tensor]
    presence_logits: list[torch.Tensor]


def _log_scale(deltas: torch.Tensor) -> torch.Tensor:
    # SAM 3's boxRPB scaling: spread small distances, compress large ones (|out| <= ~1.06).
    deltas = deltas * 8
    return torch.sign(deltas) * torch.log2(deltas.abs() + 1.0) / math.log2(8)


# Why a local init: with Xavier-initialised MLPs the bias is ~0, every query's image attention is
# the same global average, and post-norm layers squash the queries' differences away; a student
# trained from scratch then settles on the shortcut "every query predicts the prompt's semantic
# mask" with one shared score (measured on the concept world: decoder states identical across
# queries to 0.2%, every query's probability equal; docs/DECISIONS.md "Query collapse"). Two of each MLP's
# hidden units start as "distance outside the box" on either side, weighted -LOCALITY_INIT into
# every head: a grid cell 0.1 outside a box starts at bias ~-2.2, 0.3 outside at ~-4.7. Same
# architecture and parameters as SAM 3's boxRPB; only the starting point differs.
LOCALITY_INIT = 8.0


def _init_local(mlp: MLP, strength: float) -> None:
    first, last = mlp.layers[0], mlp.layers[-1]
    with torch.no_grad():
        first.weight[:2].zero_()
        first.bias[:2].zero_()
        first.weight[0, 0] = -1.0  # relu(-(cell - left edge)): the cell lies before the box
        first.weight[1, 1] = 1.0  # relu(cell - right edge): the cell lies after the box
        last.weight[:, :2] = -strength


class BoxRelativePositionBias(nn.Module):
    """Per-head attention bias from query reference boxes to an image grid (boxRPB).

    Args:
        hidden: width of the two small MLPs.
        heads: attention heads (one bias per head).
        locality: initial strength of the "stay inside your box" prior (0: plain Xavier init).
    """

    def __init__(self, hidden: int, heads: int, locality: float = LOCALITY_INIT) -> None:
        super().__init__()
        self.mlp_x = MLP(2, hidden, heads, 2)
        self.mlp_y = MLP(2, hidden, heads, 2)
        if locality:
            for mlp in (self.mlp_x, self.mlp_y):
                _init_local(mlp, locality)

    def forward(self, boxes: torch.Tensor, height: int, width: int) -> torch.Tensor:
        """Bias for attending from each box's query to each grid cell.

        Args:
            boxes: ``[B, Q, 4]`` normalised cxcywh.
            height: grid rows H.
            width: grid columns W.

        Returns:
            ``[B, heads, Q, H*W]`` (row-major grid order, as ``flatten(2)`` of a feature map).
        """
        xyxy = boxes_cxcywh_to_xyxy(boxes)
        xs = (torch.arange(width, device=boxes.device, dtype=boxes.dtype) + 0.5) / width
        ys = (torch.arange(height, device=boxes.device, dtype=boxes.dtype) + 0.5) / height
        dx = xs[None, None, :, None] - xyxy[:, :, None, 0::2]  # [B, Q, W, 2]: to left, right edge
        dy = ys[None, None, :, None] - xyxy[:, :, None, 1::2]  # [B, Q, H, 2]: to top, bottom edge
        bias_x = self.mlp_x(_log_scale(dx))  # [B, Q, W, heads]
        bias_y = self.mlp_y(_log_scale(dy))  # [B, Q, H, heads]
        bias = bias_y[:, :, :, None, :] + bias_x[:, :, None, :, :]  # [B, Q, H, W, heads]
        return bias.flatten(2, 3).permute(0, 3, 1, 2)


class DetrDecoderLayer(nn.Module):
    """One post-norm decoder layer (self-attn, prompt cross-attn, image cross-attn, FFN).

    Args:
        hidden: token width.
        heads: attention heads.
        ffn_dim: feed-forward width.
    """

    def __init__(self, hidden: int, heads: int, ffn_dim: int) -> None:
        super().__init__()
        self.self_attn = Attention(hidden, heads)
        self.prompt_attn = Attention(hidden, heads)
        self.image_attn = Attention(hidden, heads)
        self.ffn = FeedForward(hidden, ffn_dim)
        self.norm1 = nn.LayerNorm(hidden)
        self.norm2 = nn.LayerNorm(hidden)
        self.norm3 = nn.LayerNorm(hidden)
        self.norm4 = nn.LayerNorm(hidden)

    def forward(
        self,
        x: torch.Tensor,
        pos: torch.Tensor,
        prompt: torch.Tensor,
        prompt_mask: torch.Tensor,
        memory: torch.Tensor,
        memory_pos: torch.Tensor,
        image_bias: torch.Tensor,
    ) -> torch.Tensor:
        """Update ``x [B, T, C]`` (T = 1 presence token + Q queries).

        Args:
            x: token states ``[B, T, C]``.
            pos: their position embedding ``[B, T, C]``.
            prompt: ``[B, P, C]``; prompt_mask ``[B, P]`` True = padding.
            prompt_mask: see ``prompt``.
            memory: image tokens ``[B, N, C]``; memory_pos their position ``[B, N, C]``.
            memory_pos: see ``memory``.
            image_bias: ``[B, heads, T, N]`` additive bias for the image cross-attention.
        """
        q = x + pos
        x = self.norm1(x + self.self_attn(q, q, x))
        x = self.norm2(x + self.prompt_attn(x + pos, prompt, prompt, key_padding_mask=prompt_mask))
        x = self.norm3(x + self.image_attn(x + pos, memory + memory_pos, memory, attn_bias=image_bias))
        return self.norm4(x + self.ffn(x))


def grid_reference_boxes(num_queries: int) -> torch.Tensor:
    """Reference boxes tiling the image on a near-square grid, ``[Q, 4]`` cxcywh in (0, 1)."""
    cols = math.ceil(math.sqrt(num_queries))
    rows = math.ceil(num_queries / cols)
    index = torch.arange(num_queries)
    cx = ((index % cols).float() + 0.5) / cols
    cy = (torch.div(index, cols, rounding_mode="floor").float() + 0.5) / rows
    return torch.stack((cx, cy, torch.full_like(cx, 1 / cols), torch.full_like(cy, 1 / rows)), dim=-1)


class DetrDecoder(nn.Module):
    """Query decoder with presence token, boxRPB and iterative box refinement.

    Args:
        hidden: token width.
        heads: attention heads.
        ffn_dim: feed-forward width.
        num_layers: depth.
        num_queries: object queries Q.
    """

    def __init__(self, hidden: int, heads: int, ffn_dim: int, num_layers: int, num_queries: int) -> None:
        super().__init__()
        if hidden % 4:
            raise ValueError(f"hidden must be divisible by 4 for the box sine embedding, got {hidden}")
        self.hidden = hidden
        self.heads = heads
        self.num_queries = num_queries
        self.layers = nn.ModuleList(DetrDecoderLayer(hidden, heads, ffn_dim) for _ in range(num_layers))
        self.query_embed = nn.Embedding(num_queries, hidden)
        self.presence_token = nn.Embedding(1, hidden)
        # Learned reference boxes in inverse-sigmoid space, initialised to tile the image.
        self.reference_boxes = nn.Parameter(inverse_sigmoid(grid_reference_boxes(num_queries)))
        self.ref_point_head = MLP(2 * hidden, hidden, hidden, 2)  # sine(cx, cy, w, h) -> query pos
        self.box_rpb = BoxRelativePositionBias(hidden, heads)
        self.box_head = MLP(hidden, hidden, 4, 3)
        self.presence_head = MLP(hidden, hidden, 1, 3)
        self.norm = nn.LayerNorm(hidden)
        self.presence_norm = nn.LayerNorm(hidden)
        # Near-zero (not exactly zero) last box layer: the first predictions are the reference
        # boxes, yet gradients reach the earlier box-head layers from the first step.
        nn.init.normal_(self.box_head.layers[-1].weight, std=1e-3)
        nn.init.zeros_(self.box_head.layers[-1].bias)

    def forward(
        self,
        prompt: torch.Tensor,
        prompt_mask: torch.Tensor,
        memory: torch.Tensor,
        memory_pos: torch.Tensor,
        spatial_shape: tuple[int, int],
    ) -> DecoderOutput:
        """Decode object queries against the prompt and the image memory.

        Args:
            prompt: prompt tokens ``[B, P, C]``.
            prompt_mask: ``[B, P]`` bool, True = padding.
            memory: encoder memory ``[B, N, C]``, N = H*W row-major.
            memory_pos: its position embedding ``[B, N, C]``.
            spatial_shape: ``(H, W)`` of the memory grid.

        Returns:
            :class:`DecoderOutput` with one entry per layer.
        """
        batch = memory.shape[0]
        height, width = spatial_shape
        queries = self.query_embed.weight[None].expand(batch, -1, -1)
        presence = self.presence_token.weight[None].expand(batch, -1, -1)
        x = torch.cat((presence, queries), dim=1)  # [B, 1 + Q, C]
        # The presence token has no box: zero position and zero image bias.
        presence_pos = memory.new_zeros(batch, 1, self.hidden)
        presence_bias = memory.new_zeros(batch, self.heads, 1, memory.shape[1])
        reference = self.reference_boxes.sigmoid()[None].expand(batch, -1, -1)  # [B, Q, 4]
        output = DecoderOutput(states=[], boxes=[], presence_logits=[])
        for layer in self.layers:
            query_pos = self.ref_point_head(sine_embedding(reference, self.hidden // 2))
            pos = torch.cat((presence_pos, query_pos), dim=1)
            bias = torch.cat((presence_bias, self.box_rpb(reference, height, width)), dim=2)
            x = layer(x, pos, prompt, prompt_mask, memory, memory_pos, bias)
            states = self.norm(x[:, 1:])
            boxes = (inverse_sigmoid(reference) + self.box_head(states)).sigmoid()
            presence_logit = self.presence_head(self.presence_norm(x[:, 0]))
            output.states.append(states)
            output.boxes.append(boxes)
            output.presence_logits.append(presence_logit.clamp(-PRESENCE_LOGIT_LIMIT, PRESENCE_LOGIT_LIMIT))
            reference = boxes.detach()  # as DETR refinement: no gradient through earlier layers' boxes
        return output
