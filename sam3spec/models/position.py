"""Parameter-free sine position embeddings (DETR style) for grids, boxes, points and frames.

Grid cells are embedded at their *centres* in normalised [0, 1] coordinates, with the same
function used for point and box coordinates, so a point prompt at ``(x, y)`` gets exactly the
embedding of the feature-map cell it falls in.
"""

from __future__ import annotations

import math

import torch


def sine_embedding(coords: torch.Tensor, num_feats: int, temperature: float = 10000.0) -> torch.Tensor:
    """Embed each coordinate with ``num_feats`` interleaved sines and cosines.

    Args:
        coords: ``[..., D]`` coordinates, normalised to [0, 1] (scaled by 2*pi inside).
        num_feats: features per coordinate (even).
        temperature: frequency base.

    Returns:
        ``[..., D * num_feats]``: coordinate 0's features first, then coordinate 1's, ...
    """
    if num_feats % 2:
        raise ValueError(f"num_feats must be even, got {num_feats}")
    dim_t = torch.arange(num_feats, dtype=torch.float32, device=coords.device)
    dim_t = temperature ** (2 * torch.div(dim_t, 2, rounding_mode="floor") / num_feats)
    pos = coords.float()[..., None] * (2 * math.pi) / dim_t  # [..., D, F]
    pos = torch.stack((pos[..., 0::2].sin(), pos[..., 1::2].cos()), dim=-1).flatten(-2)
    return pos.flatten(-2).to(coords.dtype if coords.is_floating_point() else torch.float32)


def grid_position_embedding(feature: torch.Tensor) -> torch.Tensor:
    """2-D sine embedding of a feature map's grid (y features first, then x, as DETR).

    Args:
        feature: ``[B, C, H, W]``; only its shape, device and dtype are used. C must be even.

    Returns:
        ``[B, C, H, W]`` (an expanded view over the batch).
    """
    batch, channels, height, width = feature.shape
    if channels % 2:
        raise ValueError(f"a 2-D sine embedding needs an even channel count, got {channels}")
    device = feature.device
    ys = (torch.arange(height, device=device, dtype=torch.float32) + 0.5) / height
    xs = (torch.arange(width, device=device, dtype=torch.float32) + 0.5) / width
    pos_y = sine_embedding(ys[:, None], channels // 2)  # [H, C/2]
    pos_x = sine_embedding(xs[:, None], channels // 2)  # [W, C/2]
    pos = torch.cat(
        (pos_y[:, None, :].expand(height, width, -1), pos_x[None, :, :].expand(height, width, -1)), dim=-1
    )  # [H, W, C]
    return pos.permute(2, 0, 1)[None].to(feature.dtype).expand(batch, -1, -1, -1)


def frame_position_embedding(
    num_frames: int, channels: int, device: torch.device | None = None
) -> torch.Tensor:
    """Transformer-style sine embedding of frame *age* (0 = newest frame).

    Frames are given oldest first; counting from the newest frame keeps its embedding the same
    whatever the number of context frames.

    Args:
        num_frames: T.
        channels: embedding width (even).
        device: where to build it.

    Returns:
        ``[T, channels]``.
    """
    age = torch.arange(num_frames - 1, -1, -1, device=device, dtype=torch.float32)
    # Integer positions: divide out the 2*pi of sine_embedding so frequencies match Vaswani et al.
    return sine_embedding(age[:, None] / (2 * math.pi), channels)
