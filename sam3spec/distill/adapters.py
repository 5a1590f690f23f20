"""Feature adaptation between teacher and student, for the FPN and DETR-encoder feature losses.

**Sizes.** The student's FPN levels are at strides 4 / 8 / 16 / 32 of its input (504 px:
126, 63, 32, 16; 160 px: 40, 20, 10, 5). SAM 3's levels are at 4x / 2x / 1x / 0.5x of its ViT
grid (1008 px, patch 14: 288, 144, 72, 36; the concept-world teacher at 160 px, patch 8: 80, 40,
20, 10). Level ``l`` of one is level ``l`` of the other (relative to the image they are within
14% of each other: strides 3.5 / 7 / 14 / 28 vs 4 / 8 / 16 / 32), so the teacher's level ``l`` is
**resized to the student's level-``l`` grid** (area average when shrinking, bilinear when enlarging) and compared
there. Both see the same image geometry (the teacher gets the same letterboxed square), so
positions agree. The DETR encoder output is a token sequence on one grid (SAM 3: the 1x level,
72 x 72; student: stride 16): the teacher's tokens are reshaped to its grid and resized the same way.

**Text.** SAM 3 and the student tokenise with the same CLIP BPE, so token ``i`` of a prompt is the
same word for both: text tokens are compared position by position over the real tokens (a
linear projection where widths differ). The plan's student inherits MobileCLIP's pretrained text
tower and does not need this loss; the concept-world student's text tower starts from random
weights, and without it the colour words' features stay alike (see ``stages.py``).

**Channels.** Resizing never mixes channels; when the widths differ (the tiny student's 64 vs the
concept-world teacher's 48) a learned 1x1 projection *on the student side* maps student channels
to the teacher's (FitNets' regressor). It trains with the student during Phase 1 and is dropped
afterwards (it is not part of the exported model). With equal widths (seed student 256 vs SAM 3
256) the projection is the identity, so the loss compares raw features.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from sam3spec.config import StudentConfig


@dataclass(frozen=True)
class StudentGeometry:
    """Grid sizes of the student at one input resolution.

    Each stride-2 stage maps a side ``n`` to ``ceil(n / 2)`` (RepViT's padded 3x3 convolutions):
    504 px gives 126, 63, 32, 16.

    Attributes:
        resolution: square input side.
        encoder_level: FPN level the DETR encoder reads (student config ``detr.encoder_level``).
        num_levels: FPN levels.
        mask_scale: mask and semantic targets are kept at ``mask_scale x`` the student's mask
            grid (:attr:`mask_target_size`; see ``StageConfig.mask_target_scale``).
    """

    resolution: int
    encoder_level: int = 2
    num_levels: int = 4
    mask_scale: int = 1

    @classmethod
    def of(cls, config: StudentConfig, resolution: int | None = None, mask_scale: int = 1) -> StudentGeometry:
        """The geometry of a student built from ``config`` at ``resolution`` (default: the
        config's ``image_size``)."""
        return cls(
            config.image_size if resolution is None else resolution,
            config.detr.encoder_level,
            mask_scale=mask_scale,
        )

    def __post_init__(self) -> None:
        if self.resolution < 32:
            raise ValueError(f"student resolution must be >= 32, got {self.resolution}")
        if self.mask_scale < 1:
            raise ValueError(f"mask_scale must be >= 1, got {self.mask_scale}")

    @property
    def level_sizes(self) -> list[tuple[int, int]]:
        """``(h, w)`` of each FPN level (strides 4, 8, 16, 32)."""
        sizes, side = [], math.ceil(math.ceil(self.resolution / 2) / 2)
        for _ in range(self.num_levels):
            sizes.append((side, side))
            side = math.ceil(side / 2)
        return sizes

    @property
    def mask_size(self) -> tuple[int, int]:
        """Mask logits side (the stride-4 level)."""
        return self.level_sizes[0]

    @property
    def mask_target_size(self) -> tuple[int, int]:
        """Side of the mask / semantic targets: :attr:`mask_size` times ``mask_scale``."""
        height, width = self.mask_size
        return height * self.mask_scale, width * self.mask_scale

    @property
    def encoder_size(self) -> tuple[int, int]:
        return self.level_sizes[self.encoder_level]


def resize_map(maps: torch.Tensor, size: Sequence[int]) -> torch.Tensor:
    """Resize ``[B, C, H, W]`` to ``size``; identity when equal.

    Shrinking averages the covered area (adaptive average pooling: a mask probability becomes the
    covered fraction, exactly for integer factors); enlarging is bilinear.
    """
    size = (int(size[0]), int(size[1]))
    if tuple(maps.shape[-2:]) == size:
        return maps
    if maps.shape[-2] >= size[0] and maps.shape[-1] >= size[1]:
        return F.adaptive_avg_pool2d(maps.float(), size)
    return F.interpolate(maps.float(), size=size, mode="bilinear", align_corners=False)


def tokens_to_map(tokens: torch.Tensor, grid: Sequence[int]) -> torch.Tensor:
    """``[B, h*w, C]`` tokens (row-major) -> ``[B, C, h, w]``."""
    batch, count, channels = tokens.shape
    height, width = int(grid[0]), int(grid[1])
    if height * width != count:
        raise ValueError(f"{count} tokens do not fill a {height}x{width} grid")
    return tokens.transpose(1, 2).reshape(batch, channels, height, width)


def encoder_grid(count: int, candidates: Sequence[Sequence[int]]) -> tuple[int, int]:
    """The grid among ``candidates`` (e.g. the teacher's FPN level sizes) with ``count`` cells;
    a square grid when none matches."""
    for size in candidates:
        if int(size[0]) * int(size[1]) == count:
            return int(size[0]), int(size[1])
    side = int(round(count**0.5))
    if side * side != count:
        raise ValueError(f"cannot infer the grid of {count} encoder tokens from {list(candidates)}")
    return side, side


class FeatureAdapters(nn.Module):
    """Student-side channel projections for the feature losses (identity where widths match).

    Args:
        student_channels: width of each distilled student FPN level.
        teacher_channels: width of the matching teacher levels.
        student_encoder: student DETR-encoder width.
        teacher_encoder: teacher DETR-encoder width.
        student_text: student prompt-token width, or None when the text-feature loss is off.
        teacher_text: teacher text-token width (with ``student_text``).
    """

    def __init__(
        self,
        student_channels: Sequence[int],
        teacher_channels: Sequence[int],
        student_encoder: int,
        teacher_encoder: int,
        student_text: int | None = None,
        teacher_text: int | None = None,
    ) -> None:
        super().__init__()
        if len(student_channels) != len(teacher_channels):
            raise ValueError(
                f"{len(student_channels)} student levels vs {len(teacher_channels)} teacher levels"
            )
        self.levels = nn.ModuleList(
            nn.Identity() if s == t else nn.Conv2d(s, t, kernel_size=1)
            for s, t in zip(student_channels, teacher_channels, strict=True)
        )
        self.encoder = (
            nn.Identity()
            if student_encoder == teacher_encoder
            else nn.Conv2d(student_encoder, teacher_encoder, 1)
        )
        self.text = _projection("text", student_text, teacher_text, nn.Linear)

    def forward_levels(self, levels: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        """Project ``[B, Cs, H, W]`` student levels to the teacher's widths."""
        return [adapter(level) for adapter, level in zip(self.levels, levels, strict=True)]

    def forward_encoder(self, memory: torch.Tensor, grid: Sequence[int]) -> torch.Tensor:
        """Student encoder tokens ``[B, N, Cs]`` -> ``[B, Ct, h, w]`` on its grid."""
        return self.encoder(tokens_to_map(memory, grid))

    def forward_text(self, tokens: torch.Tensor) -> torch.Tensor:
        """Student text tokens ``[B, L, Cs]`` -> ``[B, L, Ct]``."""
        return _project(self.text, "text", tokens)


def _projection(
    name: str, student: int | None, teacher: int | None, layer: Callable[[int, int], nn.Module]
) -> nn.Module | None:
    """The optional ``student -> teacher`` width adapter of one feature: None when its loss is off
    (``student`` None), identity at equal widths, else ``layer(student, teacher)``."""
    if student is None:
        return None
    if teacher is None:
        raise ValueError(f"student_{name} needs teacher_{name}")
    return nn.Identity() if student == teacher else layer(student, teacher)


def _project(adapter: nn.Module | None, name: str, x: torch.Tensor) -> torch.Tensor:
    if adapter is None:
        raise ValueError(f"these adapters have no {name} projection (built without student_{name})")
    return adapter(x)
