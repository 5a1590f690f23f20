"""Image encoder: a timm RepViT backbone (``features_only``) + per-level FPN channel adapters.

RepViT-M2.3 gives 80/160/320/640 channels at strides 4/8/16/32 (22.40M parameters); the adapters
bring every level to ``fpn_dim`` (256) channels (2.67M), 25.07M in all. Each level also gets a
parameter-free 2-D sine position embedding.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from sam3spec.models.position import grid_position_embedding
from sam3spec.models.weights import LoadReport, apply_state_dict, read_state_dict


@dataclass
class ImageFeatures:
    """Multi-scale image features, finest level first.

    Attributes:
        features: per level ``[B, fpn_dim, H_l, W_l]`` (strides 4, 8, 16, 32).
        pos: per level sine position embedding ``[B, fpn_dim, H_l, W_l]``.
    """

    features: list[torch.Tensor]
    pos: list[torch.Tensor]


class FpnAdapter(nn.Sequential):
    """``Conv1x1(c -> d) + BN + ReLU + Conv3x3(d -> d) + BN + ReLU`` for one pyramid level.

    The convolutions carry no bias because a BatchNorm follows; on export BN folds into them.

    Args:
        in_channels: backbone channels of the level.
        out_channels: FPN width.
    """

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__(
            nn.Conv2d(in_channels, out_channels, 1, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True),
            nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True),
        )
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")


class ImageEncoder(nn.Module):
    """Backbone + FPN adapters + sine position embeddings.

    Args:
        backbone: a module mapping ``[B, 3, H, W]`` to a list of feature maps (a timm
            ``features_only`` model).
        in_channels: channels of each backbone level, finest first.
        fpn_dim: output channels of every level.
    """

    def __init__(self, backbone: nn.Module, in_channels: Sequence[int], fpn_dim: int) -> None:
        super().__init__()
        self.backbone = backbone
        self.in_channels = tuple(in_channels)
        self.fpn_dim = fpn_dim
        self.adapters = nn.ModuleList(FpnAdapter(c, fpn_dim) for c in self.in_channels)

    @property
    def num_levels(self) -> int:
        """Number of pyramid levels."""
        return len(self.in_channels)

    def forward(self, pixel_values: torch.Tensor) -> ImageFeatures:
        """Encode a normalised image batch.

        Args:
            pixel_values: ``[B, 3, H, W]`` float, normalised.

        Returns:
            :class:`ImageFeatures` with ``num_levels`` levels at strides 4/8/16/32.
        """
        levels = self.backbone(pixel_values)
        features = [adapter(level) for adapter, level in zip(self.adapters, levels, strict=True)]
        return ImageFeatures(features=features, pos=[grid_position_embedding(f) for f in features])

    def reparameterize(self) -> ImageEncoder:
        """Fuse the backbone's re-parameterisable branches (RepViT) for deployment, in place.

        The fused backbone computes the same function (to ~1e-5) with fewer, plain convolutions;
        it cannot be trained further. Returns ``self``.
        """
        from timm.utils import reparameterize_model

        self.backbone = reparameterize_model(self.backbone, inplace=True)
        return self


def create_backbone(
    name: str,
    embed_dim: Sequence[int] | None = None,
    depth: Sequence[int] | None = None,
    online: bool = False,
) -> tuple[nn.Module, tuple[int, ...]]:
    """Build a timm ``features_only`` backbone.

    Args:
        name: registered timm model name (``repvit_m2_3``, ``repvit_m0_9``, ...).
        embed_dim: per-stage width override (tiny presets), or None for timm's.
        depth: per-stage depth override, or None for timm's.
        online: download timm's pretrained weights from the hub (needs network).

    Returns:
        ``(backbone, channels per level)``.
    """
    import timm

    kwargs: dict[str, object] = {}
    if embed_dim is not None:
        kwargs["embed_dim"] = tuple(embed_dim)
    if depth is not None:
        kwargs["depth"] = tuple(depth)
    backbone = timm.create_model(name, pretrained=online, features_only=True, **kwargs)
    return backbone, tuple(backbone.feature_info.channels())


def load_backbone_weights(backbone: nn.Module, path: str | Path) -> LoadReport:
    """Load a local timm checkpoint (classification or ``features_only`` layout) into ``backbone``.

    A classification checkpoint names stages ``stages.N.``; the ``features_only`` wrapper
    flattens them to ``stages_N.``. The classifier head is ignored.

    Returns:
        A :class:`LoadReport`; its ``missing`` list is empty for a complete checkpoint.
    """
    report = LoadReport(source=str(path))
    state: dict[str, torch.Tensor] = {}
    for key, value in read_state_dict(path).items():
        if key.startswith(("head.", "head_dist.", "fc.", "classifier.")):
            report.ignored.append(key)
            continue
        state[re.sub(r"^stages\.(\d+)\.", r"stages_\1.", key)] = value
    return apply_state_dict(backbone, state, report)


def randomise_batch_norms(module: nn.Module, seed: int = 0) -> nn.Module:
    """Give every BatchNorm2d of ``module`` random affine parameters and running statistics.

    timm zero-initialises the last BN of each RepViT residual MLP, so on random weights a fused
    model has millions of exactly-zero weights: fusion or quantization errors then look tiny and
    compressed files shrink (docs/DECISIONS.md "Student architecture"). Call this before measuring either on random weights.
    Returns ``module``.
    """
    generator = torch.Generator().manual_seed(seed)
    for layer in module.modules():
        if isinstance(layer, nn.BatchNorm2d):
            count = layer.num_features
            layer.weight.data = torch.rand(count, generator=generator) + 0.5
            layer.bias.data = torch.randn(count, generator=generator) * 0.1
            layer.running_mean = torch.randn(count, generator=generator) * 0.1
            layer.running_var = torch.rand(count, generator=generator) + 0.5
    return module
