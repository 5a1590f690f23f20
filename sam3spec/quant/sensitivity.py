"""Which Linear layers a recipe quantizes and which it keeps in float.

The plan keeps four parts of the student in float (docs/PLAN.md 8) because they are small and their errors
compound: the IoU head, the dot-product scoring, the Perceiver resampler and the memory
cross-attention. :func:`plan_linears` lists every ``nn.Linear`` of a module tree by its
qualified name and decides; :meth:`LinearPlan.describe` is the line every recipe prints.

The plan works on the student and on the export wrappers alike: it finds the sensitive parts by
module identity, so a wrapper that holds the student's parts under other names gets the same plan.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import torch
from torch import nn

SENSITIVE_COMPONENTS = ("iou_head", "scoring", "perceiver", "memory_attention")


@dataclass
class LinearPlan:
    """The decision for every Linear layer of a module tree.

    Attributes:
        quantized: qualified names of the Linear layers to quantize.
        kept_float: ``{name: reason}`` for the Linear layers kept in float.
    """

    quantized: list[str] = field(default_factory=list)
    kept_float: dict[str, str] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return len(self.quantized) + len(self.kept_float)

    def reasons(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for reason in self.kept_float.values():
            counts[reason] = counts.get(reason, 0) + 1
        return counts

    def describe(self) -> str:
        """``quantized 64 of 87 Linear layers; kept in float 23: scoring 4, ...``."""
        kept = ", ".join(f"{reason} {count}" for reason, count in sorted(self.reasons().items()))
        return (
            f"quantized {len(self.quantized)} of {self.total} Linear layers; kept in float "
            f"{len(self.kept_float)}" + (f" ({kept})" if kept else "")
        )

    def filter_fn(self, root: nn.Module) -> Callable[[nn.Module, str], bool]:
        """A torchao ``filter_fn`` quantizing exactly :attr:`quantized` under ``root``."""
        chosen = {id(module) for name, module in root.named_modules() if name in set(self.quantized)}
        return lambda module, name: id(module) in chosen


def sensitive_modules(student: nn.Module) -> dict[str, nn.Module]:
    """The student's sensitive parts by component name (those it has)."""
    parts = student.component_modules() if hasattr(student, "component_modules") else {}
    return {name: parts[name] for name in SENSITIVE_COMPONENTS if name in parts}


def plan_linears(
    root: nn.Module,
    sensitive: dict[str, nn.Module],
    extra_rules: Iterable[Callable[[str, nn.Linear], str | None]] = (),
) -> LinearPlan:
    """Decide, for every ``nn.Linear`` under ``root``, quantize or keep in float.

    Args:
        root: the module tree a recipe will quantize (a student or an export wrapper).
        sensitive: ``{part name: module}`` whose Linear layers stay in float.
        extra_rules: more ``(name, layer) -> reason or None`` rules (e.g. shape constraints);
            a returned reason keeps the layer in float.

    Returns:
        The :class:`LinearPlan`. Layers reachable twice (shared parts) are listed once.
    """
    owner: dict[int, str] = {}
    for part, module in sensitive.items():
        for layer in module.modules():
            if isinstance(layer, nn.Linear):
                owner[id(layer)] = part
    plan = LinearPlan()
    seen: set[int] = set()
    for name, layer in root.named_modules():
        if not isinstance(layer, nn.Linear) or id(layer) in seen:
            continue
        seen.add(id(layer))
        reason = owner.get(id(layer))
        if reason is None and isinstance(layer, nn.modules.linear.NonDynamicallyQuantizableLinear):
            # nn.MultiheadAttention's out_proj: MHA reads its weight directly, so a quantized
            # tensor subclass there breaks it; the export wrapper rewrites MHA into nn.Linear.
            reason = "inside nn.MultiheadAttention"
        for rule in extra_rules:
            if reason is None:
                reason = rule(name, layer)
        if reason is None:
            plan.quantized.append(name)
        else:
            plan.kept_float[name] = reason
    return plan


def is_float_weight(layer: nn.Module) -> bool:
    """True when a layer's weight is a plain float tensor (not a torchao quantized subclass)."""
    weight = getattr(layer, "weight", None)
    data = weight.data if isinstance(weight, nn.Parameter) else weight
    return data is None or (type(data) is torch.Tensor and data.is_floating_point())


def sensitive_float_share(student: nn.Module) -> tuple[float, int, int]:
    """After quantization: ``(share, float count, total)`` of the sensitive parts' Linear layers."""
    layers = [
        m for part in sensitive_modules(student).values() for m in part.modules() if isinstance(m, nn.Linear)
    ]
    kept = sum(is_float_weight(layer) for layer in layers)
    return (kept / len(layers) if layers else 1.0), kept, len(layers)


def group_size_rule(group_size: int) -> Callable[[str, nn.Linear], str | None]:
    """Keep layers whose input width is not a multiple of ``group_size`` (group-wise schemes need it)."""

    def rule(name: str, layer: nn.Linear) -> str | None:
        if layer.in_features % group_size:
            return f"input width not a multiple of {group_size}"
        return None

    return rule
