"""Export-only rewrites that let XNNPACK take (almost) the whole graph; each is exact up to rounding.

They are applied to the deployment copy of the student (:func:`apply_rewrites`) or to the exported
graph, never to the training model:

* :class:`DelegableLayerNorm` replaces ``nn.LayerNorm``: XNNPACK 1.5.1 has no layer norm and its
  ``mean`` only pools 4-D maps, so the statistics are a matmul by a constant ``1/C`` column.
* :class:`DelegablePromptEncoder` samples the feature map at point / box centres with an explicit
  bilinear weight matrix and a matmul instead of ``grid_sample`` (identical maths for
  ``align_corners=False`` with zero padding).
* :class:`DelegableBoxBias` computes the boxRPB log scale as ``log2(relu(d)+1) - log2(relu(-d)+1)``
  (= ``sign(d) log2(|d|+1)``, no ``sign`` op) and picks box edges with a constant matmul
  instead of strided slices.
* :func:`nearest_upsample_decomposition` turns ``upsample_nearest2d`` into two matmuls with
  constant 0/1 selection matrices (XNNPACK only has bilinear resize).
* :func:`remove_noop_expands` drops ``expand`` nodes that do not change the shape (the batched
  matmul decomposition of ``q @ k^T`` emits them; XNNPACK has no expand).
* :func:`fold_constants_pass`: ExecuTorch's constant propagation limited to small tensors, so
  input-independent subgraphs (``arange``, selection matrices, small embeddings) become constants
  without storing megabytes of precomputed activations.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from sam3spec.boxes import boxes_cxcywh_to_xyxy
from sam3spec.models.detr_decoder import BoxRelativePositionBias
from sam3spec.models.prompt_encoder import PromptEncoder


class DelegableLayerNorm(nn.Module):
    """LayerNorm over the last dimension written with ops XNNPACK delegates.

    Args:
        norm: the ``nn.LayerNorm`` to replace (its weight and bias are shared, not copied).
    """

    def __init__(self, norm: nn.LayerNorm) -> None:
        super().__init__()
        if len(norm.normalized_shape) != 1:
            raise ValueError(f"only last-dimension LayerNorm is supported, got {norm.normalized_shape}")
        width = norm.normalized_shape[0]
        self.eps = norm.eps
        self.weight = norm.weight
        self.bias = norm.bias
        self.register_buffer("average", torch.full((1, width), 1.0 / width), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``[..., C] -> [..., C]`` (float32 statistics, as open_clip's LayerNorm)."""
        dtype = x.dtype
        x = x.float()
        centred = x - F.linear(x, self.average)
        y = centred * torch.rsqrt(F.linear(centred * centred, self.average) + self.eps)
        if self.weight is not None:
            y = y * self.weight
        if self.bias is not None:
            y = y + self.bias
        return y.to(dtype)


def bilinear_weights(coords: torch.Tensor, size: int) -> torch.Tensor:
    """Bilinear interpolation weights of normalised coordinates over ``size`` cells.

    ``grid_sample(align_corners=False)`` reads cell ``i`` with weight ``max(0, 1 - |u - i|)`` where
    ``u = coord * size - 0.5``; cells outside the map contribute zero (zero padding).

    Args:
        coords: ``[...]`` in [0, 1].
        size: number of cells.

    Returns:
        ``[..., size]``.
    """
    cells = torch.arange(size, device=coords.device, dtype=coords.dtype)
    position = coords[..., None] * size - 0.5
    return torch.relu(1 - (position - cells).abs())


class DelegablePromptEncoder(PromptEncoder):
    """:class:`PromptEncoder` whose feature sampling is a matmul (no ``grid_sample``)."""

    def _sample(self, feature_map: torch.Tensor, xy: torch.Tensor) -> torch.Tensor:
        batch, channels, height, width = feature_map.shape
        xy = xy.to(feature_map.dtype)
        weights_x = bilinear_weights(xy[..., 0], width)  # [B, N, W]
        weights_y = bilinear_weights(xy[..., 1], height)  # [B, N, H]
        weights = (weights_y[..., :, None] * weights_x[..., None, :]).flatten(2)  # [B, N, H*W]
        return weights @ feature_map.flatten(2).transpose(1, 2)  # [B, N, C]


def _log_scale(deltas: torch.Tensor) -> torch.Tensor:
    # sign(d) log2(|d| + 1) / log2(8) with d = 8 x, from natural logs (XNNPACK has log, not log2).
    deltas = deltas * 8
    return (torch.log(torch.relu(deltas) + 1.0) - torch.log(torch.relu(-deltas) + 1.0)) / math.log(8)


# Rows pick (x0, x1) and (y0, y1) out of xyxy: a constant matmul instead of a strided slice.
_X_EDGES = ((1.0, 0.0, 0.0, 0.0), (0.0, 0.0, 1.0, 0.0))
_Y_EDGES = ((0.0, 1.0, 0.0, 0.0), (0.0, 0.0, 0.0, 1.0))


class DelegableBoxBias(BoxRelativePositionBias):
    """:class:`BoxRelativePositionBias` without ``sign`` and strided slices."""

    def forward(self, boxes: torch.Tensor, height: int, width: int) -> torch.Tensor:
        xyxy = boxes_cxcywh_to_xyxy(boxes)
        x_edges = F.linear(xyxy, torch.tensor(_X_EDGES, device=boxes.device, dtype=boxes.dtype))  # [B, Q, 2]
        y_edges = F.linear(xyxy, torch.tensor(_Y_EDGES, device=boxes.device, dtype=boxes.dtype))
        xs = (torch.arange(width, device=boxes.device, dtype=boxes.dtype) + 0.5) / width
        ys = (torch.arange(height, device=boxes.device, dtype=boxes.dtype) + 0.5) / height
        dx = xs[None, None, :, None] - x_edges[:, :, None, :]  # [B, Q, W, 2]
        dy = ys[None, None, :, None] - y_edges[:, :, None, :]  # [B, Q, H, 2]
        bias_x = self.mlp_x(_log_scale(dx))
        bias_y = self.mlp_y(_log_scale(dy))
        bias = bias_y[:, :, :, None, :] + bias_x[:, :, None, :, :]
        return bias.flatten(2, 3).permute(0, 3, 1, 2)


def _retype(module: nn.Module, cls: type) -> nn.Module:
    clone = cls.__new__(cls)
    clone.__dict__ = dict(module.__dict__)
    return clone


def apply_rewrites(module: nn.Module) -> dict[str, int]:
    """Apply the module rewrites to every matching submodule of ``module``, in place.

    Returns:
        How many modules of each kind were replaced.
    """
    counts = {"layer_norm": 0, "prompt_encoder": 0, "box_bias": 0}
    for parent in list(module.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, nn.LayerNorm) and len(child.normalized_shape) == 1:
                setattr(parent, name, DelegableLayerNorm(child))
                counts["layer_norm"] += 1
            elif type(child) is PromptEncoder:
                setattr(parent, name, _retype(child, DelegablePromptEncoder))
                counts["prompt_encoder"] += 1
            elif type(child) is BoxRelativePositionBias:
                setattr(parent, name, _retype(child, DelegableBoxBias))
                counts["box_bias"] += 1
    return counts


def _selection(out_size: int, in_size: int, like: torch.Tensor) -> torch.Tensor:
    # PyTorch's "nearest": source index floor(dst * in / out), clamped to in - 1.
    # Built with float arithmetic only (1 where source == cell, else 0): a bool -> float cast here
    # sits next to PT2E-quantized inputs in ``track`` and trips XNNPACK's layout pass.
    source = torch.floor(torch.arange(out_size, device=like.device, dtype=like.dtype) * (in_size / out_size))
    source = source.clamp(max=in_size - 1)
    cells = torch.arange(in_size, device=like.device, dtype=like.dtype)
    return torch.relu(1 - (source[:, None] - cells[None, :]).abs())  # [out, in]


def nearest_upsample_decomposition(
    input: torch.Tensor, output_size: list[int] | None, scale_factors: list[float] | None
) -> torch.Tensor:
    """``aten.upsample_nearest2d.vec`` as two matmuls with constant selection matrices."""
    height, width = input.shape[-2:]
    if output_size is None:
        output_size = [int(math.floor(height * scale_factors[0])), int(math.floor(width * scale_factors[1]))]
    out_h, out_w = int(output_size[0]), int(output_size[1])
    batch, channels = input.shape[:2]
    # 2-D operands: a 4-D linear would broadcast (and constant folding would store) the selection
    # matrix once per channel.
    x = F.linear(input.reshape(-1, width), _selection(out_w, width, input))  # [B*C*H, out_w]
    x = x.reshape(batch, channels, height, out_w).transpose(-1, -2).reshape(-1, height)  # [B*C*out_w, H]
    x = F.linear(x, _selection(out_h, height, input))  # [B*C*out_w, out_h]
    return x.reshape(batch, channels, out_w, out_h).transpose(-1, -2)


def decompositions() -> dict:
    """The decomposition table for ``ExportedProgram.run_decompositions`` (on top of the defaults)."""
    return {torch.ops.aten.upsample_nearest2d.vec: nearest_upsample_decomposition}


def remove_noop_expands(graph_module: torch.fx.GraphModule) -> int:
    """Remove ``expand`` / ``expand_copy`` nodes whose output shape equals their input's, in place.

    Works on ATen and on ExecuTorch edge graphs. Returns how many were removed.
    """
    removed = 0
    for node in list(graph_module.graph.nodes):
        if node.op != "call_function" or str(node.target).split(".")[-2:-1] not in (
            ["expand"],
            ["expand_copy"],
        ):
            continue
        source = node.args[0]
        before, after = getattr(source, "meta", {}).get("val"), node.meta.get("val")
        if before is not None and after is not None and tuple(before.shape) == tuple(after.shape):
            node.replace_all_uses_with(source)
            graph_module.graph.erase_node(node)
            removed += 1
    if removed:
        graph_module.recompile()
    return removed


# Folded constants above this many elements stay computed at runtime: ExecuTorch's constant
# propagation would otherwise store, e.g., the first decoder layer's boxRPB activations
# ([1, 100, 32, 256], 3.3 MB) or a stride-8 position embedding in the file.
FOLD_MAX_ELEMENTS = 65536


def fold_small_constants(exported_program, max_elements: int = FOLD_MAX_ELEMENTS):
    """ExecuTorch's constant propagation, keeping only folded tensors of at most ``max_elements``.

    Input-independent subgraphs (``arange``, floor divisions, selection matrices, small position
    embeddings) become constants; large input-independent intermediates are left as ops (their
    small inputs are folded), so the file does not grow by megabytes to save microseconds.
    """
    from collections import OrderedDict

    from executorch.exir.passes import constant_prop_pass as propagation

    propagated = propagation.get_propagated_const_tensor_dict(exported_program, None)
    kept = OrderedDict(
        (node, value)
        for node, value in propagated.items()
        if node.op == "placeholder" or not isinstance(value, torch.Tensor) or value.numel() <= max_elements
    )
    specs = {spec.arg.name: spec for spec in exported_program.graph_signature.input_specs}
    specs.update(propagation.create_constant_nodes_and_return_specs(kept, exported_program))
    exported_program.graph_signature.input_specs = [
        specs[node.name] for node in exported_program.graph.find_nodes(op="placeholder")
    ]
    propagation._update_output_node_and_specs(exported_program, _skip_dim_order=True)
    exported_program.graph.eliminate_dead_code()
    exported_program.graph_module.recompile()
    return exported_program


def fold_constants_pass(max_elements: int = FOLD_MAX_ELEMENTS):
    """:func:`fold_small_constants` as an ExecuTorch ``ExportedProgramPassBase`` (imported lazily)."""
    from executorch.exir.pass_base import ExportedProgramPassBase, ExportedProgramPassResult

    class FoldSmallConstants(ExportedProgramPassBase):
        def call(self, exported_program):
            return ExportedProgramPassResult(fold_small_constants(exported_program, max_elements), True)

    return FoldSmallConstants()


def remove_noop_expands_pass():
    """:func:`remove_noop_expands` as an ExecuTorch graph-module pass."""
    from torch.fx.passes.infra.pass_base import PassResult

    def run(graph_module: torch.fx.GraphModule) -> PassResult:
        return PassResult(graph_module, remove_noop_expands(graph_module) > 0)

    return run
