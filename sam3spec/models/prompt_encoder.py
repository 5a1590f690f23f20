"""Geometric prompt encoder: points and boxes -> prompt tokens.

Each prompt becomes one token: a sine embedding of its coordinates (points: x, y; boxes: cx, cy,
w, h) through a linear layer, plus a label embedding (positive / negative), a type embedding
(point / box) and the image feature bilinearly sampled at the point or box centre, then
LayerNorm + Linear. Labels use -1 for padding, which only sets the padding mask, so a batch can
mix prompt counts without any value-dependent control flow.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from sam3spec.boxes import boxes_xyxy_to_cxcywh
from sam3spec.models.attention import xavier_init
from sam3spec.models.position import sine_embedding

POINT, BOX = 0, 1  # rows of the type embedding
PADDING_LABEL = -1


def _fill_padding(coords: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Replace padded entries by 0.5: a NaN filler would leak through ``0 * NaN`` in attention."""
    return torch.where(labels[..., None] == PADDING_LABEL, torch.full_like(coords, 0.5), coords)


class PromptEncoder(nn.Module):
    """Encode point and box prompts into tokens of width ``hidden``.

    Args:
        hidden: token width (also the channel count of the sampled image features).
    """

    def __init__(self, hidden: int) -> None:
        super().__init__()
        if hidden % 4:
            raise ValueError(f"hidden must be divisible by 4 for the box sine embedding, got {hidden}")
        self.hidden = hidden
        self.point_proj = nn.Linear(hidden, hidden)  # sine(x, y): 2 x hidden/2 features
        self.box_proj = nn.Linear(2 * hidden, hidden)  # sine(cx, cy, w, h): 4 x hidden/2 features
        self.label_embed = nn.Embedding(2, hidden)  # 0 negative, 1 positive
        self.type_embed = nn.Embedding(2, hidden)  # POINT, BOX
        self.feature_proj = nn.Linear(hidden, hidden)
        self.norm = nn.LayerNorm(hidden)
        self.out_proj = nn.Linear(hidden, hidden)
        for layer in (self.point_proj, self.box_proj, self.feature_proj, self.out_proj):
            xavier_init(layer)
        nn.init.normal_(self.label_embed.weight, std=0.02)
        nn.init.normal_(self.type_embed.weight, std=0.02)

    def _sample(self, feature_map: torch.Tensor, xy: torch.Tensor) -> torch.Tensor:
        """Bilinear image feature at normalised points ``[B, N, 2]`` -> ``[B, N, hidden]``."""
        grid = (xy * 2 - 1)[:, :, None, :].to(feature_map.dtype)  # [B, N, 1, 2] in [-1, 1]
        sampled = F.grid_sample(feature_map, grid, mode="bilinear", align_corners=False)  # [B, C, N, 1]
        return sampled.squeeze(-1).transpose(1, 2)

    def _tokens(
        self,
        coord_embed: torch.Tensor,
        labels: torch.Tensor,
        centres: torch.Tensor,
        kind: int,
        feature_map: torch.Tensor,
    ) -> torch.Tensor:
        label_embed = self.label_embed(labels.clamp(min=0, max=1).long())
        type_embed = self.type_embed.weight[kind]
        x = coord_embed + label_embed + type_embed + self.feature_proj(self._sample(feature_map, centres))
        return self.out_proj(self.norm(x))

    def forward(
        self,
        feature_map: torch.Tensor,
        points: torch.Tensor | None = None,
        point_labels: torch.Tensor | None = None,
        boxes: torch.Tensor | None = None,
        box_labels: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Encode the geometric prompts of a batch.

        Args:
            feature_map: ``[B, hidden, H, W]`` image features to sample at the prompts.
            points: ``[B, N, 2]`` normalised xy in [0, 1], or None.
            point_labels: ``[B, N]`` 1 positive, 0 negative, -1 padding (None: all positive).
            boxes: ``[B, M, 4]`` normalised xyxy in [0, 1], or None.
            box_labels: ``[B, M]`` 1 positive, 0 negative, -1 padding (None: all positive).

        Returns:
            ``(tokens [B, N + M, hidden], padding_mask [B, N + M])``, points first; the mask
            is True at padding. With neither points nor boxes, N + M = 0.
        """
        batch = feature_map.shape[0]
        tokens = [feature_map.new_zeros(batch, 0, self.hidden)]
        masks = [torch.zeros(batch, 0, dtype=torch.bool, device=feature_map.device)]
        if points is not None:
            if point_labels is None:
                point_labels = torch.ones(points.shape[:2], dtype=torch.long, device=points.device)
            points = _fill_padding(points, point_labels)
            coord_embed = self.point_proj(sine_embedding(points, self.hidden // 2).to(feature_map.dtype))
            tokens.append(self._tokens(coord_embed, point_labels, points, POINT, feature_map))
            masks.append(point_labels == PADDING_LABEL)
        if boxes is not None:
            if box_labels is None:
                box_labels = torch.ones(boxes.shape[:2], dtype=torch.long, device=boxes.device)
            cxcywh = boxes_xyxy_to_cxcywh(_fill_padding(boxes, box_labels))
            coord_embed = self.box_proj(sine_embedding(cxcywh, self.hidden // 2).to(feature_map.dtype))
            tokens.append(self._tokens(coord_embed, box_labels, cxcywh[..., :2], BOX, feature_map))
            masks.append(box_labels == PADDING_LABEL)
        return torch.cat(tokens, dim=1), torch.cat(masks, dim=1)
