"""Eager quantization recipes (torchao ``quantize_``), sensitive layers kept in float.

One verb and small configs, as torchao: :func:`quantize_student` applies a :class:`QuantRecipe`
to the student's ``nn.Linear`` layers (and, if the recipe says so, to its large embedding
tables) through a filter that keeps the IoU head, scoring, Perceiver and memory attention in
float and prints what it did.

Which torchao config runs where (torchao 0.18, measured on this project's machines):

================ ================================================ ===============================
recipe           CPU / ExecuTorch                                 CUDA
================ ================================================ ===============================
int4wo-g128      ``IntxWeightOnlyConfig(int4, PerGroup(128))``    ``Int4WeightOnlyConfig(128)``
8da4w            ``Int8DynamicActivationIntxWeightConfig(int4,    same
                 PerGroup(32))``
8da8w            ``Int8DynamicActivationIntxWeightConfig(int8,    same
                 PerAxis(0))``
int8wo           ``IntxWeightOnlyConfig(int8, PerAxis(0))``       same
================ ================================================ ===============================

``Int4WeightOnlyConfig`` is a CUDA kernel (tinygemm / its successors): it has no CPU path in
torchao 0.18, so on CPU the int4 weight-only recipe uses the Intx family, which is also what
ExecuTorch lowers (XNNPACK 8da4w, portable embedding_4bit). Eager Intx on CPU dequantizes on the
fly: it simulates accuracy and size, it is not faster than float (the speed comes from the
exported program).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from sam3spec.quant.schemes import LARGE_EMBEDDING, RECIPES, QuantRecipe, get_recipe
from sam3spec.quant.sensitivity import LinearPlan, group_size_rule, plan_linears, sensitive_modules

__all__ = ["LARGE_EMBEDDING", "RECIPES", "QuantRecipe", "QuantReport", "get_recipe", "quantize_student"]


@dataclass
class QuantReport:
    """What :func:`quantize_student` did.

    Attributes:
        recipe: the recipe name.
        plan: the Linear-layer plan (quantized vs kept in float, with reasons).
        embeddings: qualified names of the embedding tables quantized.
        float_bytes: parameter bytes before (fp32).
        packed_bytes: parameter bytes after, counting quantized values at their bit width plus
            their scales (what a packed format such as a ``.pte`` stores), float tensors at 4 bytes.
    """

    recipe: str
    plan: LinearPlan
    embeddings: list[str]
    float_bytes: int
    packed_bytes: int

    @property
    def size_ratio(self) -> float:
        return self.packed_bytes / self.float_bytes if self.float_bytes else 1.0

    def describe(self) -> str:
        return (
            f"recipe {self.recipe}: {self.plan.describe()}; embeddings quantized: {len(self.embeddings)}; "
            f"weights {self.float_bytes / 1e6:.1f} MB -> {self.packed_bytes / 1e6:.1f} MB packed "
            f"({self.size_ratio:.3f} of float)"
        )


_BITS = {getattr(torch, f"int{n}"): n for n in range(1, 9)} | {
    getattr(torch, f"uint{n}"): n for n in range(1, 9)
}


def packed_bytes(model: nn.Module) -> int:
    """Parameter + buffer bytes with torchao Intx tensors counted at their packed bit width.

    A quantized weight counts ``numel * bits / 8`` for its values plus its scales (and its zero
    points when they are not all zero); every other tensor counts its storage.
    """
    total = 0
    seen: set[int] = set()
    for tensor in [*model.parameters(), *model.buffers()]:
        data = tensor.data if isinstance(tensor, nn.Parameter) else tensor
        if id(data) in seen:
            continue
        seen.add(id(data))
        if hasattr(data, "qdata") and hasattr(data, "target_dtype"):
            bits = _BITS.get(data.target_dtype, 8)
            total += data.qdata.numel() * bits // 8 + data.scale.numel() * data.scale.element_size()
            if data.zero_point is not None and bool((data.zero_point != 0).any()):
                total += data.zero_point.numel() * data.zero_point.element_size()
        elif type(data) is torch.Tensor:
            total += data.numel() * data.element_size()
        else:  # another tensor subclass: count its inner tensors
            names, _ = data.__tensor_flatten__()
            total += sum(getattr(data, n).numel() * getattr(data, n).element_size() for n in names)
    return total


def float_bytes(model: nn.Module) -> int:
    """Parameter + buffer bytes of a float model (unique storages)."""
    seen: set[int] = set()
    total = 0
    for tensor in [*model.parameters(), *model.buffers()]:
        if id(tensor) not in seen:
            seen.add(id(tensor))
            total += tensor.numel() * tensor.element_size()
    return total


def _once(chosen: set[int]) -> Callable[[nn.Module, str], bool]:
    """A filter that accepts each chosen module once (shared modules are reachable by several paths)."""

    def accept(module: nn.Module, fqn: str) -> bool:
        if id(module) in chosen:
            chosen.discard(id(module))
            return True
        return False

    return accept


def quantize_modules(
    root: nn.Module,
    recipe: QuantRecipe,
    sensitive: dict[str, nn.Module],
    device: str | torch.device = "cpu",
    log: Callable[[str], None] | None = print,
    wrap: Callable[[Any], Any] | None = None,
    embeddings: bool = True,
) -> tuple[LinearPlan, list[str]]:
    """Quantize the Linear layers (and large embeddings) under ``root`` in place.

    Layers whose input width is not a multiple of the recipe's group size are quantized with
    groups of 32 (4-bit) or per channel (8-bit) instead (tiny presets); 4-bit layers whose input
    width is not a multiple of 32 stay in float (XNNPACK's 4-bit groups are multiples of 32), and
    so do the sensitive parts.

    Args:
        root: the module tree.
        recipe: the scheme.
        sensitive: parts kept in float (:func:`~sam3spec.quant.sensitivity.sensitive_modules`).
        device: where the model runs.
        log: where the filter line is printed (None: silent).
        wrap: applied to each Linear config (QAT: ``QATConfig(config, step=...)``).
        embeddings: also quantize large embedding tables (if the recipe says so).

    Returns:
        ``(plan, quantized embedding names)``.
    """
    from torchao.quantization import quantize_

    rules = [group_size_rule(32)] if recipe.weight_bits == 4 else []  # int4 groups are multiples of 32
    plan = plan_linears(root, sensitive, rules)
    # Layers the recipe's group does not divide: 4-bit ones (input width a multiple of 32 by the
    # rule above) take groups of 32, 8-bit ones one scale per row.
    fallback = 32 if recipe.weight_bits == 4 else None
    by_group: dict[int | None, list[str]] = {}
    for name in plan.quantized:
        layer = root.get_submodule(name)
        group = recipe.group_size
        if group is not None and layer.in_features % group:
            group = fallback
        by_group.setdefault(group, []).append(name)
    per_channel = [] if recipe.group_size is None else by_group.get(None, [])
    regrouped = [] if fallback == recipe.group_size else by_group.get(fallback, [])
    modules = dict(root.named_modules())
    for group, names in by_group.items():
        config = recipe.linear_config(device, per_channel=group is None, group=group)
        config = config if wrap is None else wrap(config)
        quantize_(root, config, filter_fn=_once({id(modules[name]) for name in names}))
    names: list[str] = []
    if embeddings and recipe.embedding_bits is not None:
        names = [
            name
            for name, module in root.named_modules()
            if isinstance(module, nn.Embedding) and module.num_embeddings >= LARGE_EMBEDDING
        ]
        for name in names:
            config = recipe.embedding_config(modules[name].embedding_dim)
            quantize_(root, config, filter_fn=_once({id(modules[name])}))
    if log is not None:
        odd = per_channel or regrouped
        how = "per channel" if per_channel else f"group {fallback}"
        note = f" ({len(odd)} {how}: input width not a multiple of {recipe.group_size})" if odd else ""
        log(f"[{recipe.name}] {plan.describe()}{note}; embeddings quantized: {', '.join(names) or 'none'}")
    return plan, names


def quantize_student(
    student: nn.Module,
    recipe: QuantRecipe | str,
    device: str | torch.device = "cpu",
    log: Callable[[str], None] | None = print,
) -> QuantReport:
    """Apply ``recipe`` to ``student`` in place (torchao ``quantize_``), sensitive parts kept in float.

    Args:
        student: a :class:`~sam3spec.models.student.Student` (eval mode recommended).
        recipe: a :class:`QuantRecipe` or its registry name.
        device: where the model runs (picks the CUDA int4 kernel on ``cuda``).
        log: where the printed filter line goes (None: silent).

    Returns:
        A :class:`QuantReport`.
    """
    recipe = get_recipe(recipe) if isinstance(recipe, str) else recipe
    before = float_bytes(student)
    plan, embeddings = quantize_modules(student, recipe, sensitive_modules(student), device, log)
    return QuantReport(recipe.name, plan, embeddings, before, packed_bytes(student))


__all__ = [
    "RECIPES",
    "QuantRecipe",
    "QuantReport",
    "get_recipe",
    "group_size_rule",
    "packed_bytes",
    "quantize_modules",
    "quantize_student",
]
