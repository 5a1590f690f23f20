"""Mask decoder: a top-down pixel decoder, per-query mask embeddings and a semantic head.

The pixel decoder starts from the DETR encoder memory reshaped to its grid (stride 16) and walks
down the finer FPN levels (strides 8, 4): upsample to the finer level's size, add it,
``Conv3x3 + BN + ReLU``; with the stride-16 stage that is 3 convolutions at the seed. BatchNorm
(not SAM 3's GroupNorm) because it folds into the convolution on export and so stays on the
NPU/XNNPACK delegate; GroupNorm falls back to the CPU path.

Masks are ``einsum(mask_embedder(query), instance_proj(pixel_embed))`` at stride 4; the semantic
(union) mask is a 1x1 conv on the pixel embedding. 2.04M parameters at the seed size.

Box prior (``box_prior`` > 0): each query's mask logits are lowered linearly with the distance of a
pixel outside the query's own predicted box, ``-box_prior * distance`` (normalised image units; the
box is detached, so the box losses alone train it). The pixel embedding of a small student carries
little position, so the dot product also fires on other objects that look alike (a "yellow cross"
mask with blobs on the blue cross): on the concept world's held-out split, clipping a session-7
student's masks to its own boxes (+0.05) raised the IoU of its found instances from 0.63 to 0.75
(the teacher's: 0.86 -> 0.88). No parameters; elementwise ops that every export backend lowers.

Upsampling (``upsample`` > 1): the instance and semantic logits leave the model bilinearly
upsampled (``align_corners=False``) by that factor, after the box prior. A student trained against
targets finer than its stride-4 grid (``StageConfig.mask_target_scale``) learns logits whose x2
upsampling matches them; its masks *are* that upsampled grid. Scored instead by resizing the
stride-4 logits to the image in one step (40 -> 160 px), the concept world's tiny student lost
held-out mIoU (0.599 vs 0.636 through 80 x 80; its masks grew a rim: median area 1.15x the
object's), so the factor lives in the model, where every consumer (evaluation, predictor,
export) sees it. No parameters.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from sam3spec.models.attention import MLP
from sam3spec.models.outputs import resize_mask_logits


class ConvNormReLU(nn.Sequential):
    """``Conv3x3 + BatchNorm + ReLU``, width preserved."""

    def __init__(self, channels: int) -> None:
        super().__init__(
            nn.Conv2d(channels, channels, 3, padding=1, bias=False),
            nn.BatchNorm2d(channels),
            nn.ReLU(inplace=True),
        )
        nn.init.kaiming_normal_(self[0].weight, mode="fan_out", nonlinearity="relu")


class MaskDecoder(nn.Module):
    """Pixel decoder + mask embedder + instance projection + semantic head.

    Args:
        hidden: width of the memory, FPN levels and query states.
        mask_dim: mask embedding width.
        num_skip_levels: finer FPN levels the pixel decoder adds (2: strides 8 and 4).
        box_prior: logit penalty per unit of normalised distance outside the query's box (0: off).
        upsample: bilinear upsampling factor of the output logits (1: the stride-4 grid).
    """

    def __init__(
        self,
        hidden: int,
        mask_dim: int,
        num_skip_levels: int,
        box_prior: float = 0.0,
        upsample: int = 1,
    ) -> None:
        super().__init__()
        if box_prior < 0:
            raise ValueError(f"box_prior must be >= 0, got {box_prior}")
        if int(upsample) != upsample or upsample < 1:
            raise ValueError(f"upsample must be a positive integer, got {upsample}")
        self.num_skip_levels = num_skip_levels
        self.box_prior = float(box_prior)
        self.upsample = int(upsample)
        self.stages = nn.ModuleList(ConvNormReLU(hidden) for _ in range(num_skip_levels + 1))
        self.mask_embedder = MLP(hidden, hidden, mask_dim, 3)
        self.instance_proj = nn.Conv2d(hidden, mask_dim, 1)
        self.semantic_head = nn.Conv2d(hidden, 1, 1)

    def pixel_embedding(self, memory_map: torch.Tensor, skips: list[torch.Tensor]) -> torch.Tensor:
        """Top-down pixel decoder.

        Args:
            memory_map: encoder memory as a map ``[B, C, H_e, W_e]``.
            skips: finer FPN levels, coarsest first (e.g. stride 8 then stride 4), ``[B, C, H, W]``.

        Returns:
            ``[B, C, H_f, W_f]`` at the finest skip's resolution.
        """
        if len(skips) != self.num_skip_levels:
            raise ValueError(f"mask decoder expects {self.num_skip_levels} skip levels, got {len(skips)}")
        x = self.stages[0](memory_map)
        for stage, skip in zip(self.stages[1:], skips, strict=True):
            # Resize to the skip's exact size: odd sizes (504 px -> 63 at stride 8) break a plain x2.
            x = stage(F.interpolate(x, size=skip.shape[-2:], mode="nearest") + skip)
        return x

    def forward(
        self,
        query_states: torch.Tensor,
        memory_map: torch.Tensor,
        skips: list[torch.Tensor],
        boxes: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Predict instance and semantic mask logits.

        Args:
            query_states: final decoder states ``[B, Q, C]``.
            memory_map: encoder memory as a map ``[B, C, H_e, W_e]``.
            skips: finer FPN levels, coarsest first.
            boxes: the queries' predicted boxes ``[B, Q, 4]`` normalised xyxy, for the box prior
                (required when ``box_prior`` > 0, ignored otherwise).

        Returns:
            ``(pred_masks [B, Q, H_m, W_m], semantic_seg [B, 1, H_m, W_m])`` logits, ``H_m = upsample
            x H_f``.
        """
        pixels = self.pixel_embedding(memory_map, skips)
        return self.instance_masks(query_states, pixels, boxes), self.semantic(pixels)

    def semantic(self, pixels: torch.Tensor) -> torch.Tensor:
        """Semantic (union) logits ``[B, 1, H_m, W_m]`` from the pixel embedding ``[B, C, H_f, W_f]``."""
        return self._upsampled(self.semantic_head(pixels))

    def instance_masks(
        self, query_states: torch.Tensor, pixels: torch.Tensor, boxes: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Per-query mask logits ``[B, Q, H_m, W_m]`` from states ``[B, Q, C]`` and the pixel
        embedding ``[B, C, H_f, W_f]`` (:meth:`pixel_embedding`; computed once, shared by the final
        and the auxiliary decoder layers), with the box prior when on, then upsampled."""
        if self.box_prior > 0 and boxes is None:
            raise ValueError("the mask decoder's box prior needs the queries' boxes")
        instance = self.instance_proj(pixels)
        mask_embed = self.mask_embedder(query_states)
        masks = torch.einsum("bqc,bchw->bqhw", mask_embed, instance)
        if self.box_prior > 0:
            # The boxes are detached: the box losses alone train them.
            masks = masks - self.box_prior * outside_box_distance(boxes.detach(), pixels.shape[-2:])
        return self._upsampled(masks)

    def _upsampled(self, logits: torch.Tensor) -> torch.Tensor:
        if self.upsample == 1:
            return logits
        # Per map, as the loss and the evaluation resize (resize_mask_logits): a multi-channel
        # interpolate rounds differently in the last bit, and training must not change with it.
        size = (logits.shape[-2] * self.upsample, logits.shape[-1] * self.upsample)
        return resize_mask_logits(logits, size)


def outside_box_distance(boxes: torch.Tensor, size: tuple[int, int] | torch.Size) -> torch.Tensor:
    """Distance of each mask cell's centre outside each box, in normalised image units.

    Args:
        boxes: ``[B, Q, 4]`` normalised xyxy.
        size: mask grid ``(h, w)``; cell ``(i, j)`` has centre ``((j + 0.5) / w, (i + 0.5) / h)``,
            the centres that bilinear upsampling with ``align_corners=False`` assumes.

    Returns:
        ``[B, Q, h, w]``: 0 inside a box, else the L1 distance to it (x and y excess summed).
    """
    height, width = int(size[0]), int(size[1])
    xs = (torch.arange(width, device=boxes.device, dtype=boxes.dtype) + 0.5) / width
    ys = (torch.arange(height, device=boxes.device, dtype=boxes.dtype) + 0.5) / height
    x0, y0, x1, y1 = (boxes[..., index, None] for index in range(4))  # [B, Q, 1]
    dx = F.relu(x0 - xs) + F.relu(xs - x1)  # [B, Q, w]
    dy = F.relu(y0 - ys) + F.relu(ys - y1)  # [B, Q, h]
    return dy[..., :, None] + dx[..., None, :]
