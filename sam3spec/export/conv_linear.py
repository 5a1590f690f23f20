"""1x1 convolutions as ``nn.Linear`` over the channel dimension, so 4-bit weight schemes can take them.

XNNPACK stores 4-bit (grouped) weights only for fully-connected layers; its convolutions take
8-bit or float weights. A 1x1 convolution (stride 1, no padding, no groups) is a Linear applied at
every pixel: on the seed's fused RepViT-M2.3 + FPN, 159 + 4 of them hold 22.36M of the image
encoder's 24.96M parameters. :func:`convs_as_linear` replaces them by :class:`Conv1x1AsLinear`
(flatten to ``[B, H*W, C]``, ``nn.Linear``, back), which torchao's ``8da4w`` then quantizes as
any other Linear (dynamic per-token int8 activations, int4 grouped weights).

A BatchNorm right after a 1x1 convolution (the FPN adapters: ``Conv1x1 + BN + ReLU``) is folded
into it first (:func:`fold_batch_norms`): XNNPACK folds BN into convolutions, not into Linear.

Export-only, applied to the deployment copy; exact up to float rounding.
"""

from __future__ import annotations

import torch
from torch import nn


class Conv1x1AsLinear(nn.Module):
    """A 1x1 ``nn.Conv2d`` computed as ``nn.Linear`` on channels-last data.

    Args:
        conv: the convolution (kernel 1x1, stride 1, padding 0, dilation 1, groups 1); its
            weight ``[out, in, 1, 1]`` is copied as ``[out, in]``, its bias shared.
    """

    def __init__(self, conv: nn.Conv2d) -> None:
        super().__init__()
        if not is_pointwise(conv):
            raise ValueError(f"not a plain 1x1 convolution: {conv}")
        weight = conv.weight
        self.linear = nn.Linear(
            conv.in_channels,
            conv.out_channels,
            bias=conv.bias is not None,
            device=weight.device,
            dtype=weight.dtype,
        )
        with torch.no_grad():
            self.linear.weight.copy_(conv.weight.detach().flatten(1))
            if conv.bias is not None:
                self.linear.bias.copy_(conv.bias.detach())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, C_in, H, W] -> [B, C_out, H, W]``.

        Computed on ``[B, H*W, C]`` (flatten + transpose), not on a channels-last 4-D permute: with
        a 4-D permute between a delegated convolution and the dynamically quantized Linear,
        XNNPACK's channels-last pass leaves the Linear's input without its dynamic quantization
        ("Weight and Input should both be quantized" at lowering); the 3-D form lowers.
        """
        batch, _, height, width = x.shape
        tokens = self.linear(x.flatten(2).transpose(1, 2))
        return tokens.transpose(1, 2).reshape(batch, -1, height, width)


def is_pointwise(module: nn.Module) -> bool:
    """True for a plain 1x1 ``nn.Conv2d`` (stride 1, no padding, no dilation, one group)."""
    return (
        type(module) is nn.Conv2d
        and tuple(module.kernel_size) == (1, 1)
        and tuple(module.stride) == (1, 1)
        and tuple(module.dilation) == (1, 1)
        and module.groups == 1
        and (module.padding == "valid" or tuple(module.padding) in ((0, 0), (0,)))
    )


def fold_batch_norms(module: nn.Module) -> int:
    """Fold every ``BatchNorm2d`` that directly follows a ``Conv2d`` inside an ``nn.Sequential``.

    The convolution takes the BN's affine map (``torch.nn.utils.fusion.fuse_conv_bn_eval``), the BN
    becomes ``nn.Identity``. Eval-mode semantics (running statistics). Returns how many were folded.
    """
    from torch.nn.utils.fusion import fuse_conv_bn_eval

    folded = 0
    for parent in list(module.modules()):
        if not isinstance(parent, nn.Sequential):
            continue
        names = list(parent._modules)
        for first, second in zip(names, names[1:], strict=False):
            conv, norm = parent._modules[first], parent._modules[second]
            if type(conv) is nn.Conv2d and type(norm) is nn.BatchNorm2d and norm.track_running_stats:
                parent._modules[first] = fuse_conv_bn_eval(conv.eval(), norm.eval())
                parent._modules[second] = nn.Identity()
                folded += 1
    return folded


def convs_as_linear(module: nn.Module) -> list[str]:
    """Replace every plain 1x1 convolution under ``module`` by :class:`Conv1x1AsLinear`, in place.

    BatchNorms that follow a convolution are folded first. Returns the qualified names replaced
    (their Linear is ``<name>.linear``).
    """
    fold_batch_norms(module)
    replaced = []
    for parent_name, parent in list(module.named_modules()):
        for name, child in list(parent.named_children()):
            if is_pointwise(child):
                setattr(parent, name, Conv1x1AsLinear(child))
                replaced.append(f"{parent_name}.{name}" if parent_name else name)
    return replaced
